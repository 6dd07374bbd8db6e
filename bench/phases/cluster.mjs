/**
 * Phase `cluster` (BENCH_ONLY=cluster): the same worker processes and load on one Redis and on
 * a 3-primary Redis Cluster. Many tenants (12) so the tenants' keys, the cron index and the
 * queue shards (FLOWMETER_QUEUE_SHARDS=6) spread over the primaries; the point on this 2-core
 * machine is not speed-up but that nothing serialises on one primary: the commands each
 * primary ran (INFO commandstats, reset before the measured slices) are reported.
 */

import { commandStats, nodeCommand, startCluster } from '../lib/cluster.mjs';
import { closedLoop, slices } from '../lib/loops.mjs';
import { cpuTally, startRedis, startWorker } from '../lib/processes.mjs';
import { openProduction, runEnds, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

const TENANTS = 12;
const SHARDS = '6';
const WORKERS = 2;
const INFLIGHT = 48; // 4 per tenant

/** Actions/s of the chain10 load on `url` with WORKERS worker processes; `pids` for CPU. */
async function measure(ctx, url, label, pids, onMeasured) {
  const { log, W } = ctx;
  const prefix = uniquePrefix(`cl-${label}`);
  const tenants = Array.from({ length: TENANTS }, (_, i) => `tenant${i}`);
  const workers = [];
  let p = null;
  const ends = [];
  try {
    p = await openProduction(url, prefix, tenants[0], [SCN.chain10]);
    for (const t of tenants.slice(1)) {
      await p.ledger.setQuota(t, { monthlyActions: 1e9 });
      await p.scenarios.deploy(t, SCN.chain10);
    }
    const endsOf = new Map();
    for (const t of tenants) {
      const e = await runEnds(p, t);
      ends.push(e);
      endsOf.set(t, e);
    }
    for (let i = 0; i < WORKERS; i++) workers.push(await startWorker(ctx, url, prefix, 50));
    let k = 0;
    const launch = async () => {
      const i = k++;
      const tenant = tenants[i % TENANTS];
      const run = await p.trigger(tenant, 'chain10', item(i), { type: 'manual' });
      const end = await endsOf.get(tenant).wait(run.runId, 60_000);
      return { t: end.t, weight: end.actions, status: end.status };
    };
    const SL = W(3000);
    log(`cluster: ${label}: warm-up, ${WORKERS} workers, ${INFLIGHT} runs in flight over ${TENANTS} tenants`);
    await closedLoop({ inflight: INFLIGHT, warmMs: 0, measureMs: W(1500), launch });
    await onMeasured?.('start');
    const acc = slices();
    const cpu = cpuTally();
    const named = () => ({ ...Object.fromEntries(workers.map((w, i) => [`worker ${i + 1}`, w.pid])), ...pids(), 'bench (trigger)': process.pid });
    for (let i = 0; i < 3; i++) {
      log(`cluster: ${label}: slice ${i + 1}/3, ${SL} ms`);
      acc.add(await cpu.around(named(), () => closedLoop({ inflight: INFLIGHT, warmMs: 250, measureMs: SL, launch })));
    }
    await onMeasured?.('end');
    log(`cluster: ${label}: ${acc.weightPerSec.toFixed(0)} actions/s (${acc.perSec.toFixed(0)} runs/s); CPU ${cpu.text()}`);
    for (const e of ends) {
      await e.stop();
      if (e.missed > 0) ctx.table.lost.push(`${e.missed} run-end events (${label})`);
    }
    return { rate: acc.weightPerSec, cpu: cpu.text() };
  } catch (err) {
    for (const w of workers) log(`${w.name} stderr tail:\n${w.tail.slice(-1500)}`);
    throw err;
  } finally {
    for (const w of workers) await w.stop();
    await p?.close();
  }
}

export async function clusterPhase(ctx) {
  const { log } = ctx;
  const { row, notes, failedRow } = ctx.table;
  const m = `cluster: actions/s, 3 primaries vs 1 Redis (same ${WORKERS} workers, ${TENANTS} tenants) (*C)`;
  if (ctx.left() < 60_000) {
    failedRow(m, 'reported', new Error('skipped: less than a minute of the bench budget left'));
    return;
  }
  const saved = process.env.FLOWMETER_QUEUE_SHARDS;
  // The bench's own production instances and its worker processes (which inherit it).
  process.env.FLOWMETER_QUEUE_SHARDS = SHARDS;
  let single = null;
  let cluster = null;
  try {
    single = await startRedis();
    log(`cluster: one redis-server on ${single.url}`);
    const one = await measure(ctx, single.url, 'one Redis', () => ({ 'redis-server': single.pid }));
    await single.stop();
    single = null;

    cluster = await startCluster();
    log(`cluster: 3 primaries on ${cluster.ports.join(', ')}`);
    const stats = {};
    const many = await measure(
      ctx,
      cluster.url,
      '3 primaries',
      () => Object.fromEntries(cluster.pids.map((pid, i) => [`primary ${i + 1}`, pid])),
      async (at) => {
        for (const port of cluster.ports) {
          if (at === 'start') await nodeCommand(port, 'CONFIG', 'RESETSTAT');
          else stats[port] = await commandStats(port);
        }
      },
    );
    const total = (s) => Object.values(s).reduce((a, b) => a + b, 0);
    const top = (s) =>
      Object.entries(s)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ');
    const all = Object.values(stats).reduce((a, s) => a + total(s), 0);
    const perPrimary = cluster.ports.map(
      (port, i) => `primary ${i + 1} (:${port}) ${total(stats[port])} commands (${((100 * total(stats[port])) / all).toFixed(0)}%: ${top(stats[port])})`,
    );
    log(`cluster: commands per primary during the measured slices: ${perPrimary.join('; ')}`);
    row(m, many.rate, one.rate, { unit: '/s', target: 'reported', pass: () => null });
    notes.push(
      `(*C) chain of 10 Function (11 actions per run), ${INFLIGHT} runs in flight spread over ${TENANTS} tenants, ${WORKERS} worker processes (--concurrency 50), FLOWMETER_QUEUE_SHARDS=${SHARDS}; 3 slices of ${ctx.W(3000) / 1000} s on each. One Redis: CPU ${one.cpu}. Cluster: CPU ${many.cpu}. Commands per primary (INFO commandstats over the measured slices): ${perPrimary.join('; ')}. This machine's cores are shared by every process here, so the ratio shows what the cluster client costs, not scale-out; the split of commands shows whether one primary serialises the load.`,
    );
  } catch (err) {
    failedRow(m, 'reported', err);
  } finally {
    if (saved === undefined) delete process.env.FLOWMETER_QUEUE_SHARDS;
    else process.env.FLOWMETER_QUEUE_SHARDS = saved;
    await single?.stop();
    await cluster?.stop();
  }
}
