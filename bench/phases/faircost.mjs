/**
 * Phase `faircost` (queue mode): the fairness layer's cost. 1-node runs/s of one tenant (closed
 * loop of 50, worker --concurrency 50), this build against the build before fair dispatch
 * (BENCH_BASE: the directory of that build, e.g. a worktree of main with dist/ built), in
 * interleaved slices on the same redis-server.
 */
import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closedLoop, slices } from '../lib/loops.mjs';
import { startWorker } from '../lib/processes.mjs';
import { openProduction, runEnds, uniquePrefix } from '../lib/production.mjs';
import { item, SCN } from '../lib/scenarios.mjs';

export async function faircostPhase(ctx) {
  const { redis, log, W } = ctx;
  const { notes, lost, row, failedRow } = ctx.table;
  const measure = 'fairness cost: 1-node runs/s, one tenant, vs the build before fair dispatch (*F)';
  const base = process.env.BENCH_BASE ? resolve(process.env.BENCH_BASE) : null;
  const procs = [];
  const opened = [];
  try {
    if (!base) throw new Error('set BENCH_BASE to the directory of the build to compare with');
    // Its production API is loaded into this process: a second copy of isolated-vm's native
    // module would abort it (an assertion in isolated-vm), so it must resolve to this one.
    const ivm = (root) => {
      try {
        return realpathSync(join(root, 'node_modules', 'isolated-vm'));
      } catch {
        return null;
      }
    };
    if (ivm(base) !== ivm(ctx.root)) {
      throw new Error(
        `BENCH_BASE ${base} has its own node_modules: link it to this one (ln -s ${join(ctx.root, 'node_modules')} ${join(base, 'node_modules')})`,
      );
    }
    const { createProduction: baseProduction } = await import(pathToFileURL(join(base, 'dist', 'redis', 'production.js')).href);
    const tenant = 'one';
    const setup = async (open, root, what) => {
      const prefix = uniquePrefix(what);
      const p = await open(prefix);
      opened.push(p);
      const ends = await runEnds(p, tenant);
      procs.push(await startWorker({ ...ctx, root, bin: join(root, 'bin', 'flowmeter.js') }, redis.url, prefix, 50));
      let k = 0;
      const launch = async () => {
        const run = await p.trigger(tenant, 'one', item(k++), { type: 'manual' });
        const end = await ends.wait(run.runId, 60_000);
        return { t: end.t, status: end.status };
      };
      return { ends, launch };
    };
    const fair = await setup((prefix) => openProduction(redis.url, prefix, tenant, [SCN.one]), ctx.root, 'fair');
    const old = await setup(
      async (prefix) => {
        const p = await baseProduction({ redisUrl: redis.url, prefix });
        await p.ledger.setQuota(tenant, { monthlyActions: 1e9 });
        await p.scenarios.deploy(tenant, SCN.one);
        return p;
      },
      base,
      'base',
    );
    const SL = W(2000);
    log('faircost: warm-up, both (1 s each)');
    await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(1000), launch: old.launch });
    await closedLoop({ inflight: 50, warmMs: 0, measureMs: W(1000), launch: fair.launch });
    const f = slices();
    const o = slices();
    // Alternating which build goes first (ABBA): on this shared machine a slice's rate drifts
    // by 10-15% from one slice to the next, and a fixed order would bias the ratio.
    const PAIRS = 4;
    for (let i = 0; i < PAIRS; i++) {
      const both = [
        ['before fair dispatch', old, o],
        ['this build', fair, f],
      ];
      if (i % 2 === 1) both.reverse();
      log(`faircost: slice pair ${i + 1}/${PAIRS}: ${both[0][0]} ${SL} ms, then ${both[1][0]} ${SL} ms`);
      for (const [, s, acc] of both) acc.add(await closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: s.launch }));
    }
    for (const s of [fair, old]) {
      await s.ends.stop();
      if (s.ends.missed > 0) lost.push(`${s.ends.missed} run-end events in faircost`);
    }
    log(`faircost: this build ${f.perSec.toFixed(0)} runs/s; before fair dispatch ${o.perSec.toFixed(0)} runs/s`);
    row(measure, f.perSec, o.perSec, { unit: '/s', target: '≥ 0.90×', pass: (_v, r) => r !== null && r >= 0.9 });
    notes.push(
      `(*F) closed loops of 50, 4 pairs of interleaved slices of ${SL / 1000} s each (the order alternating), trigger → run-end event, one worker process --concurrency 50 each; baseline: the build in ${base} (its own worker process and production API), same redis-server.`,
    );
  } catch (err) {
    failedRow(measure, '≥ 0.90×', err);
  } finally {
    for (const w of procs) await w.stop();
    for (const p of opened) await p.close();
  }
}
