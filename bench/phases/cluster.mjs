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

/**
 * A target of the load: a production instance on `url` with its tenants, WORKERS worker
 * processes and a closed-loop slice function; stop() ends it.
 */
async function target(ctx, url, label) {
  const prefix = uniquePrefix(`cl-${label.replace(/\W+/g, '')}`);
  const tenants = Array.from({ length: TENANTS }, (_, i) => `tenant${i}`);
  const workers = [];
  const ends = new Map();
  const p = await openProduction(url, prefix, tenants[0], [SCN.chain10]);
  try {
    for (const t of tenants.slice(1)) {
      await p.ledger.setQuota(t, { monthlyActions: 1e9 });
      await p.scenarios.deploy(t, SCN.chain10);
    }
    for (const t of tenants) ends.set(t, await runEnds(p, t));
    for (let i = 0; i < WORKERS; i++) workers.push(await startWorker(ctx, url, prefix, 50));
  } catch (err) {
    for (const w of workers) ctx.log(`${w.name} stderr tail:\n${w.tail.slice(-1500)}`);
    for (const w of workers) await w.stop();
    await p.close();
    throw err;
  }
  let k = 0;
  const launch = async () => {
    const i = k++;
    const tenant = tenants[i % TENANTS];
    const run = await p.trigger(tenant, 'chain10', item(i), { type: 'manual' });
    const end = await ends.get(tenant).wait(run.runId, 60_000);
    return { t: end.t, weight: end.actions, status: end.status };
  };
  return {
    label,
    workers,
    slice: (ms, warmMs = 250) => closedLoop({ inflight: INFLIGHT, warmMs, measureMs: ms, launch }),
    async stop() {
      for (const e of ends.values()) {
        await e.stop();
        if (e.missed > 0) ctx.table.lost.push(`${e.missed} run-end events (${label})`);
      }
      for (const w of workers) await w.stop();
      await p.close();
    },
  };
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
  const targets = [];
  try {
    single = await startRedis();
    cluster = await startCluster();
    log(`cluster: one redis-server on ${single.url}; 3 primaries on ${cluster.ports.join(', ')}`);
    const one = await target(ctx, single.url, 'one Redis');
    targets.push(one);
    const many = await target(ctx, cluster.url, '3 primaries');
    targets.push(many);
    const SL = ctx.W(3000);
    for (const t of targets) {
      log(`cluster: ${t.label}: warm-up, ${WORKERS} workers, ${INFLIGHT} runs in flight over ${TENANTS} tenants`);
      await t.slice(ctx.W(1500), 0);
    }
    // Interleaved slices (one Redis, the cluster, …) so that the other work on this machine
    // weighs on both alike; the idle target's workers only wait on their queue meanwhile.
    for (const port of cluster.ports) await nodeCommand(port, 'CONFIG', 'RESETSTAT');
    const acc = { 'one Redis': slices(), '3 primaries': slices() };
    const cpuOne = cpuTally();
    const cpuMany = cpuTally();
    const pidsOf = (t, servers) => ({ ...Object.fromEntries(t.workers.map((w, i) => [`worker ${i + 1}`, w.pid])), ...servers, 'bench (trigger)': process.pid });
    for (let i = 0; i < 3; i++) {
      log(`cluster: slice ${i + 1}/3: one Redis ${SL} ms, then 3 primaries ${SL} ms`);
      acc['one Redis'].add(await cpuOne.around(pidsOf(one, { 'redis-server': single.pid }), () => one.slice(SL)));
      acc['3 primaries'].add(
        await cpuMany.around(pidsOf(many, Object.fromEntries(cluster.pids.map((pid, j) => [`primary ${j + 1}`, pid]))), () => many.slice(SL)),
      );
    }
    const stats = {};
    for (const port of cluster.ports) stats[port] = await commandStats(port);
    one.rate = acc['one Redis'].weightPerSec;
    many.rate = acc['3 primaries'].weightPerSec;
    one.cpu = cpuOne.text();
    many.cpu = cpuMany.text();
    log(`cluster: one Redis ${one.rate.toFixed(0)} actions/s (CPU ${one.cpu}); 3 primaries ${many.rate.toFixed(0)} actions/s (CPU ${many.cpu})`);
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
      `(*C) chain of 10 Function (11 actions per run), ${INFLIGHT} runs in flight spread over ${TENANTS} tenants, ${WORKERS} worker processes (--concurrency 50), FLOWMETER_QUEUE_SHARDS=${SHARDS}; 3 slices of ${ctx.W(3000) / 1000} s on each, interleaved (the other target's workers idle meanwhile). One Redis: CPU ${one.cpu}. Cluster: CPU ${many.cpu}. Commands per primary (INFO commandstats from the first measured slice to the last): ${perPrimary.join('; ')}. This machine's cores are shared by every process here, so the ratio shows what the cluster client costs, not scale-out; the split of commands shows whether one primary serialises the load.`,
    );
  } catch (err) {
    failedRow(m, 'reported', err);
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
    if (saved === undefined) delete process.env.FLOWMETER_QUEUE_SHARDS;
    else process.env.FLOWMETER_QUEUE_SHARDS = saved;
    await single?.stop();
    await cluster?.stop();
  }
}
