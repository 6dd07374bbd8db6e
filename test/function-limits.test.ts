/**
 * How many messages a Function may return (core/function-limits.ts), and a wave of any size
 * halting for quota. Before: a Function returning a million messages took 400 MB of the
 * process and then failed the run with "Maximum call stack size exceeded" (the halt put the
 * wave's items back with `unshift(...items)`); `flowmeter run` printed no record.
 */
import { describe, expect, it } from 'vitest';
import { createEmbedded } from '../engine/embedded.js';

const fnNode = (id: string, code: string, next?: string) => ({ id, type: 'function', timeoutMs: 10_000, memoryMb: 128, code, ...(next && { next }) });

/** A manual scenario `id`: a Fan Out to the Functions `branches`, each running `code(branch)` then `next`, and `more` nodes. */
const fanOut = (id: string, branches: string[], code: (branch: string) => string, next?: string, more: object[] = []) =>
  ({
    id,
    trigger: { type: 'manual' },
    start: 'fan',
    nodes: [{ id: 'fan', type: 'fanOut', branches }, ...branches.map((b) => fnNode(b, code(b), next)), ...more],
  }) as never;

describe('messages a Function returns', () => {
  it('10,000 are emitted; 10,001 fail the node with FUNCTION_ERROR naming the bound', async () => {
    const engine = createEmbedded();
    try {
      const doc = (n: number) => ({
        id: 'split',
        trigger: { type: 'manual' },
        start: 'f',
        nodes: [fnNode('f', `const a = []; for (let i = 0; i < ${n}; i++) a.push({ payload: i }); return a;`)],
      });
      const ok = await engine.run(doc(10_000) as never, null);
      expect([ok.status, ok.outputs.length, ok.outputs.at(-1)]).toEqual(['succeeded', 10_000, { payload: 9999 }]);
      const over = await engine.run(doc(10_001) as never, null);
      expect(over.status).toBe('failed');
      expect(over.error).toEqual({
        nodeId: 'f',
        code: 'FUNCTION_ERROR',
        message: 'returned 10001 messages, more than the 10000 a Function may return; return one message holding them, and a Loop over them',
      });
    } finally {
      await engine.close();
    }
  });

  it('a wave of 200,000 items that halts for quota halts: nothing overflows, the rest stays pending', async () => {
    const engine = createEmbedded();
    try {
      await engine.ledger.setQuota('default', { monthlyActions: 2000 });
      const branches = Array.from({ length: 20 }, (_, i) => `f${i}`);
      const run = await engine.run(
        fanOut('wide', branches, () => 'const a = []; for (let i = 0; i < 10000; i++) a.push({ payload: i }); return a;', 'keep', [
          { id: 'keep', type: 'filter', when: { path: 'msg.payload', op: 'gte', value: 0 } },
        ]),
        null,
      );
      expect(run.status).toBe('halted');
      expect(run.actions).toBe(2000);
      expect(run.error?.code).toBe('QUOTA_EXHAUSTED');
      const stored = await engine.runs.load('default', run.runId);
      expect(stored?.run.pending?.items.length).toBe(1 + 1 + 20 + 200_000 - 2000);
    } finally {
      await engine.close();
    }
  });
});

describe('what a run keeps (engine/kept.ts)', () => {
  const big = (mb: number) => `return { payload: 'x'.repeat(${mb * 1024 * 1024}) };`;

  it('outputs past 64 MB of JSON: the node that would pass it fails OUTPUT_TOO_LARGE, caught here, and nothing of it is kept', async () => {
    const engine = createEmbedded();
    try {
      const branches = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
      const run = await engine.run(
        fanOut('wide-out', branches, (b) => `setVar('${b}', 1); ${big(9)}`, undefined, [
          { id: 'caught', type: 'catch', next: 'report' },
          fnNode('report', 'return { payload: { code: msg.error.code, node: msg.error.nodeId } };'),
        ]),
        null,
      );
      expect(run.status).toBe('succeeded');
      const big9 = run.outputs.filter((o) => typeof o.payload === 'string');
      const reports = run.outputs.filter((o) => typeof o.payload !== 'string');
      expect(big9).toHaveLength(7); // 7 × 9 MB of JSON fit in 64 MB; an 8th does not
      expect(reports).toHaveLength(3);
      expect(reports.every((o) => (o.payload as { code: string }).code === 'OUTPUT_TOO_LARGE')).toBe(true);
      const failed = run.tasks.find((t) => t.error?.code === 'OUTPUT_TOO_LARGE')!;
      expect(failed.error!.message).toMatch(
        /^the run would output 9,437,\d{3} more characters of JSON, taking what the run keeps to [\d,]+, more than the 67,108,864 allowed$/,
      );
      // A node past the bound keeps nothing, not even the variable it set.
      expect(Object.keys(await engine.vars.load('default', 'wide-out', {})).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    } finally {
      await engine.close();
    }
  });

  it('a loop collecting 5 MB per iteration stops at the bound instead of growing without end', async () => {
    const engine = createEmbedded();
    try {
      const run = await engine.run(
        {
          id: 'collect',
          trigger: { type: 'manual' },
          start: 'each',
          nodes: [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'grow', collect: true }, fnNode('grow', big(5))],
        } as never,
        Array.from({ length: 40 }, (_, i) => i),
      );
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ nodeId: 'grow', code: 'OUTPUT_TOO_LARGE' });
      expect(run.error!.message).toMatch(/^its loop would collect 5,242,882 more characters of JSON/);
      expect(run.tasks.filter((t) => t.nodeId === 'grow' && t.status === 'ok')).toHaveLength(12);
    } finally {
      await engine.close();
    }
  });
});

describe('what a wave holds (engine/kept.ts)', () => {
  it('a Fan Out to 30 Functions returning 9 MB each: results past 256 MB fail OUTPUT_TOO_LARGE as they arrive', async () => {
    const engine = createEmbedded();
    try {
      const branches = Array.from({ length: 30 }, (_, i) => `f${i}`);
      const run = await engine.run(
        fanOut('wide-wave', branches, () => `return { payload: 'x'.repeat(${9 * 1024 * 1024}) };`, 'drop', [
          { id: 'drop', type: 'filter', when: { path: 'msg.payload', op: 'eq', value: 'none' } },
          { id: 'caught', type: 'catch', next: 'report' },
          fnNode('report', 'return { payload: msg.error.code };'),
        ]),
        null,
      );
      expect(run.status).toBe('succeeded');
      const fns = run.tasks.filter((t) => t.nodeId.startsWith('f') && t.nodeId !== 'fan');
      // 28 results of 9,437,2xx characters fit in 268,435,456; the 29th does not.
      expect(fns.filter((t) => t.status === 'ok')).toHaveLength(28);
      const failed = fns.filter((t) => t.status === 'error');
      expect(failed.map((t) => t.error!.code)).toEqual(['OUTPUT_TOO_LARGE', 'OUTPUT_TOO_LARGE']);
      expect(failed[0]!.error!.message).toMatch(/^its 9,437,\d{3} characters of JSON would take what its wave of nodes holds past the 268,435,456 allowed$/);
      expect(run.outputs).toEqual([{ payload: 'OUTPUT_TOO_LARGE' }, { payload: 'OUTPUT_TOO_LARGE' }]);
    } finally {
      await engine.close();
    }
  });
});
