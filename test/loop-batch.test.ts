/**
 * Loop batches (engine/loop-batch.ts): a Loop whose body is Function nodes computes many
 * iterations in one sandbox host round trip, and ends exactly as the same run executed one
 * Function at a time (the reference here: the same pool without `runChain`, so no chain and no
 * batch). Real host processes, real isolated-vm; counts, never durations.
 */

import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import type { FunctionSandbox } from '../nodes/define.js';
import type { Scenario } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { createSandboxPool, type SandboxPool } from '../services/sandbox-pool.js';

const BOMB = "for (let i = 0; i < 10; i++) Symbol.for(i + 'x'.repeat(30 * 1024 * 1024)); return msg;";

function scenario(doc: unknown): Scenario {
  const r = validateScenario(doc);
  if (!r.scenario) throw new Error(r.problems.join('; '));
  return r.scenario;
}

/** A loop over msg.payload.items whose body is f1 → f2 (codes given), collecting, then `after`. */
function loopOf(f1: string, f2: string, extra: { nodes?: unknown[]; maxActionsPerRun?: number } = {}): Scenario {
  return scenario({
    id: 'lb',
    trigger: { type: 'manual' },
    start: 'each',
    ...(extra.maxActionsPerRun && { maxActionsPerRun: extra.maxActionsPerRun }),
    variables: { sum: 0, count: 0 },
    nodes: [
      { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1', collect: true, next: 'after' },
      { id: 'f1', type: 'function', code: f1, next: 'f2' },
      { id: 'f2', type: 'function', code: f2 },
      {
        id: 'after',
        type: 'function',
        code: 'return { payload: { n: msg.payload.length, last: msg.payload[msg.payload.length - 1] }, sum: vars.sum, count: vars.count }',
      },
      ...(extra.nodes ?? []),
    ],
  });
}

const items = (n: number) => ({ items: Array.from({ length: n }, (_, i) => ({ i, v: (i * 7) % 13 })) });
const SUM = 'setVar("sum", vars.sum + msg.payload.v); return { ...msg, payload: { ...msg.payload, before: vars.sum } }';
const COUNT = 'setVar("count", vars.count + 1); log("at", msg.loop.index, vars.count); return { payload: [msg.payload.i, msg.payload.before, vars.count] }';

/** What two runs must agree on: every task (without timings) and the outputs. */
const shape = (r: RunRecord, seq = true) => ({
  status: r.status,
  actions: r.actions,
  error: r.error,
  outputs: r.outputs,
  tasks: r.tasks.map((t) => [seq ? t.seq : null, t.nodeId, t.status, t.actions, t.iteration ?? null, t.input, t.output, t.logs ?? null, t.error]),
});

describe('loop batches', () => {
  let pool: SandboxPool;
  /** The same hosts, one Function per hop: the executor's plain path, the reference. */
  let plain: FunctionSandbox;
  const engines: Embedded[] = [];
  const engineOf = async (sandbox: FunctionSandbox, quota = 1e9, bigLeases = false) => {
    const e = createEmbedded({ env: {}, services: { sandbox } });
    if (bigLeases) e.deps.budget = { firstLease: 4096, maxLease: 4096 };
    await e.ledger.setQuota('default', { monthlyActions: quota });
    engines.push(e);
    return e;
  };

  beforeAll(() => {
    if (!existsSync('dist/services/sandbox-host.js')) throw new Error('build first: npm run build');
    pool = createSandboxPool({ size: 1 });
    plain = { run: (req) => pool.run(req) };
  });
  afterAll(async () => {
    for (const e of engines) await e.close();
    await pool.dispose();
  });

  it('a 1,000-item loop with a 2-Function body takes far fewer host round trips than iterations, and ends as the unbatched run', async () => {
    const scn = loopOf(SUM, COUNT);
    const batched = await engineOf(pool, 1e9, true);
    const before = pool.stats().hops;
    const run = await batched.run(scn, items(1000));
    const hops = pool.stats().hops - before;
    expect(run.status).toBe('succeeded');
    expect(run.actions).toBe(2 + 1000 * 3 + 1);
    expect(hops).toBeLessThanOrEqual(1000 / 50);

    const ref = await (await engineOf(plain)).run(scn, items(1000));
    expect(shape(run)).toEqual(shape(ref));
    expect(run.outputs[0]!.sum).toBe(items(1000).items.reduce((s, x) => s + x.v, 0));
    expect(run.outputs[0]!.count).toBe(1000);

    // With the default leases (the run holds at most 256 actions at a time) it still batches.
    const leased = await engineOf(pool);
    const from = pool.stats().hops;
    expect(shape(await leased.run(scn, items(1000)))).toEqual(shape(ref));
    expect(pool.stats().hops - from).toBeLessThan(1000 / 10);
  });

  it("setVar is carried from iteration to iteration; the stored variables equal the unbatched run's", async () => {
    const scn = loopOf(SUM, COUNT);
    const a = await engineOf(pool);
    const b = await engineOf(plain);
    const ra = await a.run(scn, items(300));
    const rb = await b.run(scn, items(300));
    expect(shape(ra)).toEqual(shape(rb));
    expect(await a.vars.load('default', 'lb', {})).toEqual(await b.vars.load('default', 'lb', {}));
    // Iteration i saw the sum of the items up to its own (setVar is visible at once in its call).
    const f1 = ra.tasks.filter((t) => t.nodeId === 'f1');
    expect((f1[120]!.output as { payload: { before: number } }).payload.before).toBe(items(121).items.reduce((s, x) => s + x.v, 0));
  });

  it('a quota that runs out mid-loop halts before exactly the unpaid action; resumed, the run equals the never-halted one', async () => {
    const scn = loopOf(SUM, COUNT);
    const once = await (await engineOf(plain)).run(scn, items(200));
    // The trigger and the loop are actions 1 and 2; then each iteration is 3 (iteration, f1, f2).
    for (const quota of [3, 4, 5, 60, 61, 62, 299, 400]) {
      const e = await engineOf(pool, quota);
      const ref = await engineOf(plain, quota);
      const halted = await e.run(scn, items(200));
      expect(halted.status).toBe('halted');
      expect(halted.actions).toBe(quota);
      expect(shape(halted)).toEqual(shape(await ref.run(scn, items(200))));
      expect(halted.tasks.at(-1)).toMatchObject({ status: 'halted', actions: 0, nodeId: ['each', 'f1', 'f2'][(quota - 2) % 3] });
      await e.ledger.setQuota('default', { monthlyActions: 1e9 });
      const resumed = await e.resumeRun('default', halted.runId);
      // (A resumed run's later tasks are numbered one more: the halted task kept its number.)
      const { tasks, ...rest } = shape(resumed, false);
      const { tasks: onceTasks, ...onceRest } = shape(once, false);
      expect(rest).toEqual(onceRest);
      expect(tasks.filter((t) => t[2] !== 'halted')).toEqual(onceTasks);
      expect(await e.vars.load('default', 'lb', {})).toMatchObject({ sum: once.outputs[0]!.sum, count: 200 });
    }
  });

  it("a throw in iteration 37 is caught by a Catch with iteration 37's message; later iterations go on", async () => {
    const scn = loopOf(SUM, `if (msg.loop.index === 37) throw new Error("bad item " + msg.payload.i); ${COUNT}`, {
      nodes: [
        { id: 'oops', type: 'catch', scope: ['f2'], next: 'note' },
        { id: 'note', type: 'function', code: 'return { payload: { failed: msg.loop.index, item: msg.payload.i, code: msg.error.code } }' },
      ],
    });
    const run = await (await engineOf(pool)).run(scn, items(100));
    expect(run.status).toBe('succeeded');
    const failed = run.tasks.filter((t) => t.status === 'error');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ nodeId: 'f2', error: { code: 'FUNCTION_ERROR', message: expect.stringContaining('bad item 37') } });
    expect((failed[0]!.input as { loop: unknown }).loop).toEqual({ index: 37, count: 100 });
    const caught = run.tasks.find((t) => t.nodeId === 'oops')!;
    expect(caught.input).toMatchObject({ loop: { index: 37, count: 100 }, payload: { i: 37 }, error: { nodeId: 'f2', code: 'FUNCTION_ERROR' } });
    expect(run.outputs[0]!.payload).toMatchObject({ n: 100 });
    expect(shape(run)).toEqual(shape(await (await engineOf(plain)).run(scn, items(100))));
  });

  it('maxActionsPerRun inside a loop fails the exact node it cannot pay with RUN_BUDGET_EXCEEDED', async () => {
    for (const max of [50, 51, 52]) {
      const scn = loopOf(SUM, COUNT, { maxActionsPerRun: max });
      const run = await (await engineOf(pool)).run(scn, items(100));
      expect(run.status).toBe('failed');
      expect(run.actions).toBe(max);
      expect(run.error).toMatchObject({ code: 'RUN_BUDGET_EXCEEDED', nodeId: ['each', 'f1', 'f2'][(max - 2) % 3] });
      expect(shape(run)).toEqual(shape(await (await engineOf(plain)).run(scn, items(100))));
    }
  });

  it("a host that dies in iteration 37 of a batch: FUNCTION_MEMORY lands on that iteration's Function", async () => {
    const scn = loopOf(SUM, `if (msg.loop.index === 37) { ${BOMB} } ${COUNT}`);
    const died = pool.stats().died;
    const run = await (await engineOf(pool)).run(scn, items(60));
    // Once in the batch, once when the pool ran the batch again step by step to find the culprit.
    expect(pool.stats().died).toBe(died + 2);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ nodeId: 'f2', code: 'FUNCTION_MEMORY' });
    const last = run.tasks.at(-1)!;
    expect(last).toMatchObject({ nodeId: 'f2', status: 'error' });
    expect((last.input as { loop: unknown }).loop).toEqual({ index: 37, count: 60 });
    expect(run.tasks.filter((t) => t.status === 'ok' && t.nodeId === 'f2')).toHaveLength(37);
    expect(run.actions).toBe(2 + 38 * 3);
  });

  it('3,000 items: batches lease ahead and the next one computes while one is applied; setVar crosses batches; ends as the unbatched run', async () => {
    const scn = loopOf(SUM, COUNT);
    const e = await engineOf(pool);
    const before = pool.stats().hops;
    const run = await e.run(scn, items(3000));
    // Each hop carries many iterations (at most 1,024), not one per lease of 256 actions.
    expect(pool.stats().hops - before).toBeLessThan(3000 / 60);
    const ref = await engineOf(plain);
    expect(shape(run)).toEqual(shape(await ref.run(scn, items(3000))));
    expect(await e.vars.load('default', 'lb', {})).toEqual(await ref.vars.load('default', 'lb', {}));
    expect(run.outputs[0]).toMatchObject({ count: 3000, sum: items(3000).items.reduce((sum, x) => sum + x.v, 0) });
  });

  it('leases ahead only what the quota has, and gives back every unspent action: runs costing exactly the quota all succeed', async () => {
    const scn = loopOf(SUM, COUNT);
    const cost = (n: number) => 2 + n * 3 + 1;
    const e = await engineOf(pool, cost(1500) + cost(700) + cost(10));
    expect((await e.run(scn, items(1500))).status).toBe('succeeded');
    expect((await e.run(scn, items(700))).status).toBe('succeeded');
    const last = await e.run(scn, items(10));
    expect(last).toMatchObject({ status: 'succeeded', actions: cost(10) });
    expect((await e.run(scn, items(1))).status).toBe('rejected');
    expect((await e.ledger.usage('default', new Date())).used).toBe(cost(1500) + cost(700) + cost(10));
  });

  it('a run that fails mid-loop, its next batch leased and computing, keeps no leased action: the next run can spend the whole rest of the quota', async () => {
    const scn = loopOf(SUM, `if (msg.loop.index === 1500) throw new Error("stop"); ${COUNT}`);
    const e = await engineOf(pool, 1e6);
    const failed = await e.run(scn, items(3000));
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'FUNCTION_ERROR', nodeId: 'f2' }, actions: 2 + 1501 * 3 });
    const next = loopOf(SUM, COUNT);
    const cost = 2 + 900 * 3 + 1;
    await e.ledger.setQuota('default', { monthlyActions: failed.actions + cost });
    expect(await e.run(next, items(900))).toMatchObject({ status: 'succeeded', actions: cost });
    expect((await e.run(next, items(1))).status).toBe('rejected');
  });

  it("a Function over its timeoutMs in iteration 37 of a batch: FUNCTION_TIMEOUT on that iteration's Function, as unbatched", async () => {
    const slow = 'if (msg.loop.index === 37) { const t = Date.now(); while (Date.now() - t < 400) {} } return msg';
    const scn = scenario({
      id: 'lt',
      start: 'each',
      nodes: [
        { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1' },
        { id: 'f1', type: 'function', code: 'return { ...msg, payload: { ...msg.payload, seen: true } }', timeoutMs: 150, next: 'f2' },
        { id: 'f2', type: 'function', code: slow, timeoutMs: 150 },
      ],
    });
    const run = await (await engineOf(pool)).run(scn, items(80));
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ nodeId: 'f2', code: 'FUNCTION_TIMEOUT' });
    expect((run.tasks.at(-1)!.input as { loop: unknown }).loop).toEqual({ index: 37, count: 80 });
    expect(run.actions).toBe(2 + 38 * 3);
    expect(shape(run)).toEqual(shape(await (await engineOf(plain)).run(scn, items(80))));
  });
});
