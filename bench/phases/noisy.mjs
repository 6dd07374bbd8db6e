/**
 * Phase `noisy` (queue mode): the noisy neighbour (SPEC §10 "Fairness"). Tenant B's runs,
 * one after another (trigger → ended run record, as `?wait=true` does), on one worker process:
 * first idle, then while tenant A has a backlog of 3,000 queued runs of a 200-item loop.
 */
import { performance } from 'node:perf_hooks';
import { newRun } from '../../dist/engine/run-record.js';
import { quantile } from '../lib/loops.mjs';
import { startWorker } from '../lib/processes.mjs';
import { openProduction, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

export async function noisyPhase(ctx) {
  const { redis, log, scale } = ctx;
  const { rows, notes, row, failedRow } = ctx.table;
  const m50 = "noisy neighbour: tenant B's p50 trigger → ended, A's 3,000-run backlog vs idle (*N)";
  const m99 = "noisy neighbour: tenant B's p99, same";
  let p = null;
  let worker = null;
  try {
    const N = Math.max(40, Math.round(500 * Math.min(1, scale)));
    const BACKLOG = 3000;
    const prefix = uniquePrefix('noisy');
    p = await openProduction(redis.url, prefix, 'quiet', [SCN.one]);
    await p.ledger.setQuota('noisy', { monthlyActions: 1e9 });
    await p.scenarios.deploy('noisy', SCN.loop1);
    worker = await startWorker(ctx, redis.url, prefix, 4);
    const scenario = await p.scenarios.get('quiet', 'one');
    // Where B's time goes: waiting to start (trigger → startedAt) and executing (→ finishedAt).
    // Per run of B, ms: persisted, pushed (dispatch and BullMQ job), from then to its claim by
    // the worker (startedAt), executing, and from its end to the run-end event here.
    let parts = [];
    const bOne = async (i) => {
      const t0 = performance.now();
      const wall0 = Date.now();
      const run = newRun(scenario, 'quiet', { type: 'webhook' });
      let created = 0;
      let pushed = 0;
      const ended = await p.waitFor(
        'quiet',
        run.runId,
        async () => {
          await p.runs.create(run, scenario, item(i));
          created = Date.now();
          await p.queue.enqueue({ tenant: 'quiet', runId: run.runId, scenarioId: 'one' });
          pushed = Date.now();
        },
        60_000,
      );
      if (ended.status !== 'succeeded') throw new Error(`tenant B's run ${ended.status}`);
      const started = Date.parse(ended.startedAt);
      const finished = Date.parse(ended.finishedAt);
      parts.push([created - wall0, pushed - created, started - pushed, finished - started, Date.now() - finished]);
      return performance.now() - t0;
    };
    log('noisy: warm-up, 20 runs of B');
    for (let i = 0; i < 20; i++) await bOne(i);
    log(`noisy: ${N} sequential runs of B, idle`);
    const idle = [];
    parts = [];
    for (let i = 0; i < N; i++) idle.push(await bOne(i));
    const idleParts = parts;
    log(`noisy: tenant A queues ${BACKLOG} runs of a 200-item loop`);
    const items = { items: Array.from({ length: 200 }, (_, i) => item(i)) };
    for (let i = 0; i < BACKLOG; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, BACKLOG - i) }, () => p.trigger('noisy', 'loop1', items, { type: 'webhook' })));
    }
    const queuedAtStart = await p.queue.depth();
    log(`noisy: ${N} sequential runs of B behind A's backlog (${queuedAtStart} runs queued or executing)`);
    const busy = [];
    parts = [];
    for (let i = 0; i < N; i++) busy.push(await bOne(i));
    const busyParts = parts;
    const split = (ps) =>
      ['persist', 'push', 'to claim', 'executing', 'end → event']
        .map((what, k) => {
          const xs = ps.map((x) => x[k]);
          return `${what} p50 ${quantile(xs, 0.5)} p99 ${quantile(xs, 0.99)}`;
        })
        .join(', ');
    const leftAtEnd = await p.queue.depth();
    const i50 = quantile(idle, 0.5);
    const i99 = quantile(idle, 0.99);
    const b50 = quantile(busy, 0.5);
    const b99 = quantile(busy, 0.99);
    log(
      `noisy: B idle p50 ${i50.toFixed(2)} ms p99 ${i99.toFixed(2)} ms; behind A: p50 ${b50.toFixed(2)} ms p99 ${b99.toFixed(2)} ms; A still had ${leftAtEnd} runs queued or executing`,
    );
    row(m50, b50, i50, { unit: ' ms', digits: 2, target: '(report)', pass: () => null });
    row(m99, b99, i99, { unit: ' ms', digits: 2, target: '≤ 3× idle', pass: (_v, r) => r !== null && r <= 3 });
    notes.push(
      `(*N) one worker process (--concurrency 4); tenant B: ${N} sequential 1-Function runs (create + enqueue, wait for the run-end event, read the record), first with nothing else queued (the baseline column), then right after tenant A queued ${BACKLOG} runs of a 200-item loop (${queuedAtStart} A runs queued or executing when B started, ${leftAtEnd} still when B ended: A's backlog was there throughout). From B's run records (ms): idle ${split(idleParts)}; behind A ${split(busyParts)}.`,
    );
  } catch (err) {
    if (!rows.some((r) => r.measure === m50)) failedRow(m50, '≤ 3× idle', err);
  } finally {
    await worker?.stop(3000);
    await p?.close();
  }
}
