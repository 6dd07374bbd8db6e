/** Phase `throughput` (queue mode): many concurrent chains against one worker process, then two. */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createEmbedded } from '../../dist/engine/embedded.js';
import { evalshaClient } from '../lib/baselines.mjs';
import { closedLoop, slices } from '../lib/loops.mjs';
import { childrenOf, cpuTally, startWorker } from '../lib/processes.mjs';
import { openProduction, runEnds, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

// ---- 3 + 6. 50 concurrent 10-node chains: one worker, then two ---------------------------
/** Actions of a chain10 run: its trigger and 10 Function nodes. */
const ACTIONS_PER_RUN = 11;

export async function throughputPhase(ctx) {
  const { redis, log, W, profileDir } = ctx;
  const { rows, notes, lost, row, failedRow } = ctx.table;
  const m1 = 'queue: actions/s, 1 worker, 50 runs in flight, chain of 10 Function (*3)';
  const m2 = 'queue: actions/s, 2 workers vs 1 (same load) (*4)';
  const workers = [];
  let p = null;
  let ev = null;
  try {
    const prefix = uniquePrefix('tp');
    const tenant = 'tp';
    p = await openProduction(redis.url, prefix, tenant, [SCN.chain10]);
    const ends = await runEnds(p, tenant);
    workers.push(await startWorker(ctx, redis.url, prefix, 50));
    ev = await evalshaClient(redis.url);
    let k = 0;
    const launch = async () => {
      const run = await p.trigger(tenant, 'chain10', item(k++), { type: 'manual' });
      const end = await ends.wait(run.runId, 60_000);
      return { t: end.t, weight: end.actions, status: end.status };
    };
    const SL = W(2000);
    const fmSlice = () => closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch });
    log('throughput: warm-up, 1 worker, 50 runs in flight, 2 s');
    await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(2000), launch });
    const one = slices();
    const base = slices();
    const cpu1 = cpuTally();
    const pids = () => ({ worker: workers[0].pid, 'sandbox hosts': childrenOf(workers[0].pid), 'redis-server': redis.pid, 'bench (trigger)': process.pid });
    for (let i = 0; i < 4; i++) {
      log(`throughput: slice ${i + 1}/4: raw EVALSHA 50 in flight ${SL / 2} ms, then flowmeter 1 worker ${SL} ms`);
      base.add(await ev.slice(50, SL / 2));
      one.add(await cpu1.around(pids(), fmSlice));
    }
    log(
      `throughput: 1 worker ${one.weightPerSec.toFixed(0)} actions/s (${one.perSec.toFixed(0)} runs/s); EVALSHA ${base.perSec.toFixed(0)}/s; CPU ${cpu1.text()}`,
    );
    row(m1, one.weightPerSec, base.perSec, { unit: '/s', target: '≥ 1.00×', pass: (_v, r) => r !== null && r >= 1 });
    notes.push(
      `(*3) actions = 1 trigger + 10 Function per run (11); closed loop of 50 runs (trigger → run-end event) against one worker process --concurrency 50; 4 slices of ${SL / 1000} s interleaved with 4 slices of ${SL / 2000} s of the baseline: EVALSHA of \`return 1\` from one ioredis client, 50 in flight. CPU during the Flowmeter slices (100% = one core): ${cpu1.text()}.`,
    );

    // The ceiling of the same load without Redis or a queue: the engine in this process.
    const m3 = 'ceiling: the same 50-run load in one process, embedded, no Redis (*3b)';
    try {
      const engine = createEmbedded();
      await engine.ledger.setQuota('default', { monthlyActions: 1e9 });
      const embLaunch = async () => {
        const run = await engine.run(SCN.chain10, item(k++));
        return { t: performance.now(), weight: run.actions, status: run.status };
      };
      await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(500), launch: embLaunch });
      const emb = slices();
      const cpuEmb = cpuTally();
      for (let i = 0; i < 2; i++) {
        log(`throughput: ceiling slice ${i + 1}/2: embedded engine in this process, 50 runs in flight, ${SL} ms`);
        emb.add(await cpuEmb.around({ 'bench (embedded)': process.pid }, () => closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: embLaunch })));
        base.add(await ev.slice(50, SL / 2));
      }
      await engine.close();
      log(`throughput: ceiling ${emb.weightPerSec.toFixed(0)} actions/s in process; EVALSHA ${base.perSec.toFixed(0)}/s`);
      row(m3, emb.weightPerSec, base.perSec, { unit: '/s', target: 'reported', pass: () => null });
      row('queue vs ceiling: actions/s of 1 worker (*3) vs the same load in one process (*3b)', one.weightPerSec, emb.weightPerSec, {
        unit: '/s',
        target: '≥ 0.70× ceiling',
        pass: (_v, r) => r !== null && r >= 0.7,
      });
      // What this machine's CPUs allow the queue at most, from the CPU each process spent per run:
      // all of them busy all the time, and none over one core (Redis and the worker's event loop
      // are one thread each).
      const per = cpu1.perUnit();
      const sum = Object.values(per).reduce((a, b) => a + b, 0);
      const single = Math.max(per.worker ?? 0, per['redis-server'] ?? 0, per['bench (trigger)'] ?? 0);
      const bound = sum > 0 ? Math.min((cpus().length * 1e6) / sum, 1e6 / single) * ACTIONS_PER_RUN : NaN;
      row('queue vs ceiling, at most, from CPU per run on this machine (*3c)', bound, emb.weightPerSec, { unit: '/s', target: 'reported', pass: () => null });
      notes.push(
        `(*3b) the same runs (chain of 10 Function, 50 in flight, closed loop) executed by the embedded engine in the bench process: no Redis, no queue, no second process, billing in memory; 2 slices of ${SL / 1000} s. It bounds what one worker process can do with these runs on this machine, whatever the queue costs.`,
      );
      const perText = Object.entries(per)
        .map(([name, us]) => `${name} ${us.toFixed(0)} µs`)
        .join(', ');
      notes.push(
        `(*3c) the actions/s the queue could reach if this machine's ${cpus().length} CPUs were all busy with it, each process at most one core (Redis and the worker's event loop are one thread each), from the CPU per run of the queue slices (*3): ${perText}, together ${sum.toFixed(0)} µs per run; the ceiling (*3b) spent ${cpuEmb.text()}. The queue's own figure (*3) is below this one by what went to other processes or stayed idle; when this one is below 0.70× of the ceiling, the target cannot be reached on this machine without less CPU per run.`,
      );
    } catch (err) {
      failedRow(m3, 'reported', err);
    }

    log('throughput: starting a second worker');
    workers.push(await startWorker(ctx, redis.url, prefix, 50));
    await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(1000), launch });
    const two = slices();
    const cpu2 = cpuTally();
    const pids2 = () => ({ 'worker 1': workers[0].pid, 'worker 2': workers[1].pid, 'redis-server': redis.pid, 'bench (trigger)': process.pid });
    for (let i = 0; i < 4; i++) {
      log(`throughput: slice ${i + 1}/4: flowmeter 2 workers ${SL} ms`);
      two.add(await cpu2.around(pids2(), fmSlice));
    }
    log('throughput: stopping the second worker; 1 worker again');
    await workers.pop().stop();
    for (let i = 0; i < 2; i++) one.add(await fmSlice());
    log(`throughput: 2 workers ${two.weightPerSec.toFixed(0)} actions/s vs 1 worker ${one.weightPerSec.toFixed(0)} (all 1-worker slices); CPU ${cpu2.text()}`);
    row(m2, two.weightPerSec, one.weightPerSec, { unit: '/s', target: 'reported (no target)', pass: () => null });
    notes.push(
      `(*4) the same 50-in-flight load against two worker processes (--concurrency 50 each), 4 slices of ${SL / 1000} s, against the one-worker slices (4 before, 2 after). CPU during the two-worker slices: ${cpu2.text()}. With ${cpus().length} CPUs shared by Redis, the triggering process and the workers, a second worker finds no idle core: the ratio shows what a second worker costs or adds here, not how Flowmeter scales on more cores.`,
    );
    await ends.stop();
    if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
  } catch (err) {
    for (const w of workers) log(`${w.name} stderr tail:\n${w.tail.slice(-1500)}`);
    if (!rows.some((r) => r.measure === m1)) failedRow(m1, '≥ 1.00×', err);
    failedRow(m2, 'reported (no target)', err);
  } finally {
    ev?.close();
    for (const w of workers) await w.stop();
    if (profileDir) log(`throughput: worker profiles in ${profileDir}`);
    await p?.close();
  }
}
