import { describe, expect, it } from 'vitest';
import { fn, payloads, runOnce } from './helpers/run.js';

describe('function', () => {
  it('returns one message, many messages, or none', async () => {
    const one = await runOnce({ start: 'a', nodes: [fn('a', 'return { payload: msg.payload + 1 };')] }, 41);
    expect(payloads(one)).toEqual([42]);
    const many = await runOnce(
      { start: 'a', nodes: [fn('a', 'return msg.payload.map((x) => ({ payload: x }));', 'b'), fn('b', 'return { payload: msg.payload * 10 };')] },
      [1, 2, 3],
    );
    expect(payloads(many)).toEqual([10, 20, 30]);
    expect(many.actions).toBe(1 + 1 + 3);
    const none = await runOnce({ start: 'a', nodes: [fn('a', 'return null;', 'b'), fn('b', 'return msg;')] }, 1);
    expect(none.outputs).toEqual([]);
    expect(none.actions).toBe(2);
    expect(none.tasks[1]!.status).toBe('dropped');
  });

  it('setVar is visible to later nodes and later runs; log goes to the task', async () => {
    const { createEmbedded } = await import('../engine/embedded.js');
    const engine = createEmbedded();
    const doc = {
      start: 'a',
      variables: { counter: 0 },
      nodes: [fn('a', 'setVar("counter", vars.counter + 1); log("was", vars.counter); return msg;', 'b'), fn('b', 'return { payload: vars.counter };')],
    };
    const first = await runOnce(doc, null, { engine });
    const second = await runOnce(doc, null, { engine });
    expect(payloads(first)).toEqual([1]);
    expect(payloads(second)).toEqual([2]);
    expect(second.tasks[1]!.logs).toEqual(['was 2']);
    await engine.close();
  });

  it('FUNCTION_ERROR, FUNCTION_TIMEOUT and bad return values fail the run', async () => {
    const thrown = await runOnce({ start: 'a', nodes: [fn('a', 'throw new Error("boom");')] });
    expect(thrown.status).toBe('failed');
    expect(thrown.error).toMatchObject({ code: 'FUNCTION_ERROR', nodeId: 'a' });
    expect(thrown.error!.message).toContain('boom');
    const slow = await runOnce({ start: 'a', nodes: [{ ...fn('a', 'while (true) {}'), timeoutMs: 50 }] });
    expect(slow.error!.code).toBe('FUNCTION_TIMEOUT');
    const bad = await runOnce({ start: 'a', nodes: [fn('a', 'return 5;')] });
    expect(bad.error!.code).toBe('FUNCTION_ERROR');
    expect(bad.actions).toBe(2);
  });
});

describe('switch', () => {
  const doc = (mode: 'first' | 'all', withDefault = true) => ({
    start: 's',
    nodes: [
      {
        id: 's',
        type: 'switch',
        mode,
        ...(withDefault && { default: 'd' }),
        cases: [
          { when: { path: 'msg.payload', op: 'gt', value: 10 }, next: 'big' },
          { when: { path: 'msg.payload', op: 'gt', value: 0 }, next: 'pos' },
        ],
      },
      fn('big', 'return { payload: "big" };'),
      fn('pos', 'return { payload: "pos" };'),
      fn('d', 'return { payload: "default" };'),
    ],
  });
  it('first mode takes the first match, then the default', async () => {
    expect(payloads(await runOnce(doc('first'), 50))).toEqual(['big']);
    expect(payloads(await runOnce(doc('first'), 5))).toEqual(['pos']);
    expect(payloads(await runOnce(doc('first'), -1))).toEqual(['default']);
  });
  it('all mode takes every match, each with its own copy', async () => {
    const run = await runOnce(doc('all'), 50);
    expect(payloads(run)).toEqual(['big', 'pos']);
    expect(run.actions).toBe(1 + 1 + 2);
  });
  it('no match and no default ends the path', async () => {
    const run = await runOnce(doc('first', false), -1);
    expect(run.outputs).toEqual([]);
    expect(run.actions).toBe(2);
    expect(run.tasks[1]!.status).toBe('dropped');
  });
});

describe('filter and conditions', () => {
  const filterRun = (when: unknown, payload: unknown, extra: Record<string, unknown> = {}) =>
    runOnce({ start: 'f', ...extra, nodes: [{ id: 'f', type: 'filter', when, next: 'out' }, fn('out', 'return msg;')] }, payload);
  it('drops the message when the condition fails', async () => {
    const run = await filterRun({ path: 'msg.payload.score', op: 'gte', value: 50 }, { score: 10 });
    expect(run.tasks.map((t) => [t.nodeId, t.status, t.actions])).toEqual([
      ['$trigger', 'ok', 1],
      ['f', 'dropped', 1],
    ]);
  });
  it.each([
    [{ path: 'msg.payload.a', op: 'eq', value: { x: [1] } }, { a: { x: [1] } }, true],
    [{ path: 'msg.payload.a', op: 'ne', value: 1 }, { a: 2 }, true],
    [{ path: 'msg.payload.a', op: 'lt', value: 3 }, { a: 2 }, true],
    [{ path: 'msg.payload.a', op: 'lte', value: 2 }, { a: 3 }, false],
    [{ path: 'msg.payload.a', op: 'in', value: [1, 2] }, { a: 2 }, true],
    [{ path: 'msg.payload.a', op: 'notIn', value: [1, 2] }, { a: 2 }, false],
    [{ path: 'msg.payload.a', op: 'contains', value: 'ell' }, { a: 'hello' }, true],
    [{ path: 'msg.payload.a', op: 'contains', value: 3 }, { a: [1, 3] }, true],
    [{ path: 'msg.payload.a', op: 'startsWith', value: 'he' }, { a: 'hello' }, true],
    [{ path: 'msg.payload.a', op: 'endsWith', value: 'x' }, { a: 'hello' }, false],
    [{ path: 'msg.payload.a', op: 'exists' }, { a: 0 }, true],
    [{ path: 'msg.payload.b', op: 'notExists' }, { a: 0 }, true],
    [{ path: 'msg.payload.a', op: 'isEmpty' }, { a: [] }, true],
    [{ path: 'msg.payload.a', op: 'isEmpty' }, { a: 'x' }, false],
    [{ path: 'msg.payload.a', op: 'gt', value: '{{vars.min}}' }, { a: 10 }, true],
    [{ all: [{ path: 'msg.payload.a', op: 'gt', value: 1 }, { not: { path: 'msg.payload.a', op: 'gt', value: 5 } }] }, { a: 3 }, true],
    [
      {
        any: [
          { path: 'msg.payload.a', op: 'eq', value: 1 },
          { path: 'msg.payload.a', op: 'eq', value: 2 },
        ],
      },
      { a: 3 },
      false,
    ],
    [{ path: 'msg.payload.email', op: 'inList', value: 'vip' }, { email: 'ada@example.com' }, true],
    [{ path: 'msg.payload.email', op: 'notInList', value: 'vip' }, { email: 'ada@example.com' }, false],
  ])('%j on %j passes: %s', async (when, payload, pass) => {
    const run = await filterRun(when, payload, { variables: { min: 5 }, lists: { vip: ['ada@example.com'] } });
    expect(run.outputs.length).toBe(pass ? 1 : 0);
  });
});

describe('fan out', () => {
  it("sends a copy to every branch; a branch cannot change another branch's message", async () => {
    const run = await runOnce(
      {
        start: 'fan',
        nodes: [{ id: 'fan', type: 'fanOut', branches: ['a', 'b'] }, fn('a', 'msg.payload.x = 99; return msg;'), fn('b', 'return msg;')],
      },
      { x: 1 },
    );
    expect(payloads(run)).toEqual([{ x: 99 }, { x: 1 }]);
    expect(run.actions).toBe(1 + 1 + 2);
  });
});

describe('loop', () => {
  const loop = (extra: Record<string, unknown>, next = true) => ({
    start: 'each',
    nodes: [
      { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'double', ...(next && { next: 'after' }), ...extra },
      fn('double', 'return { payload: msg.payload * 2, at: msg.loop };'),
      fn('after', 'return { payload: msg.payload };'),
    ],
  });
  it('runs the body per item, in order, and counts each iteration', async () => {
    const run = await runOnce(loop({}), { items: [1, 2, 3] });
    expect(run.actions).toBe(1 + 1 + 3 * (1 + 1) + 1);
    expect(run.tasks.filter((t) => t.nodeId === 'each').map((t) => t.iteration)).toEqual([undefined, 0, 1, 2]);
    expect(payloads(run)).toEqual([{ items: [1, 2, 3] }]);
    const outputs = run.tasks.filter((t) => t.nodeId === 'double').map((t) => t.output);
    expect(outputs).toEqual([0, 1, 2].map((i) => ({ payload: (i + 1) * 2, at: { index: i, count: 3 } })));
  });
  it('collect gathers the payloads that ended the body paths, in item order', async () => {
    const run = await runOnce(loop({ collect: true }), { items: [1, 2, 3] });
    expect(payloads(run)).toEqual([[2, 4, 6]]);
  });
  it('messages ending the body belong to the loop, not to the run', async () => {
    const run = await runOnce(loop({}, false), { items: [1, 2] });
    expect(run.outputs).toEqual([]);
  });
  it('an empty array runs no iteration and goes on', async () => {
    const run = await runOnce(loop({ collect: true }), { items: [] });
    expect(payloads(run)).toEqual([[]]);
    expect(run.actions).toBe(3);
  });
  it('LOOP_TOO_LARGE before any iteration', async () => {
    const run = await runOnce(loop({ maxItems: 2 }), { items: [1, 2, 3] });
    expect(run.status).toBe('failed');
    expect(run.error!.code).toBe('LOOP_TOO_LARGE');
    expect(run.actions).toBe(2);
  });
  it('not an array fails with LOOP_NOT_ARRAY', async () => {
    const run = await runOnce(loop({}), { items: 'nope' });
    expect(run.error!.code).toBe('LOOP_NOT_ARRAY');
  });
  it('nested loops run inner iterations to completion per outer item', async () => {
    const run = await runOnce(
      {
        start: 'outer',
        nodes: [
          { id: 'outer', type: 'loop', over: 'msg.payload', body: 'inner', collect: true, next: 'done' },
          { id: 'inner', type: 'loop', over: 'msg.payload', body: 'sq', collect: true, next: 'sum' },
          fn('sq', 'return { payload: msg.payload * msg.payload };'),
          fn('sum', 'return { payload: msg.payload.reduce((a, b) => a + b, 0) };'),
          fn('done', 'return msg;'),
        ],
      },
      [[1, 2], [3]],
    );
    expect(payloads(run)).toEqual([[5, 9]]);
    // trigger + outer(1+2) + inner×2 (1 each) + iterations 2+1 + sq 3 + sum 2 + done 1
    expect(run.actions).toBe(1 + 3 + 2 + 3 + 3 + 2 + 1);
  });
});

describe('sequencer', () => {
  it('runs each step path to completion, in order, then next with the input', async () => {
    const run = await runOnce(
      {
        start: 'seq',
        variables: { trail: '' },
        nodes: [
          { id: 'seq', type: 'sequencer', steps: ['s1', 's2'], next: 'end' },
          { id: 's1', type: 'fanOut', branches: ['s1a', 's1b'] },
          fn('s1a', 'setVar("trail", vars.trail + "a"); return msg;', 's1c'),
          fn('s1b', 'return null;'),
          fn('s1c', 'setVar("trail", vars.trail + "b"); return null;'),
          fn('s2', 'setVar("trail", vars.trail + "2"); return null;'),
          fn('end', 'return { payload: [msg.payload, vars.trail] };'),
        ],
      },
      'in',
    );
    expect(payloads(run)).toEqual([['in', 'ab2']]);
    const order = run.tasks.map((t) => t.nodeId);
    expect(order.indexOf('s2')).toBeGreaterThan(order.indexOf('s1c'));
    expect(run.actions).toBe(1 + 1 + 1 + 2 + 1 + 1 + 1);
  });
  it('an uncaught failure stops the sequence and fails the run', async () => {
    const run = await runOnce({
      start: 'seq',
      nodes: [{ id: 'seq', type: 'sequencer', steps: ['bad', 'never'] }, { id: 'bad', type: 'exception', message: 'no' }, fn('never', 'return msg;')],
    });
    expect(run.status).toBe('failed');
    expect(run.tasks.some((t) => t.nodeId === 'never')).toBe(false);
  });
});

describe('catch', () => {
  const doc = (nodes: unknown[]) => ({ start: 'a', nodes });
  it('a scoped catch wins over a catch-all and gets the input plus error', async () => {
    const run = await runOnce(
      doc([
        { id: 'a', type: 'exception', message: 'bad {{msg.payload}}', code: 'E_BAD' },
        { id: 'all', type: 'catch', next: 'generic' },
        { id: 'scoped', type: 'catch', scope: ['a'], next: 'specific' },
        fn('generic', 'return { payload: "generic" };'),
        fn('specific', 'return { payload: msg.error };'),
      ]),
      7,
    );
    expect(payloads(run)).toEqual([{ nodeId: 'a', code: 'E_BAD', message: 'bad 7' }]);
    expect(run.status).toBe('succeeded');
  });
  it('a failure inside a catch path is not caught by that catch', async () => {
    const run = await runOnce(
      doc([
        { id: 'a', type: 'exception', message: 'first' },
        { id: 'all', type: 'catch', next: 'again' },
        { id: 'again', type: 'exception', message: 'second', code: 'E_SECOND' },
      ]),
    );
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'E_SECOND', nodeId: 'again' });
    expect(run.actions).toBe(4);
  });
  it('a second catch handles a failure in the first catch path', async () => {
    const run = await runOnce(
      doc([
        { id: 'a', type: 'exception', message: 'first' },
        { id: 'c1', type: 'catch', scope: ['a'], next: 'again' },
        { id: 'again', type: 'exception', message: 'second' },
        { id: 'c2', type: 'catch', next: 'ok' },
        fn('ok', 'return { payload: msg.error.message };'),
      ]),
    );
    expect(payloads(run)).toEqual(['second']);
  });
  it('a catch inside a loop body keeps the path in the loop', async () => {
    const run = await runOnce(
      {
        start: 'each',
        nodes: [
          { id: 'each', type: 'loop', over: 'msg.payload', body: 'check', collect: true, next: 'out' },
          fn('check', 'if (msg.payload < 0) throw new Error("negative"); return msg;'),
          { id: 'c', type: 'catch', scope: ['check'], next: 'fix' },
          fn('fix', 'return { payload: 0 };'),
          fn('out', 'return msg;'),
        ],
      },
      [1, -2, 3],
    );
    expect(payloads(run)).toEqual([[1, 0, 3]]);
  });
  it('other paths in flight finish their current node, then the run stops', async () => {
    const run = await runOnce({
      start: 'fan',
      nodes: [
        { id: 'fan', type: 'fanOut', branches: ['bad', 'good'] },
        { id: 'bad', type: 'exception', message: 'x' },
        fn('good', 'return msg;', 'later'),
        fn('later', 'return msg;'),
      ],
    });
    expect(run.status).toBe('failed');
    expect(run.tasks.map((t) => t.nodeId)).toEqual(['$trigger', 'fan', 'bad', 'good']);
  });
});

describe('conversion', () => {
  const doc = (extra: Record<string, unknown>) => ({
    start: 'c',
    tables: { country: { NO: 'Norway', SE: 'Sweden' } },
    nodes: [{ id: 'c', type: 'conversion', table: 'country', path: 'msg.payload.cc', ...extra }],
  });
  it('maps through the table into target (default: path)', async () => {
    expect(payloads(await runOnce(doc({}), { cc: 'NO' }))).toEqual([{ cc: 'Norway' }]);
    expect(payloads(await runOnce(doc({ target: 'msg.payload.name' }), { cc: 'SE' }))).toEqual([{ cc: 'SE', name: 'Sweden' }]);
  });
  it('onMissing keep, default and error', async () => {
    expect(payloads(await runOnce(doc({}), { cc: 'DK' }))).toEqual([{ cc: 'DK' }]);
    expect(payloads(await runOnce(doc({ onMissing: 'default', defaultValue: '?' }), { cc: 'DK' }))).toEqual([{ cc: '?' }]);
    const run = await runOnce(doc({ onMissing: 'error' }), { cc: 'DK' });
    expect(run.error!.code).toBe('CONVERSION_MISSING');
  });
});

describe('exception, comment and counting', () => {
  it('an exception fails the run with its code; a comment never runs nor counts', async () => {
    const run = await runOnce(
      {
        start: 'a',
        nodes: [fn('a', 'return msg;', 'b'), { id: 'b', type: 'exception', message: 'stop at {{msg.payload}}' }, { id: 'note', type: 'comment', text: 'hi' }],
      },
      3,
    );
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'EXCEPTION', message: 'stop at 3', nodeId: 'b' });
    expect(run.tasks.some((t) => t.nodeId === 'note')).toBe(false);
    expect(run.actions).toBe(3);
  });
  it('templates: a whole template keeps the raw value, a missing one is null or empty', async () => {
    const run = await runOnce(
      {
        start: 'a',
        nodes: [{ id: 'a', type: 'exception', message: '[{{msg.payload.n}}][{{msg.payload.missing}}][{{msg.payload.o}}]' }],
      },
      { n: 1, o: { k: true } },
    );
    expect(run.error!.message).toBe('[1][][{"k":true}]');
  });
});

describe('paths', () => {
  it('writing a named field into an array fails the node with PATH_NOT_WRITABLE (catchable)', async () => {
    const run = await runOnce(
      {
        start: 'c',
        tables: { t: { a: 'A' } },
        nodes: [{ id: 'c', type: 'conversion', table: 't', path: 'msg.payload.0', target: 'msg.payload.label' }],
      },
      ['a'],
    );
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'PATH_NOT_WRITABLE', nodeId: 'c' });
    const ok = await runOnce(
      {
        start: 'c',
        tables: { t: { a: 'A' } },
        nodes: [{ id: 'c', type: 'conversion', table: 't', path: 'msg.payload.0', target: 'msg.payload.1' }],
      },
      ['a'],
    );
    expect(payloads(ok)).toEqual([['a', 'A']]);
  });
});
