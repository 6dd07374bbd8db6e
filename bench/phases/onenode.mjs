/** Phase `onenode` (queue mode): runs/s of the smallest scenario against raw BullMQ jobs/s. */
import { rawBull } from '../lib/baselines.mjs';
import { closedLoop, slices } from '../lib/loops.mjs';
import { cpuTally, startBullWorker, startWorker } from '../lib/processes.mjs';
import { openProduction, runEnds, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

// ---- 5. Runs/s of a 1-node scenario against raw BullMQ -----------------------------------
export async function onenodePhase(ctx) {
  const { redis, log, W } = ctx;
  const { notes, lost, row, failedRow } = ctx.table;
  const measure = 'queue: runs/s, trigger + 1 Function, 50 in flight (*6)';
  const procs = [];
  let p = null;
  let bull = null;
  try {
    const bprefix = `{${uniquePrefix('bull')}:q}`;
    const bw = await startBullWorker(ctx, redis.url, bprefix, 50);
    procs.push(bw);
    bull = await rawBull(redis.url, bprefix, log);
    const prefix = uniquePrefix('one');
    const tenant = 'one';
    p = await openProduction(redis.url, prefix, tenant, [SCN.one]);
    const ends = await runEnds(p, tenant);
    const fw = await startWorker(ctx, redis.url, prefix, 50);
    procs.push(fw);
    let k = 0;
    const fmLaunch = async () => {
      const run = await p.trigger(tenant, 'one', item(k++), { type: 'manual' });
      const end = await ends.wait(run.runId, 60_000);
      return { t: end.t, status: end.status };
    };
    const bullLaunch = async () => ({ t: await bull.job() });
    const SL = W(2000);
    log('onenode: warm-up, both (1 s each)');
    await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(1000), launch: bullLaunch });
    await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(1000), launch: fmLaunch });
    const fm = slices();
    const bq = slices();
    const cpuF = cpuTally();
    const cpuB = cpuTally();
    for (let i = 0; i < 3; i++) {
      log(`onenode: slice ${i + 1}/3: raw BullMQ no-op jobs ${SL} ms, then flowmeter ${SL} ms (workers --concurrency 50, 50 in flight)`);
      bq.add(
        await cpuB.around({ 'bullmq worker': bw.pid, 'redis-server': redis.pid, bench: process.pid }, () =>
          closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: bullLaunch }),
        ),
      );
      fm.add(
        await cpuF.around({ worker: fw.pid, 'redis-server': redis.pid, 'bench (trigger)': process.pid }, () =>
          closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: fmLaunch }),
        ),
      );
    }
    await ends.stop();
    if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
    log(`onenode: flowmeter ${fm.perSec.toFixed(0)} runs/s (CPU ${cpuF.text()}); BullMQ ${bq.perSec.toFixed(0)} jobs/s (CPU ${cpuB.text('job')})`);
    row(measure, fm.perSec, bq.perSec, { unit: '/s', target: '≥ 0.50×', pass: (_v, r) => r !== null && r >= 0.5 });
    notes.push(
      `(*6) closed loops of 50, 3 interleaved slices of ${SL / 1000} s each: Flowmeter trigger → run-end event (worker process --concurrency 50) vs BullMQ Queue.add (Flowmeter's job options) → QueueEvents 'completed' with a no-op Worker process of the same concurrency. CPU, Flowmeter: ${cpuF.text()}; BullMQ: ${cpuB.text('job')}.`,
    );
  } catch (err) {
    failedRow(measure, '≥ 0.50×', err);
  } finally {
    await bull?.close();
    for (const w of procs) await w.stop();
    await p?.close();
  }
}
