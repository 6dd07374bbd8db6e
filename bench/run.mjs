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
 *   BENCH_ONLY=embedded,sandbox,throughput,long,onenode,rss,latency   run only these phases
 *   BENCH_PROFILE=DIR   start worker processes with `--cpu-prof --cpu-prof-dir DIR`
 *                       (summarise with `node bench/profile-top.mjs DIR/*.cpuprofile`)
 *   BENCH_SCALE=0.25    scale the timed windows (quick smoke runs)
 *   BENCH_WORKER_ARGS="--import ./bench/experiments/slim-state.mjs"   extra node arguments for
 *                       worker processes (experiments: see bench/experiments/)
 *   REDIS_SERVER=path   the redis-server binary (default: redis-server on PATH)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// isolated-vm needs --no-node-snapshot on Node 20+: re-exec this script with it.
if (!process.execArgv.includes('--no-node-snapshot')) {
  const child = spawn(process.execPath, ['--no-node-snapshot', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

async function main() {
  const { mkdtempSync, rmSync, readFileSync, existsSync } = await import('node:fs');
  const { createServer } = await import('node:net');
  const { tmpdir, cpus, loadavg } = await import('node:os');
  const { dirname, join, resolve } = await import('node:path');
  const { performance } = await import('node:perf_hooks');

  const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const BIN = join(ROOT, 'bin', 'flowmeter.js');
  if (!existsSync(join(ROOT, 'dist', 'engine', 'production.js'))) {
    process.stderr.write('bench: dist/ is missing; run `npm run build` first (npm run bench does)\n');
    process.exit(2);
  }
  const ivm = (await import('isolated-vm')).default;
  const { Redis } = await import('ioredis');
  const { Queue, QueueEvents } = await import('bullmq');
  const { createEmbedded } = await import('../dist/engine/embedded.js');
  const { createProduction } = await import('../dist/engine/production.js');
  const { createSandbox } = await import('../dist/nodes/sandbox.js');
  const { validateScenario } = await import('../dist/engine/validate.js');
  const { newRun } = await import('../dist/engine/run-record.js');

  const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
  const want = (phase) => !ONLY || ONLY.has(phase);
  const PROFILE_DIR = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : null;
  const SCALE = Number(process.env.BENCH_SCALE ?? 1) || 1;
  const WORKER_ARGS = (process.env.BENCH_WORKER_ARGS ?? '').split(' ').filter(Boolean);
  const BENCH_START = performance.now();
  const LOAD_AT_START = loadavg()[0];
  const BENCH_BUDGET_MS = 330_000; // the whole bench stays under ~5.5 minutes
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const log = (s) => process.stderr.write(`[bench ${((performance.now() - BENCH_START) / 1000).toFixed(1).padStart(5)}s] ${s}\n`);
  const left = () => BENCH_BUDGET_MS - (performance.now() - BENCH_START);

  // ---- what every scenario runs ------------------------------------------------------------
  /** The Function node body used everywhere (chain links, loop bodies, the bare baseline). */
  const CODE = 'return { payload: { id: msg.payload.id, n: msg.payload.n + 1, name: msg.payload.name } };';
  const item = (i, name = `item-${i}`) => ({ id: i, n: i, name });
  const fn = (id, next) => ({ id, type: 'function', code: CODE, ...(next && { next }) });
  const chain = (n, prefix = 'f') => Array.from({ length: n }, (_, i) => fn(`${prefix}${i + 1}`, i + 1 < n ? `${prefix}${i + 2}` : undefined));
  const scenarioOf = (doc) => {
    const v = validateScenario(doc);
    if (!v.scenario) throw new Error(`bench scenario ${doc.id} is invalid: ${v.problems.join('; ')}`);
    return v.scenario;
  };
  const SCN = {
    chain10: scenarioOf({ id: 'chain10', start: 'f1', nodes: chain(10) }),
    chain3: scenarioOf({ id: 'chain3', start: 'f1', nodes: chain(3) }),
    one: scenarioOf({ id: 'one', start: 'f1', nodes: chain(1) }),
    loop10: scenarioOf({ id: 'loop10', start: 'each', nodes: [{ id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1', maxItems: 20_000 }, ...chain(10)] }),
    loop1: scenarioOf({ id: 'loop1', start: 'each', nodes: [{ id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1', maxItems: 20_000 }, ...chain(1)] }),
  };

  // ---- results -----------------------------------------------------------------------------
  const rows = [];
  const notes = [];
  const errors = [];
  /** Run-end events that never arrived (the run was found ended by polling instead). */
  const lost = [];
  function row(measure, flowmeter, baseline, { unit = '', digits = 0, target, pass, ratioDigits = 2 }) {
    const fmt = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}${unit}` : String(v ?? 'n/a'));
    const ratio = typeof flowmeter === 'number' && typeof baseline === 'number' && baseline > 0 ? flowmeter / baseline : null;
    const ok = pass(flowmeter, ratio);
    rows.push({ measure, flowmeter: fmt(flowmeter), baseline: fmt(baseline), ratio: ratio === null ? 'n/a' : `${ratio.toFixed(ratioDigits)}×`, target, pass: ok === null ? 'n/a' : ok ? 'yes' : 'NO' });
  }
  function failedRow(measure, target, err) {
    errors.push(`${measure}: ${err?.stack ?? err}`);
    rows.push({ measure, flowmeter: 'error', baseline: '', ratio: '', target, pass: 'NO' });
  }
  const quantile = (xs, q) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  };
  const median = (xs) => quantile(xs, 0.5);

  // ---- the table ---------------------------------------------------------------------------
  function printTable() {
    const cols = ['measure', 'flowmeter', 'baseline', 'ratio', 'target', 'pass'];
    const width = Object.fromEntries(cols.map((c) => [c, Math.max(c.length, ...rows.map((r) => String(r[c]).length))]));
    const right = new Set(['flowmeter', 'baseline', 'ratio']);
    const line = (r) => `| ${cols.map((c) => (right.has(c) ? String(r[c]).padStart(width[c]) : String(r[c]).padEnd(width[c]))).join(' | ')} |`;
    const out = [
      line(Object.fromEntries(cols.map((c) => [c, c]))),
      `|${cols.map((c) => `-${'-'.repeat(width[c])}${right.has(c) ? ':' : '-'}`).join('|')}|`,
      ...rows.map(line),
      '',
      ...notes,
      ...(lost.length ? [`Lost events (runs found ended by polling): ${lost.join('; ')}.`] : []),
      `Machine: ${cpus().length} CPUs, node ${process.version}, 1-min load average ${LOAD_AT_START.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end (other processes share the CPUs); bench took ${((performance.now() - BENCH_START) / 1000).toFixed(0)} s.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    if (errors.length) process.stderr.write(`\nbench errors:\n${errors.join('\n\n')}\n`);
  }
  const watchdog = setTimeout(() => {
    log('bench: over its time budget; printing what was measured and stopping');
    errors.push('the bench went over its time budget; later measures are missing');
    printTable();
    killAll();
    process.stdout.write('', () => process.exit(1));
  }, BENCH_BUDGET_MS + 45_000);
  watchdog.unref();

  // ---- child processes (killed at the end, whatever happens) -------------------------------
  const children = new Set();
  function track(child) {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  }
  function killAll() {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => {
    killAll();
    process.exit(130);
  });

  function freePort() {
    return new Promise((res, rej) => {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address();
        srv.close(() => res(port));
      });
    });
  }

  async function startRedis() {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fm-bench-redis-'));
    const child = track(spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        await r.ping();
        r.disconnect();
        break;
      } catch {
        r.disconnect();
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
        await sleep(50);
      }
    }
    return {
      url, port, pid: child.pid,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  /** A process whose stderr is consumed (a worker logs with sync writes: a full pipe would block it). */
  async function startProcess(name, args, readyText, timeoutMs = 20_000) {
    const child = track(spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', FLOWMETER_REDIS_URL: '', FLOWMETER_PREFIX: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    }));
    let tail = '';
    let ready = false;
    child.stderr.setEncoding('utf8').on('data', (d) => {
      if (!ready && (tail + d).includes(readyText)) ready = true;
      tail = (tail + d).slice(-4000);
    });
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const deadline = Date.now() + timeoutMs;
    while (!ready) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited before it was ready:\n${tail}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${name} was not ready within ${timeoutMs} ms:\n${tail}`);
      }
      await sleep(20);
    }
    return {
      name, pid: child.pid, child,
      get tail() {
        return tail;
      },
      /** SIGTERM (graceful: in-flight runs finish, a --cpu-prof profile is written), SIGKILL after graceMs. */
      async stop(graceMs = 15_000) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(t);
        }
        return exited;
      },
    };
  }

  function startWorker(url, prefix, concurrency) {
    const prof = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `worker-${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.cpuprofile`] : [];
    return startProcess(`worker(${prefix}, concurrency ${concurrency})`, ['--no-node-snapshot', ...prof, ...WORKER_ARGS, BIN, '--redis', url, '--prefix', prefix, 'worker', '--concurrency', String(concurrency)], '"msg":"worker ready"');
  }

  function startBullWorker(url, prefix, concurrency) {
    return startProcess(`bullmq worker(${prefix})`, [join(ROOT, 'bench', 'bullmq-worker.mjs'), url, prefix, String(concurrency)], 'bullmq worker ready');
  }

  /** VmRSS / VmHWM of a process, in MB. */
  function memOf(pid) {
    try {
      const s = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(s)?.[1] ?? NaN);
      return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
    } catch {
      return { rss: NaN, hwm: NaN };
    }
  }

  /** Polls the size of a run's checkpointed state (HSTRLEN of its `state` field); stop() → the largest seen. */
  function stateSize(p, tenant, runId) {
    let max = 0;
    let stopped = false;
    const key = p.redisKeys.run(tenant, runId);
    const loop = (async () => {
      while (!stopped) {
        try {
          max = Math.max(max, await diag.hstrlen(key, 'state'));
        } catch {
          /* diagnostics only */
        }
        await sleep(100);
      }
    })();
    return {
      async stop() {
        stopped = true;
        await loop;
        return max;
      },
    };
  }

  // ---- production helpers ------------------------------------------------------------------
  const ENDED = new Set(['succeeded', 'failed', 'halted', 'rejected']);
  let prefixCounter = 0;
  const uniquePrefix = (what) => `bench${process.pid}-${what}-${++prefixCounter}`;

  /**
   * Run-end events of a tenant, so a caller can wait for a run it triggered (even if it ended
   * first). Pub/sub can drop messages (a subscriber over Redis's output buffer limit is
   * disconnected), so a run without its event after 3 s is polled; `missed` counts those.
   */
  async function runEnds(p, tenant) {
    const early = new Map();
    const waiting = new Map();
    const ends = { missed: 0 };
    const stop = await p.subscribe(tenant, (e) => {
      if (e.type !== 'run' || !ENDED.has(e.status)) return;
      const end = { t: performance.now(), status: e.status, actions: e.actions };
      const w = waiting.get(e.runId);
      if (w) {
        waiting.delete(e.runId);
        w(end);
      } else early.set(e.runId, end);
    }, { runsOnly: true });
    ends.stop = stop;
    ends.wait = (runId, timeoutMs = 60_000) => {
      const hit = early.get(runId);
      if (hit) {
        early.delete(runId);
        return Promise.resolve(hit);
      }
      return new Promise((res, rej) => {
        const t0 = performance.now();
        let poller = null;
        const settle = (fn) => {
          clearTimeout(timer);
          clearTimeout(poller);
          waiting.delete(runId);
          fn();
        };
        const timer = setTimeout(() => settle(() => rej(new Error(`run ${runId} did not end within ${timeoutMs} ms`))), timeoutMs);
        const poll = async () => {
          try {
            const run = await p.runs.get(tenant, runId);
            if (!waiting.has(runId)) return;
            if (run && ENDED.has(run.status)) {
              ends.missed++;
              return settle(() => res({ t: performance.now(), status: run.status, actions: run.actions, polled: true }));
            }
          } catch {
            /* try again */
          }
          if (waiting.has(runId) && performance.now() - t0 < timeoutMs) poller = setTimeout(poll, 250);
        };
        poller = setTimeout(poll, 3000);
        waiting.set(runId, (end) => settle(() => res(end)));
      });
    };
    return ends;
  }

  async function openProduction(prefix, tenant, scenarios) {
    const p = await createProduction({ redisUrl: redis.url, prefix });
    await p.ledger.setQuota(tenant, { monthlyActions: 1e9 });
    for (const s of scenarios) await p.scenarios.deploy(tenant, s);
    return p;
  }

  /** CPU time (user + system) of processes, as % of one core over a window. */
  function cpuTicks(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
    } catch {
      return NaN;
    }
  }
  /**
   * Accumulates CPU over windows: { name: [busy seconds, window seconds] }, and the units
   * completed inside them (a closed loop's `all`), for CPU µs per unit.
   */
  function cpuTally() {
    const acc = {};
    let units = 0;
    return {
      around: async (named, fn) => {
        const t0 = performance.now();
        const start = Object.fromEntries(Object.entries(named).map(([k, pid]) => [k, cpuTicks(pid)]));
        const r = await fn();
        const secs = (performance.now() - t0) / 1000;
        for (const [k, pid] of Object.entries(named)) {
          const a = (acc[k] ??= [0, 0]);
          a[0] += (cpuTicks(pid) - start[k]) / 100;
          a[1] += secs;
        }
        if (r && typeof r.all === 'number') units += r.all;
        return r;
      },
      /** "worker 56%, …" (100% = one core), with "(N µs/run)" when units were counted. */
      text: (unit = 'run') => Object.entries(acc).map(([k, [busy, secs]]) => `${k} ${((100 * busy) / secs).toFixed(0)}%${units > 0 ? ` (${((busy * 1e6) / units).toFixed(0)} µs/${unit})` : ''}`).join(', '),
    };
  }

  /**
   * A closed loop: `inflight` slots, each launching one unit after another until the window
   * ends. Counts units (and their `weight`) that END inside [start+warmMs, start+warmMs+measureMs).
   */
  async function closedLoop({ inflight, warmMs, measureMs, launch, deadlineMs = 60_000 }) {
    const t0 = performance.now();
    const from = t0 + warmMs;
    const to = from + measureMs;
    let units = 0;
    let weight = 0;
    let bad = 0;
    let all = 0;
    let firstBad = null;
    const slot = async () => {
      while (performance.now() < to) {
        if (performance.now() - t0 > deadlineMs) throw new Error('closed loop over its deadline');
        const r = await launch();
        all++;
        if (r.status && r.status !== 'succeeded') {
          bad++;
          firstBad ??= r.status;
        }
        if (r.t >= from && r.t < to) {
          units++;
          weight += r.weight ?? 1;
        }
      }
    };
    await Promise.all(Array.from({ length: inflight }, slot));
    if (bad > 0) throw new Error(`${bad} runs did not succeed (first: ${firstBad})`);
    return { perSec: units / (measureMs / 1000), weightPerSec: weight / (measureMs / 1000), units, weight, secs: measureMs / 1000, all };
  }

  /** Sums closed-loop slices: rate = all units / all counted seconds. */
  function slices() {
    const acc = { units: 0, weight: 0, secs: 0 };
    return {
      add(r) {
        acc.units += r.units;
        acc.weight += r.weight;
        acc.secs += r.secs;
        return r;
      },
      get perSec() {
        return acc.units / acc.secs;
      },
      get weightPerSec() {
        return acc.weight / acc.secs;
      },
    };
  }

  /** Raw Redis: EVALSHA of `return 1` from one ioredis client; `inflight` calls at once. */
  async function evalshaClient() {
    const r = new Redis(redis.url, { maxRetriesPerRequest: null });
    r.on('error', () => undefined);
    r.defineCommand('benchNoop', { numberOfKeys: 0, lua: 'return 1' });
    await r.benchNoop(); // loads the script: every later call is an EVALSHA
    return {
      slice: (inflight, ms) => closedLoop({ inflight, warmMs: Math.min(250, ms / 4), measureMs: ms, launch: async () => {
        await r.benchNoop();
        return { t: performance.now() };
      } }),
      close: () => r.disconnect(),
    };
  }
  async function evalshaRate({ inflight, ms }) {
    const c = await evalshaClient();
    try {
      return (await c.slice(inflight, ms)).perSec;
    } finally {
      c.close();
    }
  }

  /** Raw BullMQ in this process: a Queue (adding, with Flowmeter's job options) and QueueEvents (completions). */
  async function rawBull(prefix) {
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const evConn = new Redis(redis.url, { maxRetriesPerRequest: null });
    conn.on('error', () => undefined);
    evConn.on('error', () => undefined);
    const queue = new Queue('runs', { connection: conn, prefix });
    // The prefix is new: read its event stream from the start, so no completion is missed
    // between waitUntilReady and the first XREAD.
    const events = new QueueEvents('runs', { connection: evConn, prefix, lastEventId: '0-0' });
    queue.on('error', () => undefined);
    events.on('error', (e) => log(`queue events error: ${e.message}`));
    await queue.waitUntilReady();
    await events.waitUntilReady();
    const early = new Map();
    const waiting = new Map();
    let seen = 0;
    events.on('completed', ({ jobId }) => {
      seen++;
      const t = performance.now();
      const w = waiting.get(jobId);
      if (w) {
        waiting.delete(jobId);
        w(t);
      } else early.set(jobId, t);
    });
    let n = 0;
    return {
      /** Adds one no-op job and resolves when its completion is seen. */
      async job(timeoutMs = 30_000) {
        const jobId = `j${++n}-${Math.random().toString(36).slice(2, 8)}`;
        const ended = new Promise((res, rej) => {
          const timer = setTimeout(() => {
            void queue.getJobCounts().then((c) => rej(new Error(`bullmq job ${jobId} did not complete within ${timeoutMs} ms (jobs: ${JSON.stringify(c)}, events seen ${seen}, early ${early.size}, waiting ${waiting.size})`)), rej);
          }, timeoutMs);
          waiting.set(jobId, (t) => {
            clearTimeout(timer);
            res(t);
          });
        });
        await queue.add('start', { tenant: 'bench', runId: jobId }, { jobId, removeOnComplete: true, removeOnFail: 1000, attempts: 1000, backoff: { type: 'fixed', delay: 1000 } });
        const hit = early.get(jobId);
        if (hit !== undefined) {
          early.delete(jobId);
          waiting.delete(jobId);
          return hit;
        }
        return ended;
      },
      async close() {
        await events.close();
        await queue.close();
        conn.disconnect();
        evConn.disconnect();
      },
    };
  }

  // ==========================================================================================
  // 1. Embedded mode (in this process)
  // ==========================================================================================
  const EMB_ITEMS = 20_000;
  const EMB_TARGET = 45_000;
  /** A bare isolated-vm function: same isolate settings, same timeout option, same JSON in/out. */
  function bareIsolate(code, memoryMb = 64, timeoutMs = 1000) {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
    const context = isolate.createContextSync();
    const script = isolate.compileScriptSync(`(function () {
      const parse = JSON.parse, stringify = JSON.stringify;
      const fn = Function('msg', 'vars', 'setVar', 'log', ${JSON.stringify(`"use strict";\n${code}\n`)});
      const noop = () => {};
      return (msgJson, varsJson) => stringify(fn(parse(msgJson), parse(varsJson), noop, noop));
    })()`);
    const ref = script.runSync(context, { reference: true, timeout: 10_000 });
    script.release();
    const opt = { timeout: timeoutMs };
    return {
      call: (msg, vars) => JSON.parse(ref.applySync(undefined, [JSON.stringify(msg), JSON.stringify(vars)], opt)),
      dispose: () => isolate.dispose(),
    };
  }

  if (want('embedded')) {
    const measure = `embedded: node executions/s, loop of ${EMB_ITEMS.toLocaleString('en-US')} items × chain of 10 Function (*1)`;
    try {
      log('embedded: warming up');
      const engine = createEmbedded();
      await engine.ledger.setQuota('default', { monthlyActions: 1e9 });
      const items = Array.from({ length: EMB_ITEMS }, (_, i) => item(i));
      const warm = await engine.run(SCN.loop10, { items: items.slice(0, 1000) });
      if (warm.status !== 'succeeded') throw new Error(`warm-up run ${warm.status}: ${JSON.stringify(warm.error)}`);
      const bare = bareIsolate(CODE);
      const bareRun = (n) => {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          let msg = { payload: items[i], loop: { index: i, count: n } };
          for (let k = 0; k < 10; k++) msg = bare.call(msg, {});
        }
        return performance.now() - t0;
      };
      bareRun(1000);
      log(`embedded: bare isolated-vm baseline (${EMB_ITEMS * 10} applySync calls)`);
      const bareMs1 = bareRun(EMB_ITEMS / 2);
      log(`embedded: flowmeter run (${EMB_ITEMS} items × 10 Function nodes)`);
      const t0 = performance.now();
      const run = await engine.run(SCN.loop10, { items });
      const ms = performance.now() - t0;
      const bareMs2 = bareRun(EMB_ITEMS / 2);
      bare.dispose();
      if (run.status !== 'succeeded') throw new Error(`run ${run.status}: ${JSON.stringify(run.error)}`);
      const fnTasks = run.tasks.filter((t) => t.type === 'function').length;
      const loopTasks = run.tasks.filter((t) => t.type === 'loop' && t.iteration === undefined).length;
      const counted = fnTasks + loopTasks;
      if (fnTasks !== EMB_ITEMS * 10) throw new Error(`expected ${EMB_ITEMS * 10} Function tasks, got ${fnTasks}`);
      const rate = counted / (ms / 1000);
      const bareRate = (EMB_ITEMS * 10) / ((bareMs1 + bareMs2) / 1000);
      log(`embedded: ${counted} node executions in ${ms.toFixed(0)} ms = ${rate.toFixed(0)}/s (run.actions ${run.actions}, all tasks ${run.tasks.length}); bare ${bareRate.toFixed(0)} calls/s`);
      row(measure, rate, bareRate, { unit: '/s', target: `≥ ${EMB_TARGET.toLocaleString('en-US')}/s`, pass: (v) => v >= EMB_TARGET });
      notes.push(`(*1) counts ${fnTasks.toLocaleString('en-US')} Function executions + ${loopTasks} loop node = ${counted.toLocaleString('en-US')} in ${(ms / 1000).toFixed(2)} s (the trigger and the ${EMB_ITEMS.toLocaleString('en-US')} iteration tasks are not counted; run.actions = ${run.actions.toLocaleString('en-US')}); baseline: bare isolated-vm applySync calls/s of the same code and JSON in the same process (the ceiling if the engine cost nothing); target is absolute.`);
      await engine.close();
    } catch (err) {
      failedRow(measure, `≥ ${EMB_TARGET.toLocaleString('en-US')}/s`, err);
    }
  }

  // ==========================================================================================
  // 2. A warm Function call against bare isolated-vm
  // ==========================================================================================
  if (want('sandbox')) {
    const measure = 'warm Function call, µs/call: createSandbox().run vs bare applySync (*2)';
    try {
      log('sandbox: per-call cost, interleaved rounds');
      const sandbox = createSandbox();
      const bare = bareIsolate(CODE, 64, 1000);
      const msg = { payload: item(7), loop: { index: 7, count: 20_000 } };
      const vars = {};
      const req = { tenant: 'bench', code: CODE, msg, vars, timeoutMs: 1000, memoryMb: 64 };
      const check = sandbox.run(req);
      if (JSON.stringify(check.result) !== JSON.stringify(bare.call(msg, vars))) throw new Error('sandbox and bare results differ');
      const N = 5000;
      const timeIt = (f) => {
        const t0 = performance.now();
        for (let i = 0; i < N; i++) f();
        return ((performance.now() - t0) * 1000) / N;
      };
      const fm = [];
      const bb = [];
      for (let i = 0; i < 3; i++) timeIt(() => sandbox.run(req)), timeIt(() => bare.call(msg, vars));
      for (let r = 0; r < 12; r++) {
        if (r % 2 === 0) {
          fm.push(timeIt(() => sandbox.run(req)));
          bb.push(timeIt(() => bare.call(msg, vars)));
        } else {
          bb.push(timeIt(() => bare.call(msg, vars)));
          fm.push(timeIt(() => sandbox.run(req)));
        }
      }
      sandbox.dispose();
      bare.dispose();
      const f = median(fm);
      const b = median(bb);
      log(`sandbox: flowmeter ${f.toFixed(2)} µs/call, bare ${b.toFixed(2)} µs/call (medians of 12 rounds × ${N})`);
      row(measure, f, b, { unit: ' µs', digits: 2, target: '≤ 2.00× bare', pass: (_v, ratio) => ratio !== null && ratio <= 2 });
      notes.push(`(*2) median of 12 interleaved rounds of ${N} calls; same code, isolate memoryLimit 64 MB, { timeout: 1000 }, msg/vars JSON-stringified in and the result JSON-parsed out on both sides.`);
    } catch (err) {
      failedRow(measure, '≤ 2.00× bare', err);
    }
  }

  // ==========================================================================================
  // Queue mode: a private redis-server
  // ==========================================================================================
  const queuePhases = ['throughput', 'long', 'onenode', 'rss', 'latency'].filter(want);
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
  const W = (ms) => Math.max(500, Math.round(ms * SCALE));

  // ---- 3 + 6. 50 concurrent 10-node chains: one worker, then two ---------------------------
  if (redis && want('throughput')) {
    const m1 = 'queue: actions/s, 1 worker, 50 runs in flight, chain of 10 Function (*3)';
    const m2 = 'queue: actions/s, 2 workers vs 1 (same load) (*4)';
    const workers = [];
    let p = null;
    let ev = null;
    try {
      const prefix = uniquePrefix('tp');
      const tenant = 'tp';
      p = await openProduction(prefix, tenant, [SCN.chain10]);
      const ends = await runEnds(p, tenant);
      workers.push(await startWorker(redis.url, prefix, 50));
      ev = await evalshaClient();
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
      const pids = () => ({ worker: workers[0].pid, 'redis-server': redis.pid, 'bench (trigger)': process.pid });
      for (let i = 0; i < 4; i++) {
        log(`throughput: slice ${i + 1}/4: raw EVALSHA 50 in flight ${SL / 2} ms, then flowmeter 1 worker ${SL} ms`);
        base.add(await ev.slice(50, SL / 2));
        one.add(await cpu1.around(pids(), fmSlice));
      }
      log(`throughput: 1 worker ${one.weightPerSec.toFixed(0)} actions/s (${one.perSec.toFixed(0)} runs/s); EVALSHA ${base.perSec.toFixed(0)}/s; CPU ${cpu1.text()}`);
      row(m1, one.weightPerSec, base.perSec, { unit: '/s', target: '≥ 1.00×', pass: (_v, r) => r !== null && r >= 1 });
      notes.push(`(*3) actions = 1 trigger + 10 Function per run (11); closed loop of 50 runs (trigger → run-end event) against one worker process --concurrency 50; 4 slices of ${SL / 1000} s interleaved with 4 slices of ${SL / 2000} s of the baseline: EVALSHA of \`return 1\` from one ioredis client, 50 in flight. CPU during the Flowmeter slices (100% = one core): ${cpu1.text()}.`);

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
        for (let i = 0; i < 2; i++) {
          log(`throughput: ceiling slice ${i + 1}/2: embedded engine in this process, 50 runs in flight, ${SL} ms`);
          emb.add(await closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: embLaunch }));
          base.add(await ev.slice(50, SL / 2));
        }
        await engine.close();
        log(`throughput: ceiling ${emb.weightPerSec.toFixed(0)} actions/s in process; EVALSHA ${base.perSec.toFixed(0)}/s`);
        row(m3, emb.weightPerSec, base.perSec, { unit: '/s', target: 'reported', pass: () => null });
        notes.push(`(*3b) the same runs (chain of 10 Function, 50 in flight, closed loop) executed by the embedded engine in the bench process: no Redis, no queue, no second process, billing in memory; 2 slices of ${SL / 1000} s. It bounds what one worker process can do with these runs on this machine, whatever the queue costs.`);
      } catch (err) {
        failedRow(m3, 'reported', err);
      }

      log('throughput: starting a second worker');
      workers.push(await startWorker(redis.url, prefix, 50));
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
      notes.push(`(*4) the same 50-in-flight load against two worker processes (--concurrency 50 each), 4 slices of ${SL / 1000} s, against the one-worker slices (4 before, 2 after). CPU during the two-worker slices: ${cpu2.text()}. With ${cpus().length} CPUs shared by Redis, the triggering process and the workers, a second worker finds no idle core: the ratio shows what a second worker costs or adds here, not how Flowmeter scales on more cores.`);
      await ends.stop();
      if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
    } catch (err) {
      for (const w of workers) log(`${w.name} stderr tail:\n${w.tail.slice(-1500)}`);
      if (!rows.some((r) => r.measure === m1)) failedRow(m1, '≥ 1.00×', err);
      failedRow(m2, 'reported (no target)', err);
    } finally {
      ev?.close();
      for (const w of workers) await w.stop();
      if (PROFILE_DIR) log(`throughput: worker profiles in ${PROFILE_DIR}`);
      await p?.close();
    }
  }

  // ---- 4. One long run: a 10,000-item loop -------------------------------------------------
  if (redis && want('long')) {
    const measure = 'queue: actions/s, one run, 10,000-item loop × 1 Function (*5)';
    let w = null;
    let p = null;
    try {
      const prefix = uniquePrefix('long');
      const tenant = 'long';
      p = await openProduction(prefix, tenant, [SCN.loop1]);
      const ends = await runEnds(p, tenant);
      w = await startWorker(redis.url, prefix, 4);
      const cpu = cpuTally();
      const once = async (n, tally = cpuTally()) => {
        const items = Array.from({ length: n }, (_, i) => item(i));
        const t0 = performance.now();
        const run = await p.trigger(tenant, 'loop1', { items }, { type: 'manual' });
        const size = stateSize(p, tenant, run.runId);
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
        seq.push(await evalshaRate({ inflight: 1, ms: W(1000) }));
        log(`long: flowmeter, one run of 10,000 items (${i + 1}/2)`);
        runs.push(await once(10_000, cpu));
      }
      seq.push(await evalshaRate({ inflight: 1, ms: W(1000) }));
      const base = median(seq);
      const actions = runs.reduce((a, r) => a + r.actions, 0);
      const ms = runs.reduce((a, r) => a + r.ms, 0);
      const rate = actions / (ms / 1000);
      const stateBytes = Math.max(...runs.map((r) => r.stateBytes));
      log(`long: ${runs.map((r) => `${r.actions} actions in ${r.ms.toFixed(0)} ms`).join(', ')} = ${rate.toFixed(0)}/s; sequential EVALSHA ${seq.map((x) => x.toFixed(0)).join(' / ')} per s; CPU ${cpu.text()}; largest checkpointed state ${(stateBytes / 1e6).toFixed(2)} MB`);
      row(measure, rate, base, { unit: '/s', target: '≥ 2.00×', pass: (_v, x) => x !== null && x >= 2 });
      notes.push(`(*5) ${runs[0].actions.toLocaleString('en-US')} actions per run (trigger + loop + 10,000 iterations + 10,000 Function), trigger → run-end event, 2 runs: ${runs.map((r) => `${(r.ms / 1000).toFixed(2)} s`).join(', ')} (CPU: ${cpu.text()}; the run's checkpointed state reached ${(stateBytes / 1e6).toFixed(2)} MB); baseline: sequential awaited EVALSHA \`return 1\` round trips per second, median of 3 slices of ${W(1000) / 1000} s around the runs (${seq.map((x) => x.toFixed(0)).join(', ')}).`);
      await ends.stop();
      if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
    } catch (err) {
      failedRow(measure, '≥ 2.00×', err);
    } finally {
      await w?.stop();
      await p?.close();
    }
  }

  // ---- 5. Runs/s of a 1-node scenario against raw BullMQ -----------------------------------
  if (redis && want('onenode')) {
    const measure = 'queue: runs/s, trigger + 1 Function, 50 in flight (*6)';
    const procs = [];
    let p = null;
    let bull = null;
    try {
      const bprefix = `{${uniquePrefix('bull')}:q}`;
      const bw = await startBullWorker(redis.url, bprefix, 50);
      procs.push(bw);
      bull = await rawBull(bprefix);
      const prefix = uniquePrefix('one');
      const tenant = 'one';
      p = await openProduction(prefix, tenant, [SCN.one]);
      const ends = await runEnds(p, tenant);
      const fw = await startWorker(redis.url, prefix, 50);
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
        bq.add(await cpuB.around({ 'bullmq worker': bw.pid, 'redis-server': redis.pid, bench: process.pid }, () => closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: bullLaunch })));
        fm.add(await cpuF.around({ worker: fw.pid, 'redis-server': redis.pid, 'bench (trigger)': process.pid }, () => closedLoop({ inflight: 50, warmMs: 250, measureMs: SL, launch: fmLaunch })));
      }
      await ends.stop();
      if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
      log(`onenode: flowmeter ${fm.perSec.toFixed(0)} runs/s (CPU ${cpuF.text()}); BullMQ ${bq.perSec.toFixed(0)} jobs/s (CPU ${cpuB.text('job')})`);
      row(measure, fm.perSec, bq.perSec, { unit: '/s', target: '≥ 0.50×', pass: (_v, r) => r !== null && r >= 0.5 });
      notes.push(`(*6) closed loops of 50, 3 interleaved slices of ${SL / 1000} s each: Flowmeter trigger → run-end event (worker process --concurrency 50) vs BullMQ Queue.add (Flowmeter's job options) → QueueEvents 'completed' with a no-op Worker process of the same concurrency. CPU, Flowmeter: ${cpuF.text()}; BullMQ: ${cpuB.text('job')}.`);
    } catch (err) {
      failedRow(measure, '≥ 0.50×', err);
    } finally {
      await bull?.close();
      for (const w of procs) await w.stop();
      await p?.close();
    }
  }

  // ---- 7. Peak RSS of a worker running a 10,000-item loop with 1 KB items ------------------
  if (redis && want('rss')) {
    const measure = 'worker peak RSS, 10,000-item loop with 1 KB items (*7)';
    let w = null;
    let p = null;
    try {
      const prefix = uniquePrefix('rss');
      const tenant = 'rss';
      p = await openProduction(prefix, tenant, [SCN.loop1]);
      const ends = await runEnds(p, tenant);
      w = await startWorker(redis.url, prefix, 4);
      await sleep(500);
      const idle = memOf(w.pid);
      const name = 'x'.repeat(1000);
      const items = Array.from({ length: 10_000 }, (_, i) => item(i, name));
      const payloadBytes = Buffer.byteLength(JSON.stringify({ items }));
      log(`rss: idle worker VmHWM ${idle.hwm.toFixed(1)} MB; triggering a 10,000-item loop (payload ${(payloadBytes / 1e6).toFixed(1)} MB)`);
      let peakRss = idle.rss;
      const sampler = setInterval(() => {
        const m = memOf(w.pid);
        if (m.rss > peakRss) peakRss = m.rss;
      }, 50);
      const t0 = performance.now();
      const budget = Math.max(20_000, Math.min(150_000, left() - 60_000));
      let end;
      let timedOut = false;
      const cpu = cpuTally();
      let stateBytes = NaN;
      try {
        const run = await p.trigger(tenant, 'loop1', { items }, { type: 'manual' });
        const size = stateSize(p, tenant, run.runId);
        end = await cpu.around({ worker: w.pid, 'redis-server': redis.pid }, () => ends.wait(run.runId, budget)).catch((e) => {
          timedOut = true;
          return { t: performance.now(), status: `not ended: ${e.message}`, actions: NaN };
        });
        stateBytes = await size.stop();
      } finally {
        clearInterval(sampler);
      }
      const peak = memOf(w.pid);
      const ms = end.t - t0;
      log(`rss: run ${end.status} in ${ms.toFixed(0)} ms (${end.actions} actions); VmHWM ${peak.hwm.toFixed(1)} MB, sampled peak VmRSS ${peakRss.toFixed(1)} MB; CPU ${cpu.text()}; largest checkpointed state ${(stateBytes / 1e6).toFixed(1)} MB`);
      row(measure, peak.hwm, idle.hwm, { unit: ' MB', digits: 1, target: '≤ 200 MB', pass: (v) => (timedOut || end.status !== 'succeeded' ? false : v <= 200) });
      notes.push(`(*7) VmHWM of a fresh worker process (--concurrency 4) after one run of a 10,000-item loop, items ~1 KB (payload ${(payloadBytes / 1e6).toFixed(1)} MB); baseline: the same process idle, after 'worker ready'. The run ${timedOut ? `did NOT end within ${(budget / 1000).toFixed(0)} s (${end.status})` : `${end.status} in ${(ms / 1000).toFixed(1)} s = ${(end.actions / (ms / 1000)).toFixed(0)} actions/s`} (CPU: ${cpu.text()}; checkpointed state up to ${(stateBytes / 1e6).toFixed(1)} MB).`);
      await ends.stop();
      if (ends.missed > 0) lost.push(`${ends.missed} run-end events in ${tenant}`);
    } catch (err) {
      failedRow(measure, '≤ 200 MB', err);
    } finally {
      // A run still going is not waited for: SIGKILL.
      await w?.stop(2000);
      await p?.close();
    }
  }

  // ---- 8. Latency: trigger → finished run record, idle worker -------------------------------
  if (redis && want('latency')) {
    const m50 = 'latency p50, trigger → ended run record, 3 Function, idle worker (*8)';
    const m99 = 'latency p99, same';
    const procs = [];
    let p = null;
    let bull = null;
    try {
      const N = Math.max(100, Math.round(1000 * Math.min(1, SCALE)));
      const bprefix = `{${uniquePrefix('lbull')}:q}`;
      procs.push(await startBullWorker(redis.url, bprefix, 4));
      bull = await rawBull(bprefix);
      const prefix = uniquePrefix('lat');
      const tenant = 'lat';
      p = await openProduction(prefix, tenant, [SCN.chain3]);
      procs.push(await startWorker(redis.url, prefix, 4));
      // What `flowmeter trigger ID --wait` does: subscribe, persist + enqueue, wait for the end, read the record.
      const fmOne = async (i) => {
        const t0 = performance.now();
        const scenario = await p.scenarios.get(tenant, 'chain3');
        const run = newRun(scenario, tenant, { type: 'manual' });
        const ended = await p.waitFor(tenant, run.runId, async () => {
          await p.runs.create(run, scenario, item(i));
          await p.queue.enqueue({ tenant, runId: run.runId });
        }, 30_000);
        const ms = performance.now() - t0;
        if (ended.status !== 'succeeded' || ended.tasks.length !== 4) throw new Error(`run ${ended.status} with ${ended.tasks.length} tasks`);
        return ms;
      };
      const bullOne = async () => {
        const t0 = performance.now();
        return (await bull.job()) - t0;
      };
      log('latency: warm-up, 50 of each');
      for (let i = 0; i < 50; i++) await bullOne(), await fmOne(i);
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
      notes.push(`(*8) ${N} sequential runs, as \`flowmeter trigger --wait\` does it (scenarios.get, newRun, waitFor(create + enqueue), then the record is read back), worker --concurrency 4 otherwise idle; baseline: a raw BullMQ no-op job, Queue.add → QueueEvents 'completed', with an idle Worker process; the two interleaved in 10 blocks.`);
    } catch (err) {
      if (!rows.some((r) => r.measure === m50)) failedRow(m50, '≤ 5 ms', err);
    } finally {
      await bull?.close();
      for (const w of procs) await w.stop();
      await p?.close();
    }
  }

  if (redis) {
    try {
      const info = await diag.info('stats');
      const dropped = /client_output_buffer_limit_disconnections:(\d+)/.exec(info)?.[1];
      if (dropped && dropped !== '0') lost.push(`redis-server disconnected ${dropped} clients over their output buffer limit (pub/sub subscribers falling behind)`);
    } catch {
      /* diagnostics only */
    }
    diag.disconnect();
    await redis.stop();
    log('redis-server stopped');
  }
  clearTimeout(watchdog);
  printTable();
  killAll();
  // Isolates and sockets may keep the loop alive: leave once stdout has drained.
  process.stdout.write('', () => process.exit(errors.length ? 1 : 0));
}
