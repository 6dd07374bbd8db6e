import { describe, expect, it } from 'vitest';
import { createEmbedded } from '../engine/embedded.js';
import { periodAt } from '../metering/periods.js';
import { fn, payloads, runOnce, scenarioOf } from './helpers/run.js';

const loopDoc = {
  id: 'metered',
  start: 'each',
  nodes: [
    { id: 'each', type: 'loop', over: 'msg.payload', body: 'double', collect: true, next: 'fan' },
    fn('double', 'return { payload: msg.payload * 2 };'),
    { id: 'fan', type: 'fanOut', branches: ['a', 'b'] },
    fn('a', 'return { payload: ["a", msg.payload] };'),
    fn('b', 'return { payload: ["b", msg.payload] };'),
  ],
};
// trigger 1 + loop 1 + 4 iterations × (1 + 1) + fan 1 + a 1 + b 1
const FULL = 1 + 1 + 4 * 2 + 1 + 2;

describe('halting and resuming', () => {
  it('a halted run resumed any number of times ends like an uninterrupted one', async () => {
    const reference = await runOnce(loopDoc, [1, 2, 3, 4]);
    expect(reference.actions).toBe(FULL);
    for (const quota of [1, 2, 5, 6, 9, 12]) {
      const engine = createEmbedded();
      const scenario = scenarioOf(loopDoc);
      await engine.ledger.setQuota('default', { monthlyActions: quota });
      let run = await engine.run(scenario, [1, 2, 3, 4]);
      expect(run.status).toBe('halted');
      expect(run.actions).toBe(quota);
      expect(run.error!.code).toBe('QUOTA_EXHAUSTED');
      let rounds = 0;
      while (run.status === 'halted') {
        await engine.ledger.addActions('default', 2, new Date());
        run = await engine.resumeRun('default', run.runId);
        rounds++;
        expect(rounds).toBeLessThan(20);
      }
      expect(run.status).toBe('succeeded');
      expect(run.actions).toBe(FULL);
      expect(run.outputs).toEqual(reference.outputs);
      const ran = run.tasks.filter((t) => t.status !== 'halted').map((t) => [t.nodeId, t.iteration]);
      expect(ran).toEqual(reference.tasks.map((t) => [t.nodeId, t.iteration]));
      const usage = await engine.ledger.usage('default', new Date());
      expect(usage.used).toBe(FULL);
      await engine.close();
    }
  });

  it('a trigger that cannot be reserved is a rejected run with 0 actions', async () => {
    const engine = createEmbedded();
    await engine.ledger.setQuota('default', { monthlyActions: 0 });
    const run = await engine.run(scenarioOf(loopDoc), [1]);
    expect(run).toMatchObject({ status: 'rejected', actions: 0, tasks: [], error: { code: 'QUOTA_EXHAUSTED' } });
    await engine.close();
  });

  it('overage allow lets runs through and records the overage', async () => {
    const engine = createEmbedded();
    await engine.ledger.setQuota('default', { monthlyActions: 5, overage: 'allow' });
    const run = await engine.run(scenarioOf(loopDoc), [1, 2, 3, 4]);
    expect(run.status).toBe('succeeded');
    const usage = await engine.ledger.usage('default', new Date());
    expect(usage).toMatchObject({ limit: 5, used: FULL, overage: FULL - 5, remaining: 0 });
    await engine.close();
  });

  it('non-billable scenarios and test runs do not consume the quota', async () => {
    const engine = createEmbedded();
    await engine.ledger.setQuota('default', { monthlyActions: 3 });
    const free = await engine.run(scenarioOf({ ...loopDoc, billable: false }), [1, 2, 3, 4]);
    const test = await engine.run(scenarioOf(loopDoc), [1, 2, 3, 4], { trigger: { type: 'manual', test: true } });
    expect([free.status, test.status]).toEqual(['succeeded', 'succeeded']);
    const usage = await engine.ledger.usage('default', new Date());
    expect(usage).toMatchObject({ used: 0, nonBillable: 2 * FULL, remaining: 3 });
    await engine.close();
  });

  it('alerts fire once per threshold per period', async () => {
    const alerts: number[] = [];
    const engine = createEmbedded({ onAlert: (a) => alerts.push(a.threshold) });
    await engine.ledger.setQuota('default', { monthlyActions: 20, alerts: [0.5, 0.9, 1] });
    await engine.run(scenarioOf(loopDoc), [1, 2, 3, 4]);
    await engine.run(scenarioOf(loopDoc), [1, 2, 3, 4]);
    expect(alerts).toEqual([0.5, 0.9, 1]);
    const usage = await engine.ledger.usage('default', new Date());
    expect(usage.alerts.map((a) => a.threshold)).toEqual([0.5, 0.9, 1]);
    await engine.close();
  });

  it('periods follow the tenant timezone and usage resets at the local month start', async () => {
    let now = new Date('2026-11-30T22:30:00Z'); // 23:30 in Oslo: still November
    const engine = createEmbedded({ now: () => now });
    await engine.ledger.setQuota('t', { monthlyActions: 100, timezone: 'Europe/Oslo' });
    const scenario = scenarioOf({ start: 'a', nodes: [fn('a', 'return msg;')] });
    await engine.run(scenario, 1, { tenant: 't' });
    now = new Date('2026-11-30T23:30:00Z'); // 00:30 on 1 December in Oslo
    await engine.run(scenario, 1, { tenant: 't' });
    const nov = await engine.ledger.usage('t', now, '2026-11');
    const dec = await engine.ledger.usage('t', now);
    expect(nov).toMatchObject({ used: 2, period: { key: '2026-11', start: '2026-11-01T00:00:00+01:00', end: '2026-12-01T00:00:00+01:00' } });
    expect(dec).toMatchObject({ used: 2, period: { key: '2026-12' }, byDay: [{ date: '2026-12-01', actions: 2 }] });
    expect(periodAt(new Date('2026-11-30T23:30:00Z'), 'UTC').key).toBe('2026-11');
    await engine.close();
  });

  it('add-ons apply to the current period only', async () => {
    const engine = createEmbedded();
    await engine.ledger.setQuota('default', { monthlyActions: 1 });
    await engine.ledger.addActions('default', 4, new Date());
    const run = await engine.run(scenarioOf(loopDoc), [1]);
    expect(run.actions).toBe(5);
    const usage = await engine.ledger.usage('default', new Date());
    expect(usage).toMatchObject({ limit: 1, addOns: 4, used: 5, remaining: 0 });
    const next = await engine.ledger.usage('default', new Date(), '2099-01');
    expect(next.addOns).toBe(0);
    await engine.close();
  });
});

describe('runaway breaker', () => {
  it('fails with RUN_BUDGET_EXCEEDED before the action that would pass maxActionsPerRun', async () => {
    const run = await runOnce({ ...loopDoc, maxActionsPerRun: 5 }, [1, 2, 3, 4]);
    expect(run.status).toBe('failed');
    expect(run.actions).toBe(5);
    expect(run.error!.code).toBe('RUN_BUDGET_EXCEEDED');
    const failed = run.tasks.at(-1)!;
    expect(failed).toMatchObject({ status: 'error', actions: 0, error: { code: 'RUN_BUDGET_EXCEEDED' } });
  });
  it('a run within the budget is untouched', async () => {
    const run = await runOnce({ ...loopDoc, maxActionsPerRun: FULL }, [1, 2, 3, 4]);
    expect(run.status).toBe('succeeded');
    expect(payloads(run)).toHaveLength(2);
  });
});

describe('projection', () => {
  it('projects the period end from the rate so far and warns past the limit', async () => {
    const { project } = await import('../metering/quota.js');
    const { periodByKey } = await import('../metering/periods.js');
    const nov = periodByKey('2026-11', 'UTC'); // 30 days
    // 10 days in, 100 used: 10/day → 300 by the end
    const p = project(nov, 100, 250, new Date('2026-11-11T00:00:00Z'))!;
    expect(p).toMatchObject({ projectedUsed: 300, perDay: 10, willExceed: true });
    expect(p.exceedsOn).toBe('2026-11-26T00:00:00.000Z');
    expect(project(nov, 100, 500, new Date('2026-11-11T00:00:00Z'))).toMatchObject({ projectedUsed: 300, willExceed: false, exceedsOn: null });
    expect(project(nov, 100, 500, new Date('2026-12-02T00:00:00Z'))).toBeNull();
  });
});
