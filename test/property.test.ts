/**
 * Property tests (fast-check): random valid scenarios (DAGs of every peer-less node type) run in
 * embedded and production mode, halted and resumed; random invalid documents validated.
 * See `helpers/arbitraries.ts` for what is generated and for `predict`, the reference
 * interpreter. `FC_SEED=<n>` replays a run; `FC_RUNS=<factor>` scales the number of cases.
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord, TaskRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { newRun } from '../engine/run-record.js';
import type { Production } from '../redis/production.js';
import type { Scenario } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { createSandboxPool } from '../services/sandbox-pool.js';
import { type Case, canonical, caseArb, type Doc, looseDocArb, mutationArb, type Prediction, predict, scenarioArb } from './helpers/arbitraries.js';
import { useProduction } from './helpers/production.js';

const seed = process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {};
const scale = Number(process.env.FC_RUNS ?? 1);
const opts = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: Math.max(1, Math.round(numRuns * scale)), ...seed });

/** One warm sandbox pool (host processes, chains in one hop) for every embedded engine of this file (engines do not dispose it). */
const sandbox = createSandboxPool();
afterAll(() => sandbox.dispose());

const BIG = 10_000_000;

/** A fresh embedded engine: fresh variables, ledger and runs; mail captured (no SMTP). */
async function engineWith(quota: number): Promise<Embedded> {
  const engine = createEmbedded({ env: {}, services: { sandbox } });
  await engine.ledger.setQuota('default', { monthlyActions: quota });
  return engine;
}

/** `use` on a fresh engine with `quota` (see engineWith), closed afterwards. */
async function withEngine<T>(quota: number, use: (engine: Embedded) => Promise<T>): Promise<T> {
  const engine = await engineWith(quota);
  try {
    return await use(engine);
  } finally {
    await engine.close();
  }
}

/** The run of `scenario` on a fresh engine that never halts it: the reference of a halted or remote run. */
const runWhole = (scenario: Scenario, payload: unknown): Promise<RunRecord> => withEngine(BIG, (engine) => engine.run(scenario, payload));

/** Random cut points (0..9999) of a run, one to `maxLength` of them. */
const cutsArb = (maxLength: number) => fc.array(fc.integer({ min: 0, max: 9999 }), { minLength: 1, maxLength, size: 'max' });
/** The quota a cut point (0..9999) stands for in a run of `total` actions: 1 ≤ quota < total (for total ≥ 2). */
const quotaAt = (cut: number, total: number): number => 1 + Math.floor((cut / 10_000) * (total - 1));
/** The distinct quotas of the cut points, ascending. */
const quotasAt = (cuts: number[], total: number): number[] => [...new Set(cuts.map((c) => quotaAt(c, total)))].sort((a, b) => a - b);

function valid(doc: Doc): Scenario {
  const v = validateScenario(doc);
  expect(v.problems, 'the arbitrary generated an invalid scenario').toEqual([]);
  expect(v.scenario).not.toBeNull();
  return v.scenario!;
}

const payloads = (run: RunRecord): unknown[] => run.outputs.map((m) => m.payload);
/**
 * As JSON: what production stores. Embedded outputs may hold what JSON cannot (`undefined`
 * values; named properties on arrays, which `setPath` makes when a path goes through an
 * array, e.g. Conversion `target: msg.payload.label` on an array payload).
 */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
const shape = (t: TaskRecord) => [t.nodeId, t.status, t.actions, t.iteration ?? null] as const;
const countBy = <T>(xs: T[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const x of xs) m.set(JSON.stringify(x), (m.get(JSON.stringify(x)) ?? 0) + 1);
  return m;
};
/** The tasks that ran (not the halts), as a multiset: a run halted and resumed has the tasks of one never halted. */
const executed = (r: RunRecord) => countBy(r.tasks.filter((t) => t.status !== 'halted').map(shape));

/**
 * The invariants of one ended run that need no knowledge of the scenario's meaning: the task
 * log is numbered 1..n from the trigger, and the run's actions are an independent count of it.
 */
function checkTaskLog(run: RunRecord, scenario: Scenario): void {
  const tasks = run.tasks;
  expect(tasks.length).toBeGreaterThan(0);
  expect(tasks[0]!.nodeId).toBe('$trigger');
  expect(tasks.map((t) => t.seq)).toEqual(tasks.map((_, i) => i + 1));
  const types = new Map(scenario.nodes.map((n) => [n.id, n.type]));
  let counted = 0;
  for (const t of tasks.slice(1)) {
    expect(types.has(t.nodeId), `task of unknown node ${t.nodeId}`).toBe(true);
    expect(types.get(t.nodeId)).not.toBe('comment');
    expect(t.type).toBe(types.get(t.nodeId));
    expect(['ok', 'error', 'dropped', 'halted']).toContain(t.status);
    if (t.iteration !== undefined) expect(t.type).toBe('loop');
  }
  for (const t of tasks) {
    const free = t.status === 'halted' || t.error?.code === 'RUN_BUDGET_EXCEEDED';
    expect(t.actions, `task ${t.seq} ${t.nodeId} ${t.status} ${t.error?.code ?? ''}`).toBe(free ? 0 : 1);
    if (t.status === 'error') expect(t.error?.code).toMatch(/^[A-Z][A-Z0-9_]*$/);
    counted += free ? 0 : 1;
  }
  expect(run.actions).toBe(counted);
  expect(tasks.reduce((a, t) => a + t.actions, 0)).toBe(run.actions);
  if (scenario.maxActionsPerRun !== undefined) expect(run.actions).toBeLessThanOrEqual(scenario.maxActionsPerRun);
}

/**
 * Loop iterations: with every path run to its end, each loop execution that succeeded has one
 * iteration task per item, indexed 0..count-1; when the run failed, at most that.
 */
function checkIterations(run: RunRecord): void {
  const loops = new Set(run.tasks.filter((t) => t.type === 'loop').map((t) => t.nodeId));
  for (const id of loops) {
    const mine = run.tasks.filter((t) => t.nodeId === id);
    const executions = mine.filter((t) => t.iteration === undefined && t.status === 'ok');
    const iterations = mine.filter((t) => t.iteration !== undefined && t.status === 'ok');
    const expected = executions.flatMap((t) => Array.from({ length: (t.output as { items: number }).items }, (_, i) => i));
    if (run.status === 'succeeded') {
      expect(iterations.length, `iterations of ${id}`).toBe(expected.length);
      expect(iterations.map((t) => t.iteration).sort()).toEqual(expected.sort());
    } else {
      expect(iterations.length).toBeLessThanOrEqual(expected.length);
    }
  }
}

/** The run against the reference interpreter. */
function checkPrediction(run: RunRecord, scenario: Scenario, p: Prediction): void {
  const budget = scenario.maxActionsPerRun;
  if (p.status === 'failed') {
    expect(run.status, `predicted failure ${JSON.stringify(p.error)}`).toBe('failed');
    expect(run.actions).toBeLessThanOrEqual(p.upperBound);
    // The run failed with one of the failures some path reaches (or ran out of its budget).
    const got = `${run.error?.nodeId}:${run.error?.code}`;
    if (run.error?.code !== 'RUN_BUDGET_EXCEEDED') expect(p.uncaught, `engine failed with ${got}`).toContain(got);
    return;
  }
  if (budget !== undefined && p.actions > budget) {
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('RUN_BUDGET_EXCEEDED');
    expect(run.actions).toBe(budget);
    return;
  }
  expect(run.status, `predicted success, got ${JSON.stringify(run.error)}`).toBe('succeeded');
  expect(run.error).toBeNull();
  expect(run.actions).toBe(p.actions);
  expect(canonical(run.outputs)).toBe(canonical(p.outputs));
}

describe('valid scenarios (embedded)', () => {
  it('a. validate with zero problems, run without throwing, and count actions exactly', async () => {
    const stats = { succeeded: 0, failed: 0, actions: 0, maxActions: 0, budget: 0, nestedLoops: 0, byType: {} as Record<string, number> };
    await fc.assert(
      fc.asyncProperty(fc.oneof(caseArb({ nonBillable: true }), caseArb({ minCost: 10, nonBillable: true })), async ({ doc, payload }: Case) => {
        const scenario = valid(doc);
        await withEngine(BIG, async (engine) => {
          const run = await engine.run(scenario, payload);
          expect(['succeeded', 'failed']).toContain(run.status);
          if (run.status === 'failed') {
            expect(run.error?.code).toMatch(/^[A-Z][A-Z0-9_]*$/);
            expect(run.tasks.some((t) => t.status === 'error' && t.error?.code === run.error?.code)).toBe(true);
          } else expect(run.error).toBeNull();
          checkTaskLog(run, scenario);
          checkIterations(run);
          checkPrediction(run, scenario, predict(doc, payload));
          // The ledger billed exactly what the task log says (non-billable: counted apart).
          const usage = await engine.ledger.usage('default', new Date());
          if (scenario.billable) expect(usage).toMatchObject({ used: run.actions, nonBillable: 0 });
          else expect(usage).toMatchObject({ used: 0, nonBillable: run.actions });
          // The stored record is the returned one.
          const stored = await engine.runs.get('default', run.runId);
          expect(stored?.tasks.map(shape)).toEqual(run.tasks.map(shape));
          stats[run.status as 'succeeded' | 'failed']++;
          stats.actions += run.actions;
          stats.maxActions = Math.max(stats.maxActions, run.actions);
          for (const t of run.tasks) stats.byType[t.type] = (stats.byType[t.type] ?? 0) + 1;
          stats.nestedLoops += run.tasks.filter((t) => t.type === 'loop' && t.iteration === undefined && (t.input as { loop?: unknown } | null)?.loop).length;
          if (run.error?.code === 'RUN_BUDGET_EXCEEDED') stats.budget++;
        });
      }),
      opts(800),
    );
    console.log('property a:', JSON.stringify(stats));
  }, 60_000);

  it('a. a tiny quota only ever halts or rejects, never loses count', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb(), fc.integer({ min: 0, max: 6 }), async ({ doc, payload }: Case, quota) => {
        const scenario = valid(doc);
        await withEngine(quota, async (engine) => {
          const run = await engine.run(scenario, payload);
          expect(['succeeded', 'failed', 'halted', 'rejected']).toContain(run.status);
          if (run.status === 'rejected') {
            expect(quota).toBe(0);
            expect(run).toMatchObject({ actions: 0, tasks: [], error: { code: 'QUOTA_EXHAUSTED' } });
            return;
          }
          checkTaskLog(run, scenario);
          expect(run.actions).toBeLessThanOrEqual(quota);
          if (run.status === 'halted') {
            expect(run.actions).toBe(quota);
            expect(run.error?.code).toBe('QUOTA_EXHAUSTED');
            expect(run.tasks.at(-1)).toMatchObject({ status: 'halted', actions: 0 });
            expect(run.tasks.filter((t) => t.status === 'halted')).toHaveLength(1);
          }
          expect((await engine.ledger.usage('default', new Date())).used).toBe(run.actions);
        });
      }),
      opts(300),
    );
  }, 60_000);
});

describe('production mode', () => {
  let p: Production;
  let n = 0;
  const tenant = 'prop';
  beforeAll(async () => {
    p = await useProduction({ env: {} });
    await p.ledger.setQuota(tenant, { monthlyActions: BIG });
    p.startWorker({ concurrency: 2 });
  });
  afterAll(async () => {
    await p?.close();
  });
  /** Creates a run of `scenario` (as deployed for `tenant`) on the queue; the run once ended. */
  const runQueued = (tenant: string, scenario: Scenario, payload: unknown): Promise<RunRecord> => {
    const queued = newRun(scenario, tenant, { type: 'manual' });
    return p.waitFor(
      tenant,
      queued.runId,
      async () => {
        await p.runs.create(queued, scenario, payload);
        await p.queue.enqueue({ tenant, runId: queued.runId });
      },
      20_000,
    );
  };
  /** The remote run ended as the local one: status and error code. */
  const expectSameEnd = (remote: RunRecord, local: RunRecord) => {
    expect(remote.status).toBe(local.status);
    expect(remote.error?.code ?? null).toBe(local.error?.code ?? null);
  };

  it('b. gives the same status, outputs, actions and task list as embedded mode', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb({ minCost: 6, maxCost: 150 }), async ({ doc, payload }: Case) => {
        // A fresh scenario id per case: Function setVar persists across runs of one scenario.
        const scenario = valid({ ...doc, id: `prop-b-${++n}` });
        const local = await runWhole(scenario, payload);
        await p.scenarios.deploy(tenant, scenario);
        const stored = (await p.scenarios.get(tenant, scenario.id))!;
        const remote = await runQueued(tenant, stored, payload);
        expectSameEnd(remote, local);
        expect(remote.actions).toBe(local.actions);
        expect(payloads(remote)).toEqual(asJson(payloads(local)));
        expect(remote.tasks.map(shape)).toEqual(local.tasks.map(shape));
        checkTaskLog(remote, stored);
      }),
      opts(80),
    );
    const usage = await p.ledger.usage(tenant, new Date());
    const runs = await p.runs.list(tenant, { limit: 10_000 });
    expect(usage.used).toBe(runs.reduce((a, r) => a + r.actions, 0));
  }, 60_000);

  it('b. halted at a random quota and resumed through the queue, ends as embedded mode never halted', async () => {
    const stats = { cases: 0, halts: 0 };
    await fc.assert(
      fc.asyncProperty(caseArb({ minCost: 6, maxCost: 150, budget: false }), fc.integer({ min: 0, max: 9999 }), async ({ doc, payload }: Case, cut) => {
        const scenario = valid({ ...doc, id: `prop-h-${++n}` });
        const local = await runWhole(scenario, payload);
        const quota = quotaAt(cut, local.actions);
        fc.pre(quota < local.actions);
        const t = `h${n}`; // its own quota
        await p.ledger.setQuota(t, { monthlyActions: quota, resumeHalted: 'manual' });
        await p.scenarios.deploy(t, scenario);
        let remote = await runQueued(t, scenario, payload);
        const runId = remote.runId;
        if (remote.status === 'halted') {
          stats.halts++;
          expect(remote.actions).toBe(quota);
          expect(remote.pending?.items.length).toBeGreaterThan(0);
          await p.ledger.setQuota(t, { monthlyActions: BIG });
          remote = await p.waitFor(t, runId, () => p.resume(t, runId), 20_000);
        } else {
          // Only a failure can end a run before its quota is used up.
          expect(local.status).toBe('failed');
        }
        expectSameEnd(remote, local);
        expect((await p.ledger.usage(t, new Date())).used).toBe(remote.actions);
        checkTaskLog(remote, scenario);
        if (local.status === 'succeeded') {
          expect(remote.actions).toBe(local.actions);
          expect(executed(remote)).toEqual(executed(local));
          expect(payloads(remote)).toEqual(asJson(payloads(local)));
        }
        stats.cases++;
      }),
      opts(120),
    );
    console.log('property b (halts):', JSON.stringify(stats));
  }, 60_000);
});

/** A case halted at random quotas (property c): its run never halted, and the halting engine and run. */
interface Halting {
  scenario: Scenario;
  whole: RunRecord;
  quotas: number[];
  engine: Embedded;
  first: RunRecord;
}

/**
 * Runs the case whole (it must end `status`, with 2 actions or more), then on a fresh engine
 * with the first of the quotas cut from it (1 ≤ q1 < q2 < … < total) for `then` to go on with.
 */
async function haltAtCuts({ doc, payload }: Case, cuts: number[], status: RunRecord['status'], then: (h: Halting) => Promise<void>): Promise<void> {
  const scenario = valid(doc);
  const whole = await runWhole(scenario, payload);
  expect(whole.status).toBe(status);
  fc.pre(whole.actions >= 2);
  const quotas = quotasAt(cuts, whole.actions);
  await withEngine(quotas[0]!, async (engine) => then({ scenario, whole, quotas, engine, first: await engine.run(scenario, payload) }));
}

describe('halting and resuming (embedded)', () => {
  /** Cases that succeed when never halted, so that every task runs. */
  const succeeding = caseArb({ minCost: 6, maxCost: 250, budget: false }).filter((c) => predict(c.doc, c.payload).status === 'succeeded');

  it('c. a run halted one or more times and resumed ends as if never halted', async () => {
    const stats = { cases: 0, halts: 0 };
    await fc.assert(
      fc.asyncProperty(succeeding, cutsArb(5), (c: Case, cuts) =>
        // The run halts at each quota.
        haltAtCuts(c, cuts, 'succeeded', async ({ scenario, whole, quotas, engine: e2, first }) => {
          const total = whole.actions;
          let run = first;
          for (let i = 0; i < quotas.length; i++) {
            expect(run.status, `halt at quota ${quotas[i]}`).toBe('halted');
            expect(run.actions).toBe(quotas[i]);
            expect(run.error?.code).toBe('QUOTA_EXHAUSTED');
            expect((await e2.ledger.usage('default', new Date())).used).toBe(run.actions);
            await e2.ledger.setQuota('default', { monthlyActions: quotas[i + 1] ?? BIG });
            run = await e2.resumeRun('default', run.runId);
          }
          expect(run.status).toBe('succeeded');
          expect(run.actions).toBe(total);
          expect((await e2.ledger.usage('default', new Date())).used).toBe(total);
          checkTaskLog(run, scenario);
          expect(run.tasks.filter((t) => t.status === 'halted')).toHaveLength(quotas.length);
          // No node ran twice, none was skipped.
          expect(executed(run)).toEqual(executed(whole));
          // Variables included: a resumed run reads the values an uninterrupted one reads.
          expect(payloads(run)).toEqual(payloads(whole));
          stats.cases++;
          stats.halts += quotas.length;
        }),
      ),
      opts(300),
    );
    console.log('property c:', JSON.stringify(stats));
  }, 60_000);

  it('c. a failing run halted and resumed fails with the same error', async () => {
    const failing = caseArb({ minCost: 4, maxCost: 250, budget: false }).filter((c) => predict(c.doc, c.payload).status === 'failed');
    await fc.assert(
      fc.asyncProperty(failing, cutsArb(4), (c: Case, cuts) =>
        haltAtCuts(c, cuts, 'failed', async ({ scenario, whole, quotas, engine: e2, first }) => {
          let run = first;
          for (let i = 1; run.status === 'halted'; i++) {
            expect(run.actions).toBe(quotas[i - 1]);
            await e2.ledger.setQuota('default', { monthlyActions: quotas[i] ?? BIG });
            run = await e2.resumeRun('default', run.runId);
          }
          expect(run.status).toBe('failed');
          expect(run.error).toMatchObject({ code: whole.error!.code, nodeId: whole.error!.nodeId });
          checkTaskLog(run, scenario);
          expect((await e2.ledger.usage('default', new Date())).used).toBe(run.actions);
        }),
      ),
      opts(150),
    );
  }, 60_000);

  /**
   * Found by property c: a halt splits a wave. What is left of it must run as a wave of its
   * own, before the successors of the tasks that ran (RunState.partial), and variables are
   * seen in wave order, or a resumed run reads other values than an uninterrupted one.
   */
  it('a setVar is seen by the same later nodes after a resume', async () => {
    const SET = "const c = (vars.counter ?? 0) + 1; setVar('counter', c); return { payload: { node: msg.payload.node, seen: c } };";
    const doc: Doc = {
      id: 'vars-halt',
      variables: { counter: 0 },
      start: 'fan',
      nodes: [
        { id: 'fan', type: 'fanOut', branches: ['a', 'b'] },
        { id: 'a', type: 'function', code: "return { payload: { node: 'a2' } };", next: 'a2' },
        { id: 'a2', type: 'function', code: SET },
        { id: 'b', type: 'function', code: SET.replace('msg.payload.node', "'b'") },
      ],
    };
    const outcome = (quota: number) =>
      withEngine(quota, async (engine) => {
        let run = await engine.run(valid(doc), {});
        if (run.status === 'halted') {
          await engine.ledger.setQuota('default', { monthlyActions: BIG });
          run = await engine.resumeRun('default', run.runId);
        }
        return { status: run.status, actions: run.actions, payloads: payloads(run), vars: await engine.vars.load('default', 'vars-halt', {}) };
      });
    const whole = await outcome(BIG);
    expect(whole).toEqual({
      status: 'succeeded',
      actions: 5,
      payloads: [
        { node: 'b', seen: 1 },
        { node: 'a2', seen: 2 },
      ],
      vars: { counter: 2 },
    });
    // Quota 3 = trigger + fan + a: b halts; on resume b and a2 run in one wave, a2 misses b's setVar.
    expect(await outcome(3)).toEqual(whole);
  });
});

describe('invalid documents', () => {
  const LINE = /^[^\n]+: [^\n]+$/;
  const checkInvalid = (doc: unknown) => {
    const v = validateScenario(doc);
    expect(v.scenario).toBeNull();
    expect(v.problems.length).toBeGreaterThan(0);
    for (const p of v.problems) expect(p).toMatch(LINE);
    return v;
  };

  it('d. random JSON values and loosely scenario-shaped documents are rejected, one line per problem', () => {
    fc.assert(
      fc.property(looseDocArb, (doc) => void checkInvalid(doc)),
      opts(2000),
    );
  });

  it('d. mutated valid scenarios are rejected; a back edge is always reported as a cycle', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(mutationArb, (m) => {
        const v = checkInvalid(m.doc);
        if (m.mentions)
          expect(
            v.problems.some((p) => m.mentions!.test(p)),
            `${m.what}: ${v.problems.join(' | ')}`,
          ).toBe(true);
        const kind = m.what.split(' ').slice(0, 2).join(' ');
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
      }),
      opts(2000),
    );
    expect(seen.size).toBeGreaterThan(8);
  });

  it('d. validateScenario never throws on any value', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withNullPrototype: true,
          withObjectString: true,
          withBoxedValues: true,
          withMap: true,
          withSet: true,
          withDate: true,
          withSparseArray: true,
        }),
        (doc) => {
          const v = validateScenario(doc);
          expect(v.scenario).toBeNull();
          expect(v.problems.length).toBeGreaterThan(0);
        },
      ),
      opts(1000),
    );
  });

  it('d. every generated scenario is valid (the arbitrary is correct)', () => {
    fc.assert(
      fc.property(scenarioArb(), (doc) => void valid(doc)),
      opts(500),
    );
  });
});
