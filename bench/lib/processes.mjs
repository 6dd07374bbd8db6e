/**
 * Child processes of the bench (tracked, so `killAll` can kill them at the end, whatever
 * happens), a private redis-server, worker processes, and what /proc says about a process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- child processes (killed at the end, whatever happens) -------------------------------
const children = new Set();
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
export function killAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** A redis-server on a free port, no persistence, in a temporary directory (removed by stop()). */
export async function startRedis(binary = process.env.REDIS_SERVER ?? 'redis-server') {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fm-bench-redis-'));
  const child = track(spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
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
    url,
    port,
    pid: child.pid,
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
export async function startProcess(name, args, readyText, { cwd, timeoutMs = 20_000 } = {}) {
  const child = track(
    spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, NODE_OPTIONS: '', FLOWMETER_REDIS_URL: '', FLOWMETER_PREFIX: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
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
    name,
    pid: child.pid,
    child,
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

/**
 * A Flowmeter worker process from the CLI. `root`: the project directory (its cwd); `bin`:
 * bin/flowmeter.js; `profileDir`: --cpu-prof into it when set; `workerArgs`: extra node arguments.
 */
/**
 * The node flags on the first line of the CLI's bin (`#!/usr/bin/env -S node FLAGS`): a worker
 * process is started the way `npx flowmeter worker` starts it.
 */
export function shebangFlags(bin) {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0];
  const m = /^#!.*\bnode((?:\s+--[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : ['--no-node-snapshot'];
}

export function startWorker({ root, bin, profileDir, workerArgs }, url, prefix, concurrency) {
  const prof = profileDir
    ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `worker-${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.cpuprofile`]
    : [];
  return startProcess(
    `worker(${prefix}, concurrency ${concurrency})`,
    [...shebangFlags(bin), ...prof, ...workerArgs, bin, '--redis', url, '--prefix', prefix, 'worker', '--concurrency', String(concurrency)],
    '"msg":"worker ready"',
    { cwd: root },
  );
}

/** The raw BullMQ baseline worker process (bench/bullmq-worker.mjs). */
export function startBullWorker({ root }, url, prefix, concurrency) {
  return startProcess(`bullmq worker(${prefix})`, [join(root, 'bench', 'bullmq-worker.mjs'), url, prefix, String(concurrency)], 'bullmq worker ready', {
    cwd: root,
  });
}

/** VmRSS / VmHWM of a process, in MB. */
export function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** The child processes of `pid` (from /proc/<child>/stat's ppid). */
export function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Memory of a process and its children (a worker and its sandbox hosts), MB: summed VmRSS and summed Pss (shared pages split). */
export function treeMem(pid) {
  const pids = [pid, ...childrenOf(pid)];
  let rss = 0;
  let pss = 0;
  for (const p of pids) {
    rss += memOf(p).rss || 0;
    try {
      pss += Number(/^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
    } catch {
      /* gone meanwhile */
    }
  }
  return { rss, pss, processes: pids.length };
}

/** CPU time (user + system) of processes, as % of one core over a window. */
export function cpuTicks(pid) {
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
 * completed inside them (a closed loop's `all`), for CPU µs per unit. A name may stand for
 * several processes (an array of pids, e.g. a worker's sandbox hosts): their CPU is summed.
 */
export function cpuTally() {
  const acc = {};
  let units = 0;
  const ticks = (pids) => [pids].flat().reduce((a, pid) => a + (cpuTicks(pid) || 0), 0);
  return {
    around: async (named, fn) => {
      const t0 = performance.now();
      const start = Object.fromEntries(Object.entries(named).map(([k, pids]) => [k, ticks(pids)]));
      const r = await fn();
      const secs = (performance.now() - t0) / 1000;
      for (const [k, pids] of Object.entries(named)) {
        const a = (acc[k] ??= [0, 0]);
        a[0] += (ticks(pids) - start[k]) / 100;
        a[1] += secs;
      }
      if (r && typeof r.all === 'number') units += r.all;
      return r;
    },
    /** { name: CPU µs per unit } (empty when no units were counted). */
    perUnit: () => (units > 0 ? Object.fromEntries(Object.entries(acc).map(([k, [busy]]) => [k, (busy * 1e6) / units])) : {}),
    /** "worker 56%, …" (100% = one core), with "(N µs/run)" when units were counted. */
    text: (unit = 'run') =>
      Object.entries(acc)
        .map(([k, [busy, secs]]) => `${k} ${((100 * busy) / secs).toFixed(0)}%${units > 0 ? ` (${((busy * 1e6) / units).toFixed(0)} µs/${unit})` : ''}`)
        .join(', '),
  };
}
