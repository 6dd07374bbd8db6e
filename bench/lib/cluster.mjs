/**
 * A private 3-primary Redis Cluster for the bench (the `cluster` phase): redis-server
 * --cluster-enabled yes on free ports (bus port +10000 free too), joined by redis-cli --cluster
 * create, ready at cluster_state:ok. Tracked: killAll ends the servers whatever happens.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { sleep, track } from './processes.mjs';

const run = promisify(execFile);

function portFree(port) {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/** One command on one node through a short-lived connection (null on failure). */
export async function nodeCommand(port, ...args) {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await r.call(...args);
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

/** Calls per command on a node since its last CONFIG RESETSTAT (INFO commandstats). */
export async function commandStats(port) {
  const info = String(await nodeCommand(port, 'INFO', 'commandstats'));
  const out = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function until(what, ok, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function startCluster(primaries = 3, binary = process.env.REDIS_SERVER ?? 'redis-server') {
  const nodes = [];
  const stop = async () => {
    for (const n of nodes) {
      if (n.child.exitCode === null && n.child.signalCode === null) {
        const exited = new Promise((r) => n.child.once('exit', r));
        n.child.kill('SIGKILL');
        await exited;
      }
      rmSync(n.dir, { recursive: true, force: true });
    }
  };
  try {
    const taken = new Set();
    while (nodes.length < primaries) {
      const port = 20_000 + Math.floor(Math.random() * 25_000);
      if (taken.has(port) || taken.has(port + 10_000) || !(await portFree(port)) || !(await portFree(port + 10_000))) continue;
      taken.add(port).add(port + 10_000);
      const dir = mkdtempSync(join(tmpdir(), 'fm-bench-cluster-'));
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')];
      const child = track(spawn(binary, [...args, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
      nodes.push({ port, dir, child });
      await until(`redis-server on ${port}`, async () => (await nodeCommand(port, 'PING')) === 'PONG');
    }
    const ports = nodes.map((n) => n.port);
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    await until('cluster_state:ok', async () => {
      for (const p of ports) if (!/cluster_state:ok/.test(String(await nodeCommand(p, 'CLUSTER', 'INFO')))) return false;
      return true;
    });
    return { url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, ports, pids: nodes.map((n) => n.child.pid), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
