/**
 * The embedded (in-memory) and Redis stores pass the same contract.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { executeRun } from '../engine/executor.js';
import { MemoryRunStore, MemoryVarStore } from '../engine/memory-stores.js';
import { newRun } from '../engine/run-record.js';
import { MemoryScenarioStore, type ScenarioStore, versionOf } from '../engine/scenario-store.js';
import type { RunStore, VarStore } from '../engine/stores.js';
import { type Ledger, MemoryLedger } from '../metering/ledger.js';
import type { Production } from '../redis/production.js';
import { createSandbox } from '../services/sandbox.js';
import { useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

interface Stores {
  ledger: Ledger;
  runs: RunStore;
  vars: VarStore;
  scenarios: ScenarioStore;
  maxActive: (tenant: string) => Promise<number | undefined>;
}

const opened: Production[] = [];
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()));
});

const factories: Array<[string, () => Promise<Stores>]> = [
  [
    'memory',
    async () => {
      const ledger = new MemoryLedger();
      return {
        ledger,
        runs: new MemoryRunStore(),
        vars: new MemoryVarStore(),
        scenarios: new MemoryScenarioStore(),
        maxActive: async (t) => (await ledger.getQuota(t)).maxActiveScenarios,
      };
    },
  ],
  [
    'redis',
    async () => {
      const p = await useProduction();
      opened.push(p);
      return { ledger: p.ledger, runs: p.runs, vars: p.vars, scenarios: p.scenarios, maxActive: async () => undefined };
    },
  ],
];

const scenario = scenarioOf({
  id: 'contract',
  variables: { n: 1 },
  start: 'each',
  nodes: [
    { id: 'each', type: 'loop', over: 'msg.payload', body: 'inc', collect: true, next: 'out' },
    fn('inc', 'setVar("n", vars.n + 1); return { payload: msg.payload + vars.n };'),
    fn('out', 'return msg;'),
  ],
});

/**
 * Spends one action for a task the way a run's Budget does: a lease of one (billable runs),
 * then a settlement of the task key. False when no action could be leased.
 */
async function spend(ledger: Ledger, o: { tenant: string; runId: string; key: string; at: Date; trigger?: boolean; billable?: boolean }): Promise<boolean> {
  const billable = o.billable ?? true;
  const { period, date } = await ledger.periodOf(o.tenant, o.at);
  let held = 0;
  if (billable) {
    const lease = await ledger.lease({ tenant: o.tenant, runId: o.runId, want: 1, at: o.at });
    if (lease.granted === 0) return false;
    held = lease.held ? 1 : 0;
  }
  await ledger.settle({
    tenant: o.tenant,
    runId: o.runId,
    scenarioId: 's',
    billable,
    period,
    entries: [{ key: o.key, trigger: o.trigger ?? false, date }],
    heldUsed: held,
    release: 0,
    at: o.at,
  });
  return true;
}

describe.each(factories)('%s stores', (_name, make) => {
  it('ledger: a task key is billed once, and the limit is never passed', async () => {
    const { ledger } = await make();
    await ledger.setQuota('t1', { monthlyActions: 3 });
    const at = new Date('2026-11-15T12:00:00Z');
    const req = (key: string, runId = 'r1') => ({ tenant: 't1', runId, key, at });
    expect(await spend(ledger, { ...req('1'), trigger: true })).toBe(true);
    expect(await spend(ledger, req('1'))).toBe(true); // redelivered: not billed again
    expect((await ledger.usage('t1', at)).used).toBe(1);
    expect(await spend(ledger, req('2'))).toBe(true);
    expect(await spend(ledger, req('3'))).toBe(true);
    expect(await spend(ledger, req('4'))).toBe(false); // no action left to lease
    expect(await spend(ledger, { ...req('1', 'r2'), billable: false })).toBe(true);
    await ledger.count('t1', 'connectorRequests', 2, at);
    const u = await ledger.usage('t1', at);
    expect(u).toMatchObject({
      tenant: 't1',
      limit: 3,
      used: 3,
      remaining: 0,
      overage: 0,
      nonBillable: 1,
      addOns: 0,
      byScenario: [{ scenarioId: 's', runs: 1, actions: 3 }],
      byDay: [{ date: '2026-11-15', actions: 3 }],
      meters: { runs: 1, connectorRequests: 2, connectorBytes: 0, mailsSent: 0 },
      period: { key: '2026-11', start: '2026-11-01T00:00:00Z', end: '2026-12-01T00:00:00Z', timezone: 'UTC' },
    });
    expect(u.alerts.map((a) => a.threshold)).toEqual([0.9, 1]);
    await ledger.addActions('t1', 2, at);
    expect(await spend(ledger, req('4'))).toBe(true);
    expect((await ledger.usage('t1', at)).remaining).toBe(1);
  });

  it('ledger: per-node actions and runs of the period, billed once, billable runs only', async () => {
    const { ledger } = await make();
    const at = new Date('2026-11-15T12:00:00Z');
    const { period, date } = await ledger.periodOf('t7', at);
    const settle = (runId: string, entries: Array<[string, string]>, billable = true) =>
      ledger.settle({
        tenant: 't7',
        runId,
        scenarioId: 'g',
        billable,
        period,
        entries: entries.map(([key, node]) => ({ key, trigger: key === '1', date, node })),
        heldUsed: 0,
        release: 0,
        at,
      });
    await settle('r1', [
      ['1', 'ignored: the trigger is $trigger'],
      ['2', 'loop'],
      ['3', 'loop'],
      ['4', 'body'],
    ]);
    await settle('r1', [
      ['3', 'loop'], // redelivered: not billed again
      ['5', 'loop'],
      ['6', 'body'],
    ]);
    await settle('r2', [
      ['1', ''],
      ['2', 'body'],
    ]);
    await settle('r3', [['2', 'body']], false); // non-billable: in no per-node count
    const u = await ledger.nodeUsage('t7', 'g', ['$trigger', 'loop', 'body', 'other'], at);
    expect(u).toEqual({
      period: '2026-11',
      nodes: { $trigger: { actions: 2, runs: 2 }, loop: { actions: 3, runs: 1 }, body: { actions: 3, runs: 2 }, other: { actions: 0, runs: 0 } },
    });
    const report = await ledger.usage('t7', at);
    expect(report.byScenario).toEqual([{ scenarioId: 'g', runs: 2, actions: 8 }]);
    expect((await ledger.nodeUsage('t7', 'other-scenario', ['loop'], at)).nodes).toEqual({ loop: { actions: 0, runs: 0 } });
    expect((await ledger.nodeUsage('t7', 'g', ['loop'], new Date('2026-12-02T00:00:00Z'))).nodes).toEqual({ loop: { actions: 0, runs: 0 } });
  });

  it('ledger: quotas round-trip and overage allow records past the limit', async () => {
    const { ledger } = await make();
    expect(await ledger.getQuota('t2')).toEqual({ monthlyActions: 500, overage: 'halt', timezone: 'UTC', alerts: [0.9, 1] });
    await ledger.setQuota('t2', { monthlyActions: 1, overage: 'allow', timezone: 'America/New_York', maxActiveScenarios: 2 });
    expect(await ledger.getQuota('t2')).toMatchObject({ monthlyActions: 1, overage: 'allow', timezone: 'America/New_York', maxActiveScenarios: 2 });
    const at = new Date('2026-12-01T03:00:00Z'); // still 30 November in New York
    for (const key of ['1', '2', '3']) expect(await spend(ledger, { tenant: 't2', runId: 'r', key, at })).toBe(true);
    const u = await ledger.usage('t2', at);
    expect(u).toMatchObject({
      used: 3,
      overage: 2,
      remaining: 0,
      period: { key: '2026-11', timezone: 'America/New_York' },
      byDay: [{ date: '2026-11-30', actions: 3 }],
    });
  });

  it('scenarios: deploy, list, enable within maxActiveScenarios, disable', async () => {
    const { scenarios, ledger, maxActive } = await make();
    await ledger.setQuota('t3', { maxActiveScenarios: 1 });
    expect(await scenarios.deploy('t3', scenario)).toEqual({ created: true, changed: true, version: 1 });
    expect(await scenarios.deploy('t3', scenario)).toEqual({ created: false, changed: false, version: 1 });
    await scenarios.deploy('t3', { ...scenario, id: 'other' });
    expect((await scenarios.get('t3', 'contract'))!.nodes).toHaveLength(3);
    expect(await scenarios.get('t4', 'contract')).toBeNull();
    await scenarios.enable('t3', 'contract', await maxActive('t3'));
    await scenarios.enable('t3', 'contract', await maxActive('t3'));
    await expect(scenarios.enable('t3', 'other', await maxActive('t3'))).rejects.toMatchObject({ code: 'MAX_ACTIVE_SCENARIOS' });
    await expect(scenarios.enable('t3', 'ghost', await maxActive('t3'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await scenarios.list('t3')).map((s) => [s.id, s.enabled])).toEqual([
      ['contract', true],
      ['other', false],
    ]);
    await scenarios.disable('t3', 'contract');
    await scenarios.enable('t3', 'other', await maxActive('t3'));
    expect(await scenarios.isEnabled('t3', 'other')).toBe(true);
    expect(await scenarios.tenants()).toContain('t3');
  });

  it('scenarios: versions, an unchanged deploy is a no-op, rollback appends, delete keeps the numbering', async () => {
    const { scenarios } = await make();
    // Key order does not make a change: documents are compared as canonical JSON.
    const reordered = Object.fromEntries(Object.entries(scenario).reverse()) as typeof scenario;
    expect(await scenarios.deploy('v1', scenario)).toEqual({ created: true, changed: true, version: 1 });
    expect(await scenarios.deploy('v1', reordered)).toEqual({ created: false, changed: false, version: 1 });
    const v2 = { ...scenario, name: 'second' };
    expect(await scenarios.deploy('v1', v2)).toEqual({ created: false, changed: true, version: 2 });
    const got = (await scenarios.get('v1', 'contract'))!;
    expect(got.name).toBe('second');
    expect(versionOf(got)).toBe(2);
    expect(newRun(got, 'v1', { type: 'manual' }).version).toBe(2);

    expect(await scenarios.rollback('v1', 'contract', 1)).toEqual({ created: false, changed: true, version: 3 });
    expect((await scenarios.get('v1', 'contract'))!.name).toBeUndefined();
    const history = await scenarios.versions('v1', 'contract');
    expect(history.map((v) => [v.version, v.rollbackOf ?? null, v.scenario.name ?? null])).toEqual([
      [1, null, null],
      [2, null, 'second'],
      [3, 1, null],
    ]);
    expect(history[0]!.hash).toBe(history[2]!.hash);
    expect(await scenarios.rollback('v1', 'contract', 3)).toEqual({ created: false, changed: false, version: 3 });
    await expect(scenarios.rollback('v1', 'contract', 9)).rejects.toThrow('scenario contract has no version 9; it has versions 1-3');
    await expect(scenarios.versions('v1', 'ghost')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    await scenarios.enable('v1', 'contract', undefined);
    await scenarios.delete('v1', 'contract');
    expect(await scenarios.get('v1', 'contract')).toBeNull();
    expect(await scenarios.isEnabled('v1', 'contract')).toBe(false);
    expect(await scenarios.list('v1')).toEqual([]);
    await expect(scenarios.delete('v1', 'contract')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(scenarios.enable('v1', 'contract', undefined)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // Deployed again: the numbering continues, so old runs' versions keep naming their documents.
    expect(await scenarios.deploy('v1', scenario)).toEqual({ created: true, changed: true, version: 4 });
  });

  it('cron index: kept by enable, deploy, disable and delete; due entries move on by compare-and-set', async () => {
    const { scenarios } = await make();
    const { cron } = scenarios;
    const due = async (to: number) => (await Promise.all(Array.from({ length: cron.shards }, (_, i) => cron.due(i, to, 0, 100)))).flat();
    const cronDoc = (schedule: string) => scenarioOf({ id: 'tick', trigger: { type: 'cron', schedule }, start: 'echo', nodes: [fn('echo', 'return msg;')] });
    await scenarios.deploy('c1', cronDoc('*/5 * * * *'));
    await scenarios.deploy('c1', scenarioOf({ id: 'manual', start: 'echo', nodes: [fn('echo', 'return msg;')] }));
    await scenarios.enable('c1', 'manual', undefined);
    expect(await due(Date.now())).toEqual([]); // not enabled, or not cron
    await scenarios.enable('c1', 'tick', undefined);
    const [fresh, ...none] = await due(0);
    expect(none).toEqual([]);
    expect(fresh).toMatchObject({ tenant: 'c1', scenarioId: 'tick', cursor: null });
    expect(fresh!.next).toBeLessThan(0); // a fresh marker: due at once
    // Moved on: due no more before its next instant; a second move of the same read is refused.
    expect(await cron.advance(fresh!, 2_000_000, 1_000_000)).toBe(true);
    expect(await cron.advance(fresh!, 3_000_000, 1_500_000)).toBe(false);
    expect(await due(1_999_999)).toEqual([]);
    const [moved] = await due(2_000_000);
    expect(moved).toMatchObject({ next: 2_000_000, cursor: 1_000_000 });
    // Redeployed with a new schedule: fresh again, afresh; the old read is stale.
    await scenarios.deploy('c1', cronDoc('*/10 * * * *'));
    const [redeployed] = await due(0);
    expect(redeployed).toMatchObject({ cursor: null });
    expect(redeployed!.next).toBeLessThan(0);
    expect(await cron.advance(moved!, 9_000_000, 2_000_000)).toBe(false);
    // Enabled again after a disable: afresh, no cursor. Deleted: gone.
    await scenarios.disable('c1', 'tick');
    expect(await due(Number.MAX_SAFE_INTEGER)).toEqual([]);
    await scenarios.enable('c1', 'tick', undefined);
    expect(await due(0)).toMatchObject([{ scenarioId: 'tick', cursor: null }]);
    await scenarios.delete('c1', 'tick');
    expect(await due(Number.MAX_SAFE_INTEGER)).toEqual([]);
  });

  it('vars: defaults once, then persisted values', async () => {
    const { vars } = await make();
    expect(await vars.load('t5', 's', { a: 1, b: { x: 2 } })).toEqual({ a: 1, b: { x: 2 } });
    await vars.setMany('t5', 's', [['a', 5]]);
    expect(await vars.load('t5', 's', { a: 1, c: 3 })).toEqual({ a: 5, b: { x: 2 }, c: 3 });
    expect(await vars.load('t5', 'other', {})).toEqual({});
    // Names are names, not object keys: no prototype is set, no inherited name is taken for a set one.
    await vars.setMany('t5', 'o', [
      ['__proto__', { polluted: true }],
      ['a', 1],
      ['a', 2],
    ]);
    const odd = await vars.load('t5', 'o', { toString: 'declared' });
    expect(Object.getPrototypeOf(odd)).toBe(Object.prototype);
    expect(Object.entries(odd).sort(([x], [y]) => x.localeCompare(y))).toEqual([
      ['__proto__', { polluted: true }],
      ['a', 2],
      ['toString', 'declared'],
    ]);
  });

  it('vars: a node whose variables would pass 1 MB or 1,000 names sets none of them (FUNCTION_ERROR)', async () => {
    const { vars } = await make();
    const big = 'x'.repeat(400 * 1024);
    await vars.setMany('t7', 's', [
      ['a', big],
      ['b', big],
    ]);
    // A third 400 KB value would take them past 1 MB: refused, and neither of the two names set.
    const refused = await vars
      .setMany('t7', 's', [
        ['c', big],
        ['d', 1],
      ])
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'FUNCTION_ERROR' });
    expect((refused as Error).message).toMatch(/^setVar: the scenario's variables would take \d+ bytes, more than the 1048576 allowed; nothing was set$/);
    expect(Object.keys(await vars.load('t7', 's', {})).sort()).toEqual(['a', 'b']);
    // Replacing a value counts its new size only: shrinking b makes room for c.
    await vars.setMany('t7', 's', [
      ['b', 0],
      ['c', big],
    ]);
    expect(Object.keys(await vars.load('t7', 's', {})).sort()).toEqual(['a', 'b', 'c']);
    // Names: at most 1,000.
    const many = Array.from({ length: 1000 }, (_, i) => [`v${i}`, i] as [string, unknown]);
    await vars.setMany('t7', 'n', many);
    await expect(vars.setMany('t7', 'n', [['one-more', 1]])).rejects.toThrow(
      'setVar: the scenario would have 1001 variables, more than the 1000 allowed; nothing was set',
    );
    await vars.setMany('t7', 'n', [['v0', 'replaced']]);
    expect((await vars.load('t7', 'n', {})).v0).toBe('replaced');
  });

  it('runs: the executor on these stores halts, stores, resumes and lists', async () => {
    const s = await make();
    await s.ledger.setQuota('t6', { monthlyActions: 4 });
    const deps = {
      meter: s.ledger,
      runs: s.runs,
      vars: s.vars,
      services: { sandbox: createSandbox(), mail: { send: async () => null }, env: () => undefined, fetch, sleep: async () => undefined },
    };
    const run = newRun(scenario, 't6', { type: 'manual' });
    await s.runs.create(run, scenario, [10, 20, 30]);
    const halted = await executeRun(scenario, structuredClone(run), deps, [10, 20, 30]);
    expect(halted.status).toBe('halted');
    const stored = await s.runs.load('t6', run.runId);
    expect(stored!.run).toMatchObject({ status: 'halted', actions: 4, error: { code: 'QUOTA_EXHAUSTED' } });
    expect(stored!.run.pending).not.toBeNull();
    expect(stored!.payload).toEqual([10, 20, 30]);
    expect(stored!.scenario.id).toBe('contract');
    expect(stored!.run.tasks.map((t) => t.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'halted']);
    expect(await s.runs.get('other-tenant', run.runId)).toBeNull();

    await s.ledger.setQuota('t6', { monthlyActions: 100 });
    const done = await executeRun(scenario, stored!.run, deps);
    expect(done.status).toBe('succeeded');
    const final = (await s.runs.get('t6', run.runId))!;
    // setVar is visible at once inside the same call: 10 + 2, 20 + 3, 30 + 4
    expect(final.outputs.map((m) => m.payload)).toEqual([[12, 23, 34]]);
    // trigger + loop + 3 × (iteration + inc) + out
    expect(final.actions).toBe(1 + 1 + 3 * 2 + 1);
    expect(final.tasks.reduce((a, t) => a + t.actions, 0)).toBe(final.actions);
    expect((await s.ledger.usage('t6', new Date())).used).toBe(final.actions);
    expect(await s.vars.load('t6', 'contract', { n: 1 })).toEqual({ n: 4 });
    // Per node: what the task log shows, billed once across the halt and the resume.
    const perNode: Record<string, { actions: number; runs: number }> = {};
    for (const t of final.tasks) if (t.actions > 0) perNode[t.nodeId] = { actions: (perNode[t.nodeId]?.actions ?? 0) + t.actions, runs: 1 };
    expect(perNode).toEqual({ $trigger: { actions: 1, runs: 1 }, each: { actions: 4, runs: 1 }, inc: { actions: 3, runs: 1 }, out: { actions: 1, runs: 1 } });
    const nodes = await s.ledger.nodeUsage('t6', 'contract', ['$trigger', 'each', 'inc', 'out', 'none'], new Date());
    expect(nodes.nodes).toEqual({ ...perNode, none: { actions: 0, runs: 0 } });
    const list = await s.runs.list('t6');
    expect(list.map((r) => [r.runId, r.status, r.actions])).toEqual([[run.runId, 'succeeded', 9]]);
    expect(list[0]).not.toHaveProperty('tasks');
    expect(await s.runs.list('t6', { status: 'failed' })).toEqual([]);
    deps.services.sandbox.dispose();
  });
});
