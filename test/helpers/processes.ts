/**
 * Real processes for production tests: `flowmeter` CLI commands and worker processes spawned
 * from the build (`bin/flowmeter.js`), redis-servers restarted on a fixed port, and bounded
 * polling. Every process started through a `Processes` is killed by `killAll()` (call it in
 * afterEach), so a failing test never leaves one behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = resolve(ROOT, 'bin', 'flowmeter.js');

let built = false;
/**
 * Fails clearly when the build the spawned processes run is missing or older than the
 * sources this test process imports (the two would disagree, e.g. on Lua script arguments:
 * the .lua files are read from the sources by both).
 */
export function assertBuilt(): void {
  if (built) return;
  if (!existsSync(resolve(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` before these tests');
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const out = resolve(ROOT, 'dist', relative(ROOT, path).replace(/\.ts$/, '.js'));
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(path).mtimeMs) stale.push(relative(ROOT, path));
      }
    }
  };
  for (const dir of ['engine', 'metering', 'nodes', 'cli', 'scheduler']) if (existsSync(resolve(ROOT, dir))) walk(resolve(ROOT, dir));
  if (stale.length)
    throw new Error(`the build is older than ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ', …' : ''}: run \`npm run build\` before these tests`);
  built = true;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether process `pid` exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls `probe` every `intervalMs` until it returns a truthy value (returned), failing after
 * `timeoutMs` with `what` and the last value seen.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await probe();
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 500);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${shown})`);
    }
    await sleep(intervalMs);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stderr split into lines (pino JSON lines for a worker). */
  lines(): string[];
  /** The stderr lines that are JSON log records. */
  logs(): Array<Record<string, unknown>>;
  exited: Promise<Exit>;
  /** Resolves once stderr (or stdout) contains `text`; fails on exit or after `timeoutMs`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for the process to exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface WorkerOptions {
  redisUrl: string;
  prefix: string;
  concurrency?: number;
  lockMs?: number;
  /** `--crash-limit`: tests that SIGKILL workers on purpose set it above their kill count. */
  crashLimit?: number;
  env?: Record<string, string>;
  name?: string;
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FLOWMETER_LOG_LEVEL: 'info', ...extra };
  delete env.FLOWMETER_REDIS_URL;
  delete env.FLOWMETER_PREFIX;
  delete env.NODE_OPTIONS;
  return env;
}

/** Every process started here; `killAll()` ends them (each by its own handle). */
export class Processes {
  private readonly live = new Set<Proc>();

  /** Starts `flowmeter ARGS` (not waited for). */
  spawn(args: string[], opts: { env?: Record<string, string>; name?: string } = {}): Proc {
    assertBuilt();
    const child = spawn(process.execPath, ['--no-node-snapshot', BIN, ...args], { cwd: ROOT, env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<Exit>((res) => child.once('exit', (code, signal) => res({ code, signal })));
    const proc: Proc = {
      name: opts.name ?? args.join(' '),
      child,
      pid: child.pid!,
      get stdout() {
        return out;
      },
      get stderr() {
        return err;
      },
      lines: () => err.split('\n').filter((l) => l.length > 0),
      logs: () =>
        proc.lines().flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
      exited,
      async waitFor(text, timeoutMs = 20_000) {
        const seen = () => (typeof text === 'string' ? err.includes(text) || out.includes(text) : text.test(err) || text.test(out));
        const deadline = Date.now() + timeoutMs;
        while (!seen()) {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`${proc.name} exited (${child.exitCode ?? child.signalCode}) before printing ${text}; stderr:\n${err}`);
          if (Date.now() > deadline) throw new Error(`${proc.name} did not print ${text} within ${timeoutMs} ms; stderr:\n${err}`);
          await sleep(50);
        }
      },
      async stop(signal = 'SIGKILL', graceMs = 5000) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill(signal);
          if (signal !== 'SIGKILL') {
            const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
            await exited;
            clearTimeout(t);
          }
        }
        return exited;
      },
    };
    this.live.add(proc);
    void exited.then(() => this.live.delete(proc));
    return proc;
  }

  /** Runs `flowmeter ARGS` to its end (SIGKILLed after `timeoutMs`, which fails). */
  async run(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
    const proc = this.spawn(args, opts);
    const timeoutMs = opts.timeoutMs ?? 20_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.child.kill('SIGKILL');
    }, timeoutMs);
    const { code } = await proc.exited;
    clearTimeout(timer);
    if (timedOut) throw new Error(`flowmeter ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${proc.stderr}`);
    return { code, stdout: proc.stdout, stderr: proc.stderr };
  }

  /** Starts `flowmeter --redis URL --prefix P worker` and waits until it is ready. */
  async worker(o: WorkerOptions): Promise<Proc> {
    const proc = this.spawn(
      [
        '--redis',
        o.redisUrl,
        '--prefix',
        o.prefix,
        'worker',
        '--concurrency',
        String(o.concurrency ?? 4),
        '--lock-ms',
        String(o.lockMs ?? 2000),
        ...(o.crashLimit ? ['--crash-limit', String(o.crashLimit)] : []),
      ],
      { env: o.env, name: o.name ?? `worker(${o.prefix})` },
    );
    await proc.waitFor('"msg":"worker ready"');
    return proc;
  }

  /** SIGKILLs every process still running and waits for each to exit. */
  async killAll(): Promise<void> {
    const all = [...this.live];
    this.live.clear();
    await Promise.all(all.map((p) => p.stop('SIGKILL')));
  }
}

/** Waits until a Redis server answers PING at `url`. */
export async function waitForRedis(url: string, timeoutMs = 10_000): Promise<void> {
  await waitUntil(
    `Redis at ${url}`,
    async () => {
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** A redis-server on a given port and data dir (to restart one where it was). */
export async function redisServerAt(
  port: number,
  dir: string,
  extra: string[] = [],
): Promise<{ url: string; child: ChildProcess; stop(signal?: NodeJS.Signals): Promise<void> }> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...extra], { stdio: 'ignore' });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const url = `redis://127.0.0.1:${port}`;
  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
  };
  try {
    await waitForRedis(url);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, child, stop };
}

/**
 * The sandbox hosts of process `pid` (a worker): its children started with
 * --flowmeter-sandbox-host, with their /proc state (R = running), age in clock ticks (1/100 s),
 * and whether they are up: isolated-vm's addon is mapped, so the host has loaded its modules
 * (a host still starting is busy too, for longer than usual on a loaded machine).
 */
export function sandboxHostsOf(pid: number): Array<{ pid: number; state: string; ageTicks: number; up: boolean }> {
  const out: Array<{ pid: number; state: string; ageTicks: number; up: boolean }> = [];
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== pid) continue;
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('--flowmeter-sandbox-host')) continue;
      const up = readFileSync(`/proc/${name}/maps`, 'utf8').includes('isolated_vm.node');
      out.push({ pid: Number(name), state: f[0]!, ageTicks: uptime - Number(f[19]), up });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
