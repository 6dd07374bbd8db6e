/**
 * A scenario's variables are bounded (core/function-limits.ts): before, one action of a Function
 * could store its whole 10 MB output as variables that never expire (95 values of 100 KB took
 * 10.9 MB of Redis), or make 50,000 `setVar` calls that the worker wrote one round trip at a
 * time (4.8 s of one worker for one action), and every later run of the scenario loaded them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import { useProduction } from './helpers/production.js';

const ENDED = ['succeeded', 'failed', 'halted', 'rejected'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const opened: Platform[] = [];
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()));
});

const platforms: Array<[string, () => Promise<Platform>]> = [
  ['embedded', async () => createEmbedded()],
  [
    'redis',
    async () => {
      const p = await useProduction();
      p.startWorker({ concurrency: 2 });
      return p;
    },
  ],
];

/** A manual scenario: `first` (a Function), then `second` (a Function), caught by `caught`. */
const scenario = (id: string, first: string, second = 'return msg;') => ({
  id,
  trigger: { type: 'manual' },
  start: 'first',
  nodes: [
    { id: 'first', type: 'function', code: first, timeoutMs: 10_000, memoryMb: 64, next: 'second' },
    { id: 'second', type: 'function', code: second, timeoutMs: 10_000, memoryMb: 64 },
    { id: 'caught', type: 'catch', next: 'report' },
    {
      id: 'report',
      type: 'function',
      timeoutMs: 1000,
      memoryMb: 64,
      code: 'return { payload: { failed: msg.error.nodeId, code: msg.error.code, message: msg.error.message } };',
    },
  ],
});

describe.each(platforms)('variable bounds on the %s platform', (_name, make) => {
  let p: Platform;
  async function run(doc: ReturnType<typeof scenario>, during?: () => Promise<void>): Promise<RunRecord> {
    await p.scenarios.deploy('acme', doc as never);
    const { runId } = await p.trigger('acme', doc.id, {}, { type: 'manual' });
    if (during) await during();
    for (const end = Date.now() + 30_000; Date.now() < end; await sleep(25)) {
      const r = await p.runs.get('acme', runId);
      if (r && ENDED.includes(r.status)) return r;
    }
    throw new Error(`run ${runId} did not end`);
  }

  it('50,000 setVar calls in one action: the node fails FUNCTION_ERROR (caught), nothing is stored', async () => {
    p = await make();
    opened.push(p);
    await p.ledger.setQuota('acme', { monthlyActions: 1000 });
    const r = await run(scenario('many', "for (let i = 0; i < 50000; i++) setVar('k' + i, i); return msg;"));
    expect(r.status).toBe('succeeded');
    expect(r.outputs).toEqual([
      {
        payload: {
          failed: 'first',
          code: 'FUNCTION_ERROR',
          message: 'setVar: the scenario would have 50000 variables, more than the 1000 allowed; nothing was set',
        },
      },
    ]);
    expect(await p.vars.load('acme', 'many', {})).toEqual({});
  });

  it("10 values of 200 KB: over 1 MB as JSON, refused; a counter's setVar still works", async () => {
    const r = await run(scenario('big', "for (let i = 0; i < 10; i++) setVar('v' + i, 'x'.repeat(200000)); return msg;"));
    expect(r.outputs[0]!.payload).toMatchObject({ failed: 'first', code: 'FUNCTION_ERROR' });
    expect((r.outputs[0]!.payload as { message: string }).message).toMatch(
      /^setVar: the scenario's variables would take \d+ bytes as JSON, more than the 1048576 allowed/,
    );
    expect(await p.vars.load('acme', 'big', {})).toEqual({});
    const ok = await run(scenario('count', "setVar('n', (vars.n || 0) + 1); return { payload: vars.n };"));
    expect(ok.outputs).toEqual([{ payload: 1 }]);
    expect(await p.vars.load('acme', 'count', {})).toEqual({ n: 1 });
  });

  it('variables another run set meanwhile are counted when storing: the node fails, the run sees the stored ones', async () => {
    // `first` computes while 900 KB is stored under another name; `second` then sets 600 KB,
    // which its own view (loaded at the run's start) allows, and the store refuses.
    const r = await run(
      scenario('race', 'const t = Date.now(); while (Date.now() - t < 1500) {} return msg;', "setVar('mine', 'y'.repeat(600000)); return msg;"),
      async () => {
        await sleep(300);
        await p.vars.setMany('acme', 'race', [['theirs', 'z'.repeat(900_000)]]);
      },
    );
    expect(r.outputs[0]!.payload).toMatchObject({ failed: 'second', code: 'FUNCTION_ERROR' });
    expect((r.outputs[0]!.payload as { message: string }).message).toMatch(
      /^setVar: the scenario's variables would take \d+ bytes, more than the 1048576 allowed; nothing was set$/,
    );
    expect(Object.keys(await p.vars.load('acme', 'race', {}))).toEqual(['theirs']);
  });
});

describe('variable names', () => {
  it('a variable named __proto__ is a variable: later Functions, loop iterations and the store see it, no prototype changes', async () => {
    const p = createEmbedded();
    opened.push(p);
    await p.ledger.setQuota('default', { monthlyActions: 1000 });
    const r = await p.run(
      {
        id: 'names',
        trigger: { type: 'manual' },
        start: 'set',
        nodes: [
          { id: 'set', type: 'function', timeoutMs: 1000, memoryMb: 64, code: "setVar('__proto__', { x: 1 }); return msg;", next: 'each' },
          { id: 'each', type: 'loop', over: 'msg.payload', body: 'see' },
          {
            id: 'see',
            type: 'function',
            timeoutMs: 1000,
            memoryMb: 64,
            code: "const own = Object.prototype.hasOwnProperty.call(vars, '__proto__'); setVar('__proto__', { x: msg.payload }); return { payload: [own, Object.getPrototypeOf(vars) === Object.prototype] };",
          },
        ],
      } as never,
      [1, 2, 3],
    );
    expect(r.status).toBe('succeeded');
    expect(r.tasks.filter((t) => t.nodeId === 'see').map((t) => (t.output as { payload: unknown }).payload)).toEqual([
      [true, true],
      [true, true],
      [true, true],
    ]);
    expect(Object.entries(await p.vars.load('default', 'names', {}))).toEqual([['__proto__', { x: 3 }]]);
  });
});
