/**
 * `flowmeter worker --grace S` (SPEC §10): on SIGTERM a worker stops taking runs, lets the runs
 * in progress reach a checkpoint and hands them back (another worker continues them, no crash
 * counted), and exits within its grace even with Redis gone. Real worker processes, a private
 * redis-server stopped for real.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Production } from '../redis/production.js';
import { startRedis } from './global-setup.js';
import { deployLongRun, longRunWorkerEnv, runEnded, sentBy } from './helpers/long-run.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { type Proc, Processes, sleep, waitUntil } from './helpers/processes.js';
import { redisUrl, uniquePrefix, useProduction } from './helpers/production.js';

const procs = new Processes();
let p: Production | null = null;
let peer: Peer | null = null;
let redis: Awaited<ReturnType<typeof startRedis>> | null = null;

afterEach(async () => {
  await procs.killAll();
  await p?.close();
  await peer?.close();
  // startRedis's stop() waits for an exit: only for a server still running.
  if (redis && redis.child.exitCode === null && redis.child.signalCode === null) await redis.stop();
  p = null;
  peer = null;
  redis = null;
});

const tenant = 'acme';

async function worker(url: string, prefix: string, name: string, grace = '2'): Promise<Proc> {
  const w = procs.spawn(['--redis', url, '--prefix', prefix, 'worker', '--concurrency', '2', '--lock-ms', '2000', '--grace', grace], {
    env: longRunWorkerEnv(name),
    name,
  });
  await w.waitFor('"msg":"worker ready"');
  return w;
}

describe('worker --grace: stopping on SIGTERM', () => {
  it('with Redis up: hands its run back at a checkpoint and exits at once; another worker finishes the run, no crash counted', async () => {
    p = await useProduction();
    peer = await startPeer();
    const prefix = p.redisKeys.prefix;
    await deployLongRun(p, tenant, peer, 10);
    const items = Array.from({ length: 600 }, (_, k) => k);
    const { runId } = await p.trigger(tenant, 'long', { items }, { type: 'manual' });
    const first = await worker(redisUrl(), prefix, 'w1', '30');
    await waitUntil('the first worker to execute the run', () => sentBy(peer!, 'w1') >= 20, { timeoutMs: 30_000, intervalMs: 20 });
    // A generous bound, far below the grace of 30 s: the run stops at its next checkpoint.
    const exit = await first.stop('SIGTERM', 20_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(first.stderr).toContain('worker stopped');
    const mid = await p.runs.get(tenant, runId);
    expect(mid!.status).toBe('running');

    await worker(redisUrl(), prefix, 'w2');
    const run = await runEnded(p, tenant, runId, 60_000);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    expect(sentBy(peer!, 'w2')).toBeGreaterThan(0);
    const actions = 1 + 1 + items.length * 2;
    expect(run.actions).toBe(actions);
    expect((await p.ledger.usage(tenant, new Date())).used).toBe(actions);
    // Handed back alive: not a crashed execution.
    expect(await p.redis.hget(p.redisKeys.run(tenant, runId), 'crashes')).toBeNull();
  }, 120_000);

  it('with Redis gone: exits within its grace (2 s) after SIGTERM', async () => {
    redis = await startRedis();
    const prefix = uniquePrefix();
    const w = await worker(redis.url, prefix, 'w1', '2');
    await redis.stop();
    await sleep(300); // the worker notices the connection is gone
    // Bound: grace + a few seconds; SIGKILL after that would show as signal SIGKILL.
    const exit = await w.stop('SIGTERM', 7000);
    expect(exit.signal).toBeNull();
    expect(w.stderr).toMatch(/worker exiting now: the grace of 2 s is over|worker stopped/);
  }, 30_000);

  it('refuses a bad --grace in one line', async () => {
    for (const bad of ['-1', 'abc', '99999']) {
      const r = await procs.run(['--redis', redisUrl(), 'worker', '--grace', bad]);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('--grace');
    }
  }, 30_000);
});
