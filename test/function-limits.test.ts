/**
 * How many messages a Function may return (core/function-limits.ts), and a wave of any size
 * halting for quota. Before: a Function returning a million messages took 400 MB of the
 * process and then failed the run with "Maximum call stack size exceeded" (the halt put the
 * wave's items back with `unshift(...items)`); `flowmeter run` printed no record.
 */
import { describe, expect, it } from 'vitest';
import { createEmbedded } from '../engine/embedded.js';
import { defaultWaveChars, HeldResults, processHeld } from '../engine/kept.js';

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
    // The process's limit on what waves hold raised past this wave's 90 MB (this test is about what the run keeps).
    const engine = createEmbedded({ env: { FLOWMETER_WAVE_BYTES: String(1024 * 1024 * 1024) } });
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
    // The process's limit raised past the wave's own bound, which this test is about.
    const engine = createEmbedded({ env: { FLOWMETER_WAVE_BYTES: String(1024 * 1024 * 1024) } });
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

  it('a narrow wave (a Fan Out to 4 Functions of 1 MB) is held to the process limit, FLOWMETER_WAVE_BYTES: past it, results fail OUTPUT_TOO_LARGE', async () => {
    // Before, a wave of at most 16 nodes was never measured: four runs of a Fan Out to 16
    // Functions returning 10 MB of small objects took a worker to 4.4 GB, where it stalled for
    // minutes (other tenants' runs waited, its job locks lapsed).
    const engine = createEmbedded({ env: { FLOWMETER_WAVE_BYTES: String(Math.floor(2.5 * 1024 * 1024)) } });
    try {
      const branches = ['f0', 'f1', 'f2', 'f3'];
      const run = await engine.run(
        fanOut('narrow', branches, () => `return { payload: 'x'.repeat(${1024 * 1024}) };`),
        null,
      );
      expect(run.status).toBe('failed');
      const fns = run.tasks.filter((t) => branches.includes(t.nodeId));
      expect(fns.map((t) => t.status)).toEqual(['ok', 'ok', 'error', 'error']);
      expect(fns[2]!.error!.code).toBe('OUTPUT_TOO_LARGE');
      expect(fns[2]!.error!.message).toMatch(
        /^its 1,048,\d{3} characters of JSON would take what its wave holds to 3,145,\d{3}, more than its share \(2,621,440\) of the 2,621,440 the runs of this process may hold at once$/,
      );
      expect(processHeld.held).toEqual({ chars: 0, waves: 0 }); // let go when the wave was applied
      expect(processHeld.limit).toBe(2_621_440);
    } finally {
      await engine.close();
    }
    const plain = createEmbedded({ env: {} });
    await plain.close();
    expect(processHeld.limit).toBe(defaultWaveChars());
    expect(() => createEmbedded({ env: { FLOWMETER_WAVE_BYTES: 'lots' } })).toThrow('FLOWMETER_WAVE_BYTES must be a whole number of bytes, got "lots"');
  });

  it("past the limit each wave keeps to its share: a small run's results are taken while a large one's are refused", () => {
    const held = new HeldResults(100);
    expect(held.take(0, 60)).toBeNull(); // A alone: up to the whole limit
    expect(held.take(60, 40)).toBeNull();
    expect(held.take(0, 10)).toBeNull(); // B: over the limit, but within its share (100 / 2)
    expect(held.take(100, 10)?.code).toBe('OUTPUT_TOO_LARGE'); // A: over its share
    expect(held.take(10, 45)?.message).toMatch(/would take what its wave holds to 55, more than its share \(50\) of the 100/);
    expect(held.take(10, 40)).toBeNull(); // B: exactly its share
    expect(held.held).toEqual({ chars: 150, waves: 2 });
    held.release(100); // A's wave applied
    expect(held.held).toEqual({ chars: 50, waves: 1 });
    expect(held.take(0, 50)).toBeNull(); // C: the limit is reached, not passed
    expect(held.take(0, 1)).toBeNull(); // D: past the limit, within its share (100 / 3)
    expect(held.take(50, 1)?.code).toBe('OUTPUT_TOO_LARGE'); // C: past its share
    expect(held.held).toEqual({ chars: 101, waves: 3 });
  });
});
