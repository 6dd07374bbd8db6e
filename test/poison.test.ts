/**
 * Poison runs (SPEC §10): a run whose execution has killed worker processes twice fails with
 * WORKER_CRASHED on its next claim and is not executed again; a run killed once continues and
 * ends normally. Real worker processes, SIGKILLed while they execute a long run; the claim count
 * lives in the run's hash (claim.lua), so it holds across processes. An execution the engine
 * fails on (a TypeError, a stack overflow: it would fail again from the same checkpoint) counts
 * the same way.
 */
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { newRun } from '../engine/run-record.js';
import type { Production } from '../redis/production.js';
import { useFaultPlatform } from './helpers/faults.js';
import { deployLongRun, longRunWorkerEnv, runEnded, sentBy } from './helpers/long-run.js';
import type { Peer } from './helpers/peer.js';
import { type Proc, waitUntil } from './helpers/processes.js';
import { fn, scenarioOf } from './helpers/run.js';

const { production, peer: startPeer, worker } = useFaultPlatform();

const tenant = 'acme';
const taskSum = (run: RunRecord): number => run.tasks.reduce((a, t) => a + t.actions, 0);

/** A long run: `items` slow Connector calls, each naming the worker process that sends it. */
async function setup(): Promise<{
  p: Production;
  peer: Peer;
  start: (i: number) => Promise<Proc>;
  sentBy: (i: number) => number;
  name: (i: number) => string;
}> {
  const p = await production();
  const peer = await startPeer();
  await deployLongRun(p, tenant, peer, 15);
  const name = (i: number) => `fmpoison${i}x${p.redisKeys.prefix}`;
  const start = (i: number) => worker({ concurrency: 2, lockMs: 2000, env: longRunWorkerEnv(name(i)), name: `worker${i}` });
  return { p, peer, start, sentBy: (i: number) => sentBy(peer, name(i)), name };
}

/** Starts worker i, waits until it is executing the run, and SIGKILLs it. */
async function killWhileExecuting(start: (i: number) => Promise<Proc>, sentBy: (i: number) => number, i: number): Promise<void> {
  const w = await start(i);
  await waitUntil(`worker ${i} to execute the run`, () => sentBy(i) >= 20, { timeoutMs: 30_000, intervalMs: 20 });
  expect((await w.stop('SIGKILL')).signal).toBe('SIGKILL');
}

describe('poison runs: a run that kills its workers', () => {
  it('fails with WORKER_CRASHED on the claim after two killed executions, without executing; billed once, lease returned', async () => {
    const { p, peer, start, sentBy } = await setup();
    const items = Array.from({ length: 2000 }, (_, k) => k);
    const { runId } = await p.trigger(tenant, 'long', { items }, { type: 'manual' });
    await killWhileExecuting(start, sentBy, 0);
    await killWhileExecuting(start, sentBy, 1);
    const before = peer.requests.length;

    const third = await start(2);
    const run = await runEnded(p, tenant, runId, 30_000);
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('WORKER_CRASHED');
    expect(run.error?.message.split('\n')).toHaveLength(1);
    expect(run.finishedAt).not.toBeNull();
    // Not executed again: the third worker sent nothing, and nobody did after the second kill.
    expect(sentBy(2)).toBe(0);
    expect(peer.requests.length).toBe(before);
    await third.waitFor('"status":"failed"');
    expect(third.child.exitCode).toBeNull(); // the third worker lives on

    // Billing: what the two executions checkpointed is billed once; no lease is left held.
    expect(run.actions).toBe(taskSum(run));
    expect(run.actions).toBeGreaterThan(20);
    const usage = await p.ledger.usage(tenant, new Date());
    expect(usage.used).toBe(run.actions);
    expect(Number((await p.redis.hget(p.redisKeys.period(tenant, usage.period.key), 'leased')) ?? 0)).toBe(0);
    expect(await p.redis.hget(p.redisKeys.run(tenant, runId), 'crashes')).toBe('2');
  }, 120_000);

  it('a run killed once continues from its checkpoint and succeeds, billed exactly', async () => {
    const { p, start, sentBy } = await setup();
    const items = Array.from({ length: 400 }, (_, k) => k);
    const { runId } = await p.trigger(tenant, 'long', { items }, { type: 'manual' });
    await killWhileExecuting(start, sentBy, 0);
    await start(1);
    const run = await runEnded(p, tenant, runId, 60_000);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const actions = 1 + 1 + 400 * 2; // trigger + loop + (iteration + call) per item
    expect(run.actions).toBe(actions);
    expect(taskSum(run)).toBe(actions);
    expect(new Set(run.tasks.map((t) => t.seq)).size).toBe(actions);
    expect(sentBy(1)).toBeGreaterThan(0);
    expect((await p.ledger.usage(tenant, new Date())).used).toBe(actions);
    expect(await p.redis.hget(p.redisKeys.run(tenant, runId), 'crashes')).toBe('1');
  }, 120_000);

  it('counts only claims that find an execution which neither ended nor released the run', async () => {
    const p = await production();
    await p.ledger.setQuota(tenant, { monthlyActions: 1000 });
    const scenario = scenarioOf({ id: 'one', nodes: [fn('a', 'return { payload: 1 };')], start: 'a' });
    await p.scenarios.deploy(tenant, scenario);
    const periods = { current: (await p.ledger.usage(tenant, new Date())).period.key, previous: '2000-01' };
    const run = newRun(scenario, tenant, { type: 'manual' });
    await p.runs.create(run, scenario, null);

    // Claimed and given back alive (ownership lost, a Redis error, a stopping worker): no crash.
    expect((await p.runs.claim(tenant, run.runId, periods)).crashes).toBe(0);
    await p.runs.giveUp(tenant, run.runId);
    expect((await p.runs.claim(tenant, run.runId, periods)).crashes).toBe(0);
    // Claimed again while that claim is live: its execution died.
    const second = await p.runs.claim(tenant, run.runId, periods);
    expect([second.crashes, second.poisoned]).toEqual([1, false]);
    // A batch job's run that never started, redelivered: processJob claims it once and ends it.
    const fresh = newRun(scenario, tenant, { type: 'manual' });
    await p.runs.create(fresh, scenario, null);
    await p.processJob({
      runs: [
        { tenant, runId: fresh.runId },
        { tenant, runId: run.runId },
      ],
    });
    expect((await p.runs.get(tenant, fresh.runId))!.status).toBe('succeeded');
    expect(await p.redis.hget(p.redisKeys.run(tenant, fresh.runId), 'crashes')).toBeNull();
    // The other run's claim found the live claim above: its 2nd crash, so it was given up.
    const given = (await p.runs.get(tenant, run.runId))!;
    expect([given.status, given.error?.code]).toEqual(['failed', 'WORKER_CRASHED']);
    // An ended run claimed again (a late duplicate job) counts nothing.
    await p.processRun(tenant, fresh.runId);
    expect(await p.redis.hget(p.redisKeys.run(tenant, fresh.runId), 'crashes')).toBeNull();
  }, 30_000);
});

describe('poison runs: a run the engine fails on', () => {
  it('a run whose execution throws an engine error (stored state it cannot use) fails WORKER_CRASHED after two executions, not retried for ever', async () => {
    // The previous main gave such an execution up as an infrastructure interruption: its job
    // was retried from the same checkpoint once a second, up to 1,000 times, failing each time.
    const p = await production();
    await p.ledger.setQuota(tenant, { monthlyActions: 1 });
    await p.scenarios.deploy(tenant, scenarioOf({ id: 's', start: 'f', nodes: [fn('f', 'return msg;')] }));
    const w = p.startWorker({ concurrency: 2 });
    const failures: string[] = [];
    w.on('failed', (_job, err) => failures.push(`${err.name}: ${err.message}`));
    try {
      const { runId } = await p.trigger(tenant, 's', { x: 1 }, { type: 'manual' });
      await waitUntil('the run to halt', async () => (await p.runs.get(tenant, runId))?.status === 'halted', { timeoutMs: 10_000, intervalMs: 20 });
      // Its pending item names a frame the state does not hold (as a worker of another version might write).
      const key = p.redisKeys.run(tenant, runId);
      const state = (await p.redis.hget(key, 'state'))!;
      expect(state).toContain('"frame":"root"');
      await p.redis.hset(key, 'state', state.replace('"frame":"root"', '"frame":"gone"'));
      await p.ledger.setQuota(tenant, { monthlyActions: 1000 }); // auto-resume takes it up
      const run = await runEnded(p, tenant, runId, 15_000);
      expect(run.status).toBe('failed');
      expect(run.error?.code).toBe('WORKER_CRASHED');
      expect(failures).toHaveLength(2);
      expect(failures[0]).toMatch(/^TypeError: /);
      // Billed what its checkpoints settled: the trigger; the lease is back.
      const usage = await p.ledger.usage(tenant, new Date());
      expect([usage.used, run.actions, taskSum(run)]).toEqual([1, 1, 1]);
      expect(Number((await p.redis.hget(p.redisKeys.period(tenant, usage.period.key), 'leased')) ?? 0)).toBe(0);
      await new Promise((r) => setTimeout(r, 1500));
      expect(failures).toHaveLength(2);
    } finally {
      await w.close();
    }
  });
});
