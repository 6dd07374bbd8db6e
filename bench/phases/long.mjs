/** Phase `long` (queue mode): the action rate of one long run. */
import { performance } from 'node:perf_hooks';
import { evalshaRate } from '../lib/baselines.mjs';
import { median } from '../lib/loops.mjs';
import { cpuTally, startWorker } from '../lib/processes.mjs';
import { openProduction, runEnds, stateSize, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

// ---- 4. One long run: a 10,000-item loop -------------------------------------------------
export async function longPhase(ctx) {
  const { redis, diag, log, W } = ctx;
  const { notes, lost, row, failedRow } = ctx.table;
  const measure = 'queue: actions/s, one run, 10,000-item loop × 1 Function (*5)';
  let w = null;
  let p = null;
  try {
    const prefix = uniquePrefix('long');
    const tenant = 'long';
    p = await openProduction(redis.url, prefix, tenant, [SCN.loop1]);
    const ends = await runEnds(p, tenant);
    w = await startWorker(ctx, redis.url, prefix, 4);
    const cpu = cpuTally();
    const once = async (n, tally = cpuTally()) => {
      const items = Array.from({ length: n }, (_, i) => item(i));
      const t0 = performance.now();
      const run = await p.trigger(tenant, 'loop1', { items }, { type: 'manual' });
      const size = stateSize(diag, p, tenant, run.runId);
      const end = await tally.around({ worker: w.pid, 'redis-server': redis.pid }, () => ends.wait(run.runId, 120_000));
      const stateBytes = await size.stop();
      if (end.status !== 'succeeded') throw new Error(`run ${end.status}`);
      return { ms: end.t - t0, actions: end.actions, stateBytes };
    };
    log('long: warm-up run (200 items)');
    await once(200);
    // Interleaved: baseline, run, baseline, run, baseline (median of the baseline slices).
    const seq = [];
    const runs = [];
    for (let i = 0; i < 2; i++) {
      log('long: sequential EVALSHA round trips, 1 s');
      seq.push(await evalshaRate(redis.url, { inflight: 1, ms: W(1000) }));
      log(`long: flowmeter, one run of 10,000 items (${i + 1}/2)`);
      runs.push(await once(10_000, cpu));
    }
    seq.push(await evalshaRate(redis.url, { inflight: 1, ms: W(1000) }));
    const base = median(seq);
    const actions = runs.reduce((a, r) => a + r.actions, 0);
    const ms = runs.reduce((a, r) => a + r.ms, 0);
    const rate = actions / (ms / 1000);
    const stateBytes = Math.max(...runs.map((r) => r.stateBytes));
    log(
      `long: ${runs.map((r) => `${r.actions} actions in ${r.ms.toFixed(0)} ms`).join(', ')} = ${rate.toFixed(0)}/s; sequential EVALSHA ${seq.map((x) => x.toFixed(0)).join(' / ')} per s; CPU ${cpu.text()}; largest checkpointed state ${(stateBytes / 1e6).toFixed(2)} MB`,
    );
    row(measure, rate, base, { unit: '/s', target: '≥ 2.00×', pass: (_v, x) => x !== null && x >= 2 });
    notes.push(
      `(*5) ${runs[0].actions.toLocaleString('en-US')} actions per run (trigger + loop + 10,000 iterations + 10,000 Function), trigger → run-end event, 2 runs: ${runs.map((r) => `${(r.ms / 1000).toFixed(2)} s`).join(', ')} (CPU: ${cpu.text()}; the run's checkpointed state reached ${(stateBytes / 1e6).toFixed(2)} MB); baseline: sequential awaited EVALSHA \`return 1\` round trips per second, median of 3 slices of ${W(1000) / 1000} s around the runs (${seq.map((x) => x.toFixed(0)).join(', ')}).`,
    );
    await ends.stop();
    if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
  } catch (err) {
    failedRow(measure, '≥ 2.00×', err);
  } finally {
    await w?.stop();
    await p?.close();
  }
}
