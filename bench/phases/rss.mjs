/** Phase `rss` (queue mode): the peak memory of a worker process running a large loop. */
import { performance } from 'node:perf_hooks';
import { cpuTally, memOf, sleep, startWorker, treeMem } from '../lib/processes.mjs';
import { openProduction, runEnds, stateSize, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

// ---- 7. Peak RSS of a worker running a 10,000-item loop with 1 KB items ------------------
export async function rssPhase(ctx) {
  const { redis, diag, log, left } = ctx;
  const { notes, lost, row, failedRow } = ctx.table;
  const measure = 'worker peak RSS, 10,000-item loop with 1 KB items (*7)';
  const total = 'worker + its sandbox host processes, peak RSS summed, same run (*7)';
  let w = null;
  let p = null;
  try {
    const prefix = uniquePrefix('rss');
    const tenant = 'rss';
    p = await openProduction(redis.url, prefix, tenant, [SCN.loop1]);
    const ends = await runEnds(p, tenant);
    w = await startWorker(ctx, redis.url, prefix, 4);
    await sleep(500);
    const idle = memOf(w.pid);
    const name = 'x'.repeat(1000);
    const items = Array.from({ length: 10_000 }, (_, i) => item(i, name));
    const payloadBytes = Buffer.byteLength(JSON.stringify({ items }));
    log(`rss: idle worker VmHWM ${idle.hwm.toFixed(1)} MB; triggering a 10,000-item loop (payload ${(payloadBytes / 1e6).toFixed(1)} MB)`);
    let peakRss = idle.rss;
    const idleTree = treeMem(w.pid);
    const peakTree = { ...idleTree };
    const sampler = setInterval(() => {
      const m = memOf(w.pid);
      if (m.rss > peakRss) peakRss = m.rss;
      const t = treeMem(w.pid);
      if (t.rss > peakTree.rss) Object.assign(peakTree, { rss: t.rss, processes: t.processes });
      if (t.pss > peakTree.pss) peakTree.pss = t.pss;
    }, 50);
    const t0 = performance.now();
    const budget = Math.max(20_000, Math.min(150_000, left() - 60_000));
    let end;
    let timedOut = false;
    const cpu = cpuTally();
    let stateBytes = NaN;
    try {
      const run = await p.trigger(tenant, 'loop1', { items }, { type: 'manual' });
      const size = stateSize(diag, p, tenant, run.runId);
      end = await cpu
        .around({ worker: w.pid, 'redis-server': redis.pid }, () => ends.wait(run.runId, budget))
        .catch((e) => {
          timedOut = true;
          return { t: performance.now(), status: `not ended: ${e.message}`, actions: NaN };
        });
      stateBytes = await size.stop();
    } finally {
      clearInterval(sampler);
    }
    const peak = memOf(w.pid);
    const ms = end.t - t0;
    log(
      `rss: run ${end.status} in ${ms.toFixed(0)} ms (${end.actions} actions); VmHWM ${peak.hwm.toFixed(1)} MB, sampled peak VmRSS ${peakRss.toFixed(1)} MB; CPU ${cpu.text()}; largest checkpointed state ${(stateBytes / 1e6).toFixed(1)} MB`,
    );
    row(measure, peak.hwm, idle.hwm, { unit: ' MB', digits: 1, target: '≤ 200 MB', pass: (v) => (timedOut || end.status !== 'succeeded' ? false : v <= 200) });
    log(
      `rss: worker + sandbox hosts: idle ${idleTree.rss.toFixed(1)} MB RSS (${idleTree.pss.toFixed(1)} MB PSS, ${idleTree.processes} processes); peak ${peakTree.rss.toFixed(1)} MB RSS (${peakTree.pss.toFixed(1)} MB PSS, ${peakTree.processes} processes)`,
    );
    row(total, peakTree.rss, idleTree.rss, {
      unit: ' MB',
      digits: 1,
      target: '≤ 250 MB',
      pass: (v) => (timedOut || end.status !== 'succeeded' ? false : v <= 250),
    });
    notes.push(
      `(*7) VmHWM of a fresh worker process (--concurrency 4) after one run of a 10,000-item loop, items ~1 KB (payload ${(payloadBytes / 1e6).toFixed(1)} MB); baseline: the same process idle, after 'worker ready'. The run ${timedOut ? `did NOT end within ${(budget / 1000).toFixed(0)} s (${end.status})` : `${end.status} in ${(ms / 1000).toFixed(1)} s = ${(end.actions / (ms / 1000)).toFixed(0)} actions/s`} (CPU: ${cpu.text()}; checkpointed state up to ${(stateBytes / 1e6).toFixed(1)} MB). Worker + sandbox hosts: the largest sum of VmRSS over the worker and its child processes, sampled every 50 ms (${peakTree.processes} processes then; summed PSS, shared pages split, peaked at ${peakTree.pss.toFixed(1)} MB); baseline: the same sum idle.`,
    );
    await ends.stop();
    if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
  } catch (err) {
    failedRow(measure, '≤ 200 MB', err);
    failedRow(total, '≤ 250 MB', err);
  } finally {
    // A run still going is not waited for: SIGKILL.
    await w?.stop(2000);
    await p?.close();
  }
}
