/**
 * `npm run bench`: Flowmeter's performance against baselines measured in the same run (so a
 * ratio holds on a noisy machine). Progress goes to stderr, ONE table to stdout at the end.
 *
 * Embedded mode and the sandbox are measured in this process; queue mode uses a private
 * redis-server on a free port (killed at the end), the production API in this process for
 * triggering (createProduction, unique key prefix per phase) and worker PROCESSES started
 * from the CLI (`node --no-node-snapshot bin/flowmeter.js --redis URL --prefix P worker`).
 *
 * Environment:
 *   BENCH_ONLY=embedded,sandbox,throughput,long,onenode,rss,latency,neighbour,noisy,faircost,cluster   run only these phases
 *   BENCH_BASE=DIR      faircost: the build to compare with (a checkout with dist/ built, whose
 *                       node_modules is this one's: two copies of isolated-vm abort the process)
 *   BENCH_PROFILE=DIR   start worker processes with `--cpu-prof --cpu-prof-dir DIR`
 *                       (summarise with `node bench/profile-top.mjs DIR/*.cpuprofile`)
 *   BENCH_SCALE=0.25    scale the timed windows (quick smoke runs)
 *   BENCH_WORKER_ARGS="--import ./bench/experiments/mem-peak.mjs"   extra node arguments for
 *                       worker processes (experiments: see bench/experiments/)
 *   REDIS_SERVER=path   the redis-server binary (default: redis-server on PATH)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// isolated-vm needs --no-node-snapshot on Node 20+: re-exec this script with it.
if (!process.execArgv.includes('--no-node-snapshot')) {
  const child = spawn(process.execPath, ['--no-node-snapshot', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

async function main() {
  const { existsSync } = await import('node:fs');
  const { loadavg } = await import('node:os');
  const { dirname, join, resolve } = await import('node:path');
  const { performance } = await import('node:perf_hooks');

  const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const BIN = join(ROOT, 'bin', 'flowmeter.js');
  if (!existsSync(join(ROOT, 'dist', 'redis', 'production.js'))) {
    process.stderr.write('bench: dist/ is missing; run `npm run build` first (npm run bench does)\n');
    process.exit(2);
  }
  // Loaded only here: the re-exec above needs none of it, and the product comes from dist/.
  const { Redis } = await import('ioredis');
  const { createTable } = await import('./lib/table.mjs');
  const { killAll, startRedis } = await import('./lib/processes.mjs');
  const { embeddedPhase } = await import('./phases/embedded.mjs');
  const { sandboxPhase } = await import('./phases/sandbox.mjs');
  const { throughputPhase } = await import('./phases/throughput.mjs');
  const { longPhase } = await import('./phases/long.mjs');
  const { onenodePhase } = await import('./phases/onenode.mjs');
  const { rssPhase } = await import('./phases/rss.mjs');
  const { latencyPhase } = await import('./phases/latency.mjs');
  const { neighbourPhase } = await import('./phases/neighbour.mjs');
  const { clusterPhase } = await import('./phases/cluster.mjs');
  const { noisyPhase } = await import('./phases/noisy.mjs');
  const { faircostPhase } = await import('./phases/faircost.mjs');

  const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
  const want = (phase) => !ONLY || ONLY.has(phase);
  const PROFILE_DIR = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : null;
  const SCALE = Number(process.env.BENCH_SCALE ?? 1) || 1;
  const WORKER_ARGS = (process.env.BENCH_WORKER_ARGS ?? '').split(' ').filter(Boolean);
  const BENCH_START = performance.now();
  const LOAD_AT_START = loadavg()[0];
  const BENCH_BUDGET_MS = 330_000; // the whole bench stays under ~5.5 minutes
  const log = (s) => process.stderr.write(`[bench ${((performance.now() - BENCH_START) / 1000).toFixed(1).padStart(5)}s] ${s}\n`);
  const left = () => BENCH_BUDGET_MS - (performance.now() - BENCH_START);

  // ---- results -----------------------------------------------------------------------------
  const table = createTable({ benchStart: BENCH_START, loadAtStart: LOAD_AT_START });
  const { errors, lost, failedRow, printTable } = table;
  const watchdog = setTimeout(() => {
    log('bench: over its time budget; printing what was measured and stopping');
    errors.push('the bench went over its time budget; later measures are missing');
    printTable();
    killAll();
    process.stdout.write('', () => process.exit(1));
  }, BENCH_BUDGET_MS + 45_000);
  watchdog.unref();

  // ---- child processes (killed at the end, whatever happens) -------------------------------
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'])
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });

  /**
   * What every phase gets: the worker-process settings (root, bin, profileDir, workerArgs),
   * the time helpers, the results table, and (queue mode) the private redis-server with a
   * diagnostics connection to it.
   */
  const ctx = {
    root: ROOT,
    bin: BIN,
    profileDir: PROFILE_DIR,
    workerArgs: WORKER_ARGS,
    scale: SCALE,
    log,
    left,
    table,
    redis: null,
    diag: null,
    W: (ms) => Math.max(500, Math.round(ms * SCALE)),
  };

  // 1. Embedded mode (in this process)
  if (want('embedded')) await embeddedPhase(ctx);
  // 2. A warm Function call against bare isolated-vm
  if (want('sandbox')) await sandboxPhase(ctx);

  // ==========================================================================================
  // Queue mode: a private redis-server
  // ==========================================================================================
  const queuePhases = ['throughput', 'long', 'onenode', 'rss', 'latency', 'neighbour', 'noisy', 'faircost'].filter(want);
  let redis = null;
  let diag = null;
  if (queuePhases.length > 0) {
    try {
      redis = await startRedis();
      diag = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      diag.on('error', () => undefined);
      log(`redis-server pid ${redis.pid} on ${redis.url}`);
    } catch (err) {
      for (const ph of queuePhases) failedRow(`queue mode: ${ph}`, '', err);
    }
  }
  ctx.redis = redis;
  ctx.diag = diag;

  // 3 + 6. 50 concurrent 10-node chains: one worker, then two
  if (redis && want('throughput')) await throughputPhase(ctx);
  // 4. One long run: a 10,000-item loop
  if (redis && want('long')) await longPhase(ctx);
  // 5. Runs/s of a 1-node scenario against raw BullMQ
  if (redis && want('onenode')) await onenodePhase(ctx);
  // 7. Peak RSS of a worker running a 10,000-item loop with 1 KB items
  if (redis && want('rss')) await rssPhase(ctx);
  // 8. Latency: trigger → finished run record, idle worker
  if (redis && want('latency')) await latencyPhase(ctx);
  // 9. Latency of a one-node run while another tenant's Function computes 10 s on the worker
  if (redis && want('neighbour')) await neighbourPhase(ctx);
  // 9. Noisy neighbour: a tenant's latency behind another's backlog; 10. the fairness layer's cost
  if (redis && want('noisy')) await noisyPhase(ctx);
  if (redis && want('faircost')) await faircostPhase(ctx);

  if (redis) {
    try {
      const info = await diag.info('stats');
      const dropped = /client_output_buffer_limit_disconnections:(\d+)/.exec(info)?.[1];
      if (dropped && dropped !== '0')
        lost.push(`redis-server disconnected ${dropped} clients over their output buffer limit (pub/sub subscribers falling behind)`);
    } catch {
      /* diagnostics only */
    }
    diag.disconnect();
    await redis.stop();
    log('redis-server stopped');
  }
  // 9. One Redis vs a 3-primary Redis Cluster (its own servers)
  if (want('cluster')) await clusterPhase(ctx);
  clearTimeout(watchdog);
  printTable();
  killAll();
  // Isolates and sockets may keep the loop alive: leave once stdout has drained.
  process.stdout.write('', () => process.exit(errors.length ? 1 : 0));
}
