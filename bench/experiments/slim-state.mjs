/**
 * EXPERIMENT ONLY (it breaks resume after a crash; never use it in production): a worker
 * preload that checkpoints the run state without the loop frames' `input`/`items` and without
 * the `msg` of loop-iteration work items, i.e. as if those were stored once per frame instead
 * of in every checkpoint. It measures what an O(1) checkpoint state would give:
 *
 *   BENCH_WORKER_ARGS="--import ./bench/experiments/slim-state.mjs" BENCH_ONLY=long,rss npm run bench
 */
const mod = await import(new URL('../../dist/engine/redis-stores.js', import.meta.url).href);
const orig = mod.RedisRunStore.prototype.checkpointAndSettle;
mod.RedisRunStore.prototype.checkpointAndSettle = function (run, tasks, settlement, ended) {
  const pending = run.pending;
  if (pending) {
    run.pending = {
      ...pending,
      items: pending.items.map((it) => (it.iterate ? { ...it, msg: null } : it)),
      frames: Object.fromEntries(Object.entries(pending.frames).map(([id, f]) => [id, f.kind === 'loop' ? { ...f, input: null, items: f.items.length } : f])),
    };
  }
  try {
    // checkpointAndSettle serialises run.pending synchronously, before its first await.
    return orig.call(this, run, tasks, settlement, ended);
  } finally {
    run.pending = pending;
  }
};
process.stderr.write('bench experiment: slim checkpoint state (resume is broken in this process)\n');
