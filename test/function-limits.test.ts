/**
 * How many messages a Function may return (core/function-limits.ts), and a wave of any size
 * halting for quota. Before: a Function returning a million messages took 400 MB of the
 * process and then failed the run with "Maximum call stack size exceeded" (the halt put the
 * wave's items back with `unshift(...items)`); `flowmeter run` printed no record.
 */
import { describe, expect, it } from 'vitest';
import { createEmbedded } from '../engine/embedded.js';

const fnNode = (id: string, code: string, next?: string) => ({ id, type: 'function', timeoutMs: 10_000, memoryMb: 128, code, ...(next && { next }) });

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
        {
          id: 'wide',
          trigger: { type: 'manual' },
          start: 'fan',
          nodes: [
            { id: 'fan', type: 'fanOut', branches },
            ...branches.map((id) => fnNode(id, 'const a = []; for (let i = 0; i < 10000; i++) a.push({ payload: i }); return a;', 'keep')),
            { id: 'keep', type: 'filter', when: { path: 'msg.payload', op: 'gte', value: 0 } },
          ],
        } as never,
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
