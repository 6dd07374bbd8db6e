/**
 * A real Redis Cluster for tests: three primaries (`redis-server --cluster-enabled yes`) on
 * free ports in temporary directories, joined with `redis-cli --cluster create`, ready once
 * every node says `cluster_state:ok`. `stop()` kills the servers and removes the directories
 * (test/worker-guard.ts fails a file that leaves a process behind).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

export interface TestCluster {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  url: string;
  ports: number[];
  /** Freezes every node (SIGSTOP): connections stay open, nothing answers (an outage). */
  pause(): Promise<void>;
  /** Lets them go on (SIGCONT). */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (+10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
}

/** One `redis-server --cluster-enabled yes` (no slots yet), answering PING. */
export async function startClusterNode(taken = new Set<number>()): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const port = await clusterPort(taken);
  const dir = mkdtempSync(join(tmpdir(), 'fm-cluster-'));
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((res) => child.once('exit', res));
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(`redis-server on port ${port}`, async () => (await command(port, ['PING'])) === 'PONG');
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, child, stop };
}

/** Starts a 3-primary cluster (about a second) and waits until it serves every slot. */
export async function startCluster(primaries = 3): Promise<TestCluster> {
  const taken = new Set<number>();
  const nodes: Array<Awaited<ReturnType<typeof startClusterNode>>> = [];
  const stop = async () => void (await Promise.all(nodes.map((n) => n.stop())));
  try {
    for (let i = 0; i < primaries; i++) nodes.push(await startClusterNode(taken));
    const ports = nodes.map((n) => n.port);
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    await until('cluster_state:ok on every node', async () => {
      for (const p of ports) if (!/cluster_state:ok/.test(String(await command(p, ['CLUSTER', 'INFO'])))) return false;
      return true;
    });
    const signal = async (sig: NodeJS.Signals) => {
      for (const n of nodes) n.child.kill(sig);
    };
    return {
      url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      ports,
      pause: () => signal('SIGSTOP'),
      resume: () => signal('SIGCONT'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One command on one node (a plain connection, closed after). */
export async function command(port: number, args: string[]): Promise<unknown> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await r.call(args[0]!, ...args.slice(1));
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

/** Commands each primary has run, by command name (INFO commandstats). */
export async function commandStats(port: number): Promise<Record<string, number>> {
  const info = String(await command(port, ['INFO', 'commandstats']));
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
