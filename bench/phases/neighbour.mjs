/**
 * Phase `neighbour` (queue mode): a tenant's one-node runs on a worker while another tenant's
 * Function computes for 10 s on the same worker (SPEC §10: a long Function does not stall the
 * worker). Baseline: the same runs on the same worker, idle.
 */
import { performance } from 'node:perf_hooks';
import { newRun } from '../../dist/engine/run-record.js';
import { validateScenario } from '../../dist/scenario/validate.js';
import { quantile } from '../lib/loops.mjs';
import { sleep, startWorker } from '../lib/processes.mjs';
import { openProduction, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

/** Tenant A's run: one Function busy for 10 s (its timeout allows it). */
const SPIN_MS = 10_000;
const SPIN = validateScenario({
  id: 'spin',
  start: 'busy',
  nodes: [{ id: 'busy', type: 'function', timeoutMs: 15_000, code: `const t = Date.now(); while (Date.now() - t < ${SPIN_MS}) {} return { payload: 1 };` }],
}).scenario;

// ---- 9. Latency of a one-node run next to a 10 s Function --------------------------------
export async function neighbourPhase(ctx) {
  const { redis, log, scale } = ctx;
  const { rows, notes, row, failedRow } = ctx.table;
  const m50 = "latency p50, trigger → ended run, 1 Function, while another tenant's Function computes 10 s on the worker (*9)";
  const m99 = 'latency p99, same';
  let w = null;
  let p = null;
  try {
    const prefix = uniquePrefix('nb');
    p = await openProduction(redis.url, prefix, 'b', [SCN.one]);
    await p.ledger.setQuota('a', { monthlyActions: 1e9 });
    await p.scenarios.deploy('a', SPIN);
    w = await startWorker(ctx, redis.url, prefix, 4);
    const one = SCN.one;
    // Tenant B's run, as `flowmeter trigger --wait` does it: persist + enqueue, wait for the end.
    const bOne = async (i) => {
      const t0 = performance.now();
      const run = newRun(one, 'b', { type: 'manual' });
      const ended = await p.waitFor(
        'b',
        run.runId,
        async () => {
          await p.runs.create(run, one, item(i));
          await p.queue.enqueue({ tenant: 'b', runId: run.runId });
        },
        30_000,
      );
      if (ended.status !== 'succeeded') throw new Error(`tenant b's run ${ended.status}`);
      return { ms: performance.now() - t0, t: performance.now() };
    };
    const N = Math.max(50, Math.round(200 * Math.min(1, scale)));
    log('neighbour: warm-up, 30 runs of tenant b');
    for (let i = 0; i < 30; i++) await bOne(i);
    log(`neighbour: ${N} sequential runs of tenant b, idle worker`);
    const idle = [];
    for (let i = 0; i < N; i++) idle.push((await bOne(i)).ms);

    // Tenant A's 10 s Function: b's runs measured from when it computes until it ends.
    const a = await p.trigger('a', 'spin', null, { type: 'manual' });
    const aEnd = p.waitFor('a', a.runId, async () => undefined, SPIN_MS + 30_000);
    let aEnded = null;
    void aEnd.then((r) => (aEnded = { t: performance.now(), status: r.status }));
    await sleep(500); // claimed, and its Function computing
    const t0 = performance.now();
    const busy = [];
    let i = 0;
    while (!aEnded && performance.now() - t0 < SPIN_MS) {
      const r = await bOne(i++);
      if (!aEnded || r.t <= aEnded.t) busy.push(r.ms);
    }
    const aDone = await aEnd;
    const aMs = (aEnded?.t ?? performance.now()) - t0 + 500;
    if (aDone.status !== 'succeeded') throw new Error(`tenant a's 10 s run ${aDone.status}: ${JSON.stringify(aDone.error)}`);
    if (busy.length < 10) throw new Error(`only ${busy.length} of tenant b's runs ended while tenant a's Function computed`);
    const i50 = quantile(idle, 0.5);
    const i99 = quantile(idle, 0.99);
    const b50 = quantile(busy, 0.5);
    const b99 = quantile(busy, 0.99);
    log(
      `neighbour: idle p50 ${i50.toFixed(2)} ms p99 ${i99.toFixed(2)} ms; next to a 10 s Function p50 ${b50.toFixed(2)} ms p99 ${b99.toFixed(2)} ms (${busy.length} runs; a's run ended ${(aMs / 1000).toFixed(1)} s after its trigger)`,
    );
    row(m50, b50, i50, { unit: ' ms', digits: 2, target: '≤ 2× idle', pass: (_v, ratio) => ratio !== null && ratio <= 2 });
    row(m99, b99, i99, { unit: ' ms', digits: 2, target: '(report)', pass: () => null });
    notes.push(
      `(*9) One worker process (--concurrency 4, its default sandbox pool). Tenant b's one-Function runs, sequential, as \`flowmeter trigger --wait\` does them (create + enqueue, wait for the end event): ${busy.length} of them while tenant a's run had a Function busy for 10 s (ended ${(aMs / 1000).toFixed(1)} s after its trigger); baseline: ${N} of them on the same worker idle, just before.`,
    );
  } catch (err) {
    if (!rows.some((r) => r.measure === m50)) failedRow(m50, '≤ 2× idle', err);
  } finally {
    await w?.stop(2000);
    await p?.close();
  }
}
