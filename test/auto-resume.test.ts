/** Auto-resume (SPEC §11): halted runs resume by themselves, oldest first, as far as actions go. */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import type { Production } from '../redis/production.js';
import { waitUntil } from './helpers/processes.js';
import { useProduction } from './helpers/production.js';
import { fn, runOnce, scenarioOf } from './helpers/run.js';

const loopDoc = {
  id: 'metered',
  start: 'each',
  nodes: [
    { id: 'each', type: 'loop', over: 'msg.payload', body: 'double', collect: true, next: 'done' },
    fn('double', 'return { payload: msg.payload * 2 };'),
    fn('done', 'return { payload: msg.payload.length };'),
  ],
};
// trigger 1 + loop 1 + 4 iterations × (1 + 1) + done 1
const FULL = 11;
const ENDED = ['succeeded', 'failed', 'halted', 'rejected'];

type Made = { platform: Platform; now: { t: Date }; close: () => Promise<void> };
const platforms: Array<[string, () => Promise<Made>]> = [
  [
    'embedded',
    async () => {
      const now = { t: new Date() };
      const e: Embedded = createEmbedded({ now: () => now.t });
      return { platform: e, now, close: () => e.close() };
    },
  ],
  [
    'redis',
    async () => {
      const now = { t: new Date() };
      const p: Production = await useProduction({ now: () => now.t });
      p.startWorker({ concurrency: 4 });
      return { platform: p, now, close: () => p.close() };
    },
  ],
];

let made: Made | null = null;
afterEach(async () => {
  await made?.close();
  made = null;
});

const sweep = (p: Platform) => (p as Embedded | Production).autoResume.sweep();

async function settled(p: Platform, tenant: string, runId: string, want?: RunRecord['status']): Promise<RunRecord> {
  return waitUntil(
    `run ${runId} to end${want ? ` ${want}` : ''}`,
    async () => {
      const r = await p.runs.get(tenant, runId);
      return r && ENDED.includes(r.status) && (!want || r.status === want) ? r : null;
    },
    { timeoutMs: 20_000, intervalMs: 25 },
  );
}

async function haltedRun(p: Platform, tenant: string, items: number[]): Promise<RunRecord> {
  const queued = await p.trigger(tenant, 'metered', items, { type: 'manual' });
  const run = await settled(p, tenant, queued.runId);
  expect(run).toMatchObject({ status: 'halted', error: { code: 'QUOTA_EXHAUSTED' } });
  return run;
}

describe.each(platforms)('auto-resume on the %s platform', (_mode, make) => {
  it('an add-on resumes a halted run by itself; it ends as if never halted', async () => {
    made = await make();
    const p = made.platform;
    const reference = await runOnce(loopDoc, [1, 2, 3, 4]);
    expect(reference.actions).toBe(FULL);
    await p.scenarios.deploy('a', scenarioOf(loopDoc));
    await p.ledger.setQuota('a', { monthlyActions: 5 });
    const run = await haltedRun(p, 'a', [1, 2, 3, 4]);
    expect(run.actions).toBe(5);
    await p.ledger.addActions('a', FULL - 5, new Date());
    const done = await settled(p, 'a', run.runId, 'succeeded');
    expect(done.actions).toBe(FULL);
    expect(done.outputs).toEqual(reference.outputs);
    expect((await p.ledger.usage('a', new Date())).used).toBe(FULL);
  });

  it('two halted runs and actions for one: the older resumes, the other stays halted', async () => {
    made = await make();
    const p = made.platform;
    await p.scenarios.deploy('b', scenarioOf(loopDoc));
    // Manual while the two runs halt (raising the quota for the second would resume the first).
    await p.ledger.setQuota('b', { monthlyActions: 4, resumeHalted: 'manual' });
    made.now.t = new Date(Date.now() - 60_000);
    const older = await haltedRun(p, 'b', [1, 2, 3, 4]);
    made.now.t = new Date();
    expect(older.actions).toBe(4);
    await p.ledger.setQuota('b', { monthlyActions: 5 });
    const younger = await haltedRun(p, 'b', [5, 6, 7, 8]);
    expect(younger.actions).toBe(1);
    // 11 − 4 more for the older one: exactly enough for it.
    await p.ledger.setQuota('b', { monthlyActions: 5 + FULL - 4, resumeHalted: 'auto' });
    expect((await settled(p, 'b', older.runId, 'succeeded')).actions).toBe(FULL);
    await sweep(p); // nothing left: nothing more resumes
    const still = await p.runs.get('b', younger.runId);
    expect(still).toMatchObject({ status: 'halted', actions: 1 });
    // A new period resumes it (the sweep at rollover).
    made.now.t = new Date(Date.now() + 40 * 86400_000);
    await sweep(p);
    const last = await settled(p, 'b', younger.runId, 'succeeded');
    expect(last.actions).toBe(FULL);
  });

  it('resumeHalted manual: nothing resumes by itself', async () => {
    made = await make();
    const p = made.platform;
    await p.scenarios.deploy('c', scenarioOf(loopDoc));
    await p.ledger.setQuota('c', { monthlyActions: 3, resumeHalted: 'manual' });
    const run = await haltedRun(p, 'c', [1, 2, 3, 4]);
    await p.ledger.addActions('c', 100, new Date());
    await p.ledger.setQuota('c', { monthlyActions: 1000 });
    await sweep(p);
    expect(await p.runs.get('c', run.runId)).toMatchObject({ status: 'halted', actions: 3 });
    await p.resume('c', run.runId);
    expect((await settled(p, 'c', run.runId, 'succeeded')).actions).toBe(FULL);
  });
});

describe('auto-resume across processes', () => {
  it('each halted run is taken once, however many processes step at once', async () => {
    const a = await useProduction();
    const b = await useProduction({ prefix: a.redisKeys.prefix });
    const { RedisHaltedRuns } = await import('../redis/halted-runs.js');
    const stores = [a, b].map((p) => new RedisHaltedRuns(p.redis, p.redisKeys, p.ledger));
    await a.ledger.setQuota('x', { monthlyActions: 10, resumeHalted: 'manual' });
    const now = new Date();
    for (const [i, id] of ['r1', 'r2', 'r3'].entries()) expect(await stores[0]!.step('x', now, { runId: id, halted: true, score: 100 - i })).toBeNull();
    await a.redis.hset(a.redisKeys.quota('x'), 'resumeHalted', 'auto');
    const taken = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 2]!.step('x', now)));
    expect(taken.filter(Boolean)).toEqual(['r3']); // the oldest (smallest score), once
    // Its end gives the turn up: the next oldest is taken, once.
    const next = await Promise.all([stores[1]!.step('x', now, { runId: 'r3', halted: false, score: 0 }), stores[0]!.step('x', now)]);
    expect(next.filter(Boolean)).toEqual(['r2']);
    expect(await stores[0]!.tenants()).toEqual(['x']);
    await b.close();
    await a.close();
  });
});
