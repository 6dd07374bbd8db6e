/** Phase `latency` (queue mode): trigger → ended run record, one run at a time, against raw BullMQ. */
import { performance } from 'node:perf_hooks';
import { newRun } from '../../dist/engine/run-record.js';
import { rawBull } from '../lib/baselines.mjs';
import { quantile } from '../lib/loops.mjs';
import { startBullWorker, startWorker } from '../lib/processes.mjs';
import { openProduction, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

// ---- 8. Latency: trigger → finished run record, idle worker -------------------------------
export async function latencyPhase(ctx) {
  const { redis, log, scale } = ctx;
  const { rows, notes, row, failedRow } = ctx.table;
  const m50 = 'latency p50, trigger → ended run record, 3 Function, idle worker (*8)';
  const m99 = 'latency p99, same';
  const procs = [];
  let p = null;
  let bull = null;
  try {
    const N = Math.max(100, Math.round(1000 * Math.min(1, scale)));
    const bprefix = `{${uniquePrefix('lbull')}:q}`;
    procs.push(await startBullWorker(ctx, redis.url, bprefix, 4));
    bull = await rawBull(redis.url, bprefix, log);
    const prefix = uniquePrefix('lat');
    const tenant = 'lat';
    p = await openProduction(redis.url, prefix, tenant, [SCN.chain3]);
    procs.push(await startWorker(ctx, redis.url, prefix, 4));
    // What `flowmeter trigger ID --wait` does: subscribe, persist + enqueue, wait for the end, read the record.
    const fmOne = async (i) => {
      const t0 = performance.now();
      const scenario = await p.scenarios.get(tenant, 'chain3');
      const run = newRun(scenario, tenant, { type: 'manual' });
      const ended = await p.waitFor(
        tenant,
        run.runId,
        async () => {
          await p.runs.create(run, scenario, item(i));
          await p.queue.enqueue({ tenant, runId: run.runId });
        },
        30_000,
      );
      const ms = performance.now() - t0;
      if (ended.status !== 'succeeded' || ended.tasks.length !== 4) throw new Error(`run ${ended.status} with ${ended.tasks.length} tasks`);
      return ms;
    };
    const bullOne = async () => {
      const t0 = performance.now();
      return (await bull.job()) - t0;
    };
    log('latency: warm-up, 50 of each');
    for (let i = 0; i < 50; i++) {
      await bullOne();
      await fmOne(i);
    }
    const fl = [];
    const bl = [];
    const block = N / 10;
    log(`latency: ${N} sequential of each, in 10 interleaved blocks of ${block}`);
    for (let b = 0; b < 10; b++) {
      for (let i = 0; i < block; i++) bl.push(await bullOne());
      for (let i = 0; i < block; i++) fl.push(await fmOne(i));
    }
    const f50 = quantile(fl, 0.5);
    const f99 = quantile(fl, 0.99);
    const b50 = quantile(bl, 0.5);
    const b99 = quantile(bl, 0.99);
    log(`latency: flowmeter p50 ${f50.toFixed(2)} ms p99 ${f99.toFixed(2)} ms; BullMQ p50 ${b50.toFixed(2)} ms p99 ${b99.toFixed(2)} ms`);
    row(m50, f50, b50, { unit: ' ms', digits: 2, target: '≤ 5 ms', pass: (v) => v <= 5 });
    row(m99, f99, b99, { unit: ' ms', digits: 2, target: '(report)', pass: () => null });
    notes.push(
      `(*8) ${N} sequential runs, as \`flowmeter trigger --wait\` does it (scenarios.get, newRun, waitFor(create + enqueue), then the record is read back), worker --concurrency 4 otherwise idle; baseline: a raw BullMQ no-op job, Queue.add → QueueEvents 'completed', with an idle Worker process; the two interleaved in 10 blocks.`,
    );
  } catch (err) {
    if (!rows.some((r) => r.measure === m50)) failedRow(m50, '≤ 5 ms', err);
  } finally {
    await bull?.close();
    for (const w of procs) await w.stop();
    await p?.close();
  }
}
