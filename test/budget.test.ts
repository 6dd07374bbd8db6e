/** Batched billing: leases held against the limit, settled with checkpoints. */
import { describe, expect, it } from 'vitest';
import { createEmbedded } from '../engine/embedded.js';
import { executeRun } from '../engine/executor.js';
import { newRun } from '../engine/run-record.js';
import { createSandbox } from '../services/sandbox.js';
import { useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const chain = scenarioOf({
  id: 'chain',
  start: 'each',
  nodes: [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'a' }, fn('a', 'return msg;', 'b'), fn('b', 'return msg;')],
});
const COST = (n: number) => 1 + 1 + n * 3;

describe('leases', () => {
  it('concurrent runs end exactly at the limit and none halts while actions remain (memory)', async () => {
    const engine = createEmbedded();
    await engine.ledger.setQuota('default', { monthlyActions: 500 });
    const runs = await Promise.all(
      Array.from({ length: 30 }, () =>
        engine.run(
          chain,
          Array.from({ length: 10 }, (_, i) => i),
        ),
      ),
    );
    const usage = await engine.ledger.usage('default', new Date());
    const spent = runs.reduce((a, r) => a + r.tasks.reduce((b, t) => b + t.actions, 0), 0);
    expect(usage.used).toBe(500);
    expect(spent).toBe(500);
    for (const r of runs) expect(['succeeded', 'halted', 'rejected']).toContain(r.status);
    // Every halted run, resumed with more actions, ends as if never halted.
    await engine.ledger.setQuota('default', { monthlyActions: 10_000 });
    for (const r of runs.filter((x) => x.status === 'halted')) {
      const done = await engine.resumeRun('default', r.runId);
      expect(done.status).toBe('succeeded');
      expect(done.actions).toBe(COST(10));
    }
    await engine.close();
  });

  it('a run crossing a month boundary settles each month in its own period', async () => {
    let now = new Date('2026-11-30T23:59:59.990Z');
    const engine = createEmbedded({ now: () => now, services: undefined });
    await engine.ledger.setQuota('default', { monthlyActions: 100 });
    const slow = scenarioOf({
      id: 'slow',
      start: 'each',
      nodes: [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'tick' }, fn('tick', 'return msg;')],
    });
    // Advance the clock as tasks are recorded: the month turns during the run.
    const e2 = createEmbedded({
      now: () => now,
      onTask: (_r, t) => {
        if (t.seq === 6) now = new Date('2026-12-01T00:00:00.010Z');
      },
    });
    await e2.ledger.setQuota('default', { monthlyActions: 100 });
    const run = await e2.run(slow, [1, 2, 3, 4, 5]);
    expect(run.status).toBe('succeeded');
    const nov = await e2.ledger.usage('default', now, '2026-11');
    const dec = await e2.ledger.usage('default', now, '2026-12');
    expect(nov.used + dec.used).toBe(run.actions);
    expect(nov.used).toBe(6);
    expect(dec.used).toBe(run.actions - 6);
    await engine.close();
    await e2.close();
  });

  it('on Redis: concurrent runs end exactly at the limit; ledger == task logs; leases all returned', async () => {
    const p = await useProduction();
    try {
      await p.ledger.setQuota('t', { monthlyActions: 300 });
      const sandbox = createSandbox();
      const deps = { ...p.deps, services: { ...p.deps.services, sandbox } };
      const runs = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const run = newRun(chain, 't', { type: 'manual' });
          const payload = Array.from({ length: 8 }, (_, i) => i);
          await p.runs.create(run, chain, payload);
          return executeRun(chain, run, deps, payload);
        }),
      );
      const usage = await p.ledger.usage('t', new Date());
      let spent = 0;
      for (const r of runs) spent += (await p.runs.get('t', r.runId))!.tasks.reduce((a, t) => a + t.actions, 0);
      expect(usage.used).toBe(300);
      expect(spent).toBe(300);
      const period = usage.period.key;
      expect(Number(await p.redis.hget(p.redisKeys.period('t', period), 'leased'))).toBe(0);
      expect(await p.redis.hlen(p.redisKeys.leases('t', period))).toBe(0);
      sandbox.dispose();
    } finally {
      await p.close();
    }
  });

  it('on Redis: a claim by a new owner returns the old lease and fences the old owner', async () => {
    const p = await useProduction();
    try {
      await p.ledger.setQuota('t', { monthlyActions: 1000 });
      const run = newRun(chain, 't', { type: 'manual' });
      await p.runs.create(run, chain, []);
      const now = new Date();
      const { period } = await p.ledger.periodOf('t', now);
      await p.runs.claim('t', run.runId, { current: period, previous: '2000-01' });
      const owner1 = p.runs.ownerOf(run.runId)!;
      const lease = await p.ledger.lease({ tenant: 't', runId: run.runId, want: 50, at: now, owner: owner1 });
      expect(lease).toMatchObject({ granted: 50, held: true });
      expect(Number(await p.redis.hget(p.redisKeys.period('t', period), 'leased'))).toBe(50);
      await p.runs.claim('t', run.runId, { current: period, previous: '2000-01' }); // another worker takes over
      expect(Number(await p.redis.hget(p.redisKeys.period('t', period), 'leased'))).toBe(0);
      await expect(p.ledger.lease({ tenant: 't', runId: run.runId, want: 5, at: now, owner: owner1 })).rejects.toMatchObject({ code: 'RUN_OWNERSHIP_LOST' });
    } finally {
      await p.close();
    }
  });

  it('on Redis: a lease or settlement resent after a lost reply is applied once', async () => {
    const p = await useProduction();
    try {
      await p.ledger.setQuota('t', { monthlyActions: 1000 });
      const { period, date } = await p.ledger.periodOf('t', new Date());
      const k = p.redisKeys;
      const leaseArgs = [k.quota('t'), k.period('t', period), k.leases('t', period), k.run('t', 'r1'), 'r1', 40, 500, '', 'req-1'];
      const first = await p.redis.fmLease(...leaseArgs);
      const again = await p.redis.fmLease(...leaseArgs);
      expect(again).toEqual(first);
      expect(Number(await p.redis.hget(k.period('t', period), 'leased'))).toBe(40);
      const { settleKeys, settleArgs } = await import('../redis/ledger.js');
      const s = {
        tenant: 't',
        runId: 'r1',
        scenarioId: 's',
        billable: true,
        period,
        entries: [
          { key: '1', trigger: true, date },
          { key: '2', trigger: false, date },
        ],
        heldUsed: 2,
        release: 38,
        at: new Date(),
      };
      const args = [...settleKeys(k, s), 'set-1', ...settleArgs(s, 3600)];
      await p.redis.fmSettle(...args);
      await p.redis.fmSettle(...args);
      expect(Number(await p.redis.hget(k.period('t', period), 'leased'))).toBe(0);
      expect((await p.ledger.usage('t', new Date())).used).toBe(2);
    } finally {
      await p.close();
    }
  });
});
