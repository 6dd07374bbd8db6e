import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionOutcome, FunctionRequest, FunctionSandbox } from '../nodes/define.js';
import { createSandbox } from '../services/sandbox.js';
import { createSandboxPool, type SandboxPool } from '../services/sandbox-pool.js';

type Req = FunctionRequest;

const base = { tenant: 't1', msg: { payload: 1 }, vars: {}, timeoutMs: 1000, memoryMb: 64 };

function run(sb: FunctionSandbox, code: string, extra: Partial<Req> = {}): Promise<FunctionOutcome> {
  return sb.run({ ...base, code, ...extra });
}

/** Runs and returns the FlowError's { code, message } (fails the test if nothing is thrown). */
async function fails(sb: FunctionSandbox, code: string, extra: Partial<Req> = {}): Promise<{ code: string; message: string }> {
  try {
    await run(sb, code, extra);
  } catch (e) {
    // Errors cross a process boundary: classified by code and name, never instanceof.
    const err = e as { code: string; message: string; name: string };
    expect(err.name).toBe('FlowError');
    return { code: err.code, message: err.message };
  }
  throw new Error(`expected ${JSON.stringify(code)} to fail`);
}

describe('sandbox', () => {
  // Hostile code goes through the pool, as the engine runs it: a host process, JSON over IPC.
  let sb: SandboxPool;
  beforeAll(() => {
    sb = createSandboxPool({ size: 1 });
  });
  afterAll(() => sb.dispose());

  it('returns objects, arrays, null and undefined; JSON round trip', async () => {
    expect((await run(sb, 'return { payload: msg.payload + 1 }')).result).toEqual({ payload: 2 });
    expect((await run(sb, 'return [{ a: 1 }, { b: [1, 2] }]')).result).toEqual([{ a: 1 }, { b: [1, 2] }]);
    expect((await run(sb, 'return null')).result).toBeNull();
    expect((await run(sb, 'msg.payload++')).result).toBeUndefined();
    expect((await run(sb, 'return { d: new Date(0), u: undefined }')).result).toEqual({ d: '1970-01-01T00:00:00.000Z' });
  });

  it('passes msg and vars in as fresh copies', async () => {
    const msg = { payload: { n: 41 }, extra: 'x' };
    const vars = { greeting: 'hi', list: [1, 2] };
    const out = await run(sb, 'msg.payload.n++; vars.list.push(3); return { n: msg.payload.n, e: msg.extra, g: vars.greeting, l: vars.list }', { msg, vars });
    expect(out.result).toEqual({ n: 42, e: 'x', g: 'hi', l: [1, 2, 3] });
    expect(msg.payload.n).toBe(41);
    expect(vars.list).toEqual([1, 2]);
    expect((await run(sb, 'return { l: vars.list }', { vars })).result).toEqual({ l: [1, 2] });
  });

  it('records setVar (visible to later reads in the same call) and log lines', async () => {
    const out = await run(
      sb,
      'setVar("count", vars.count + 1); setVar("obj", { a: 1 }); log("count is", vars.count, { a: [1] }, null, undefined); return { c: vars.count }',
      {
        vars: { count: 1 },
      },
    );
    expect(out.result).toEqual({ c: 2 });
    expect(out.sets).toEqual([
      ['count', 2],
      ['obj', { a: 1 }],
    ]);
    expect(out.logs).toEqual(['count is 2 {"a":[1]} null undefined']);
    expect(await fails(sb, 'setVar("", 1)')).toEqual({ code: 'FUNCTION_ERROR', message: 'at line 1: TypeError: setVar: name must be a non-empty string' });
    expect((await fails(sb, 'setVar(1, 1)')).code).toBe('FUNCTION_ERROR');
  });

  it('caps log lines at 2000 chars and 100 lines per call', async () => {
    const out = await run(sb, 'for (let i = 0; i < 150; i++) log("x".repeat(5000)); return null');
    expect(out.logs).toHaveLength(100);
    expect(out.logs[0]).toHaveLength(2000);
    expect((await run(sb, 'log("again"); return null')).logs).toEqual(['again']);
  });

  it('compiles once per context and reuses the warm isolate', async () => {
    const own = createSandbox({ maxScripts: 2 });
    try {
      const code = 'return { v: msg.payload * 2 }';
      expect((await run(own, code, { msg: { payload: 2 } })).result).toEqual({ v: 4 });
      expect((await run(own, code, { msg: { payload: 5 } })).result).toEqual({ v: 10 });
      expect(own.stats()).toEqual({ isolates: 1, created: 1, discarded: 0 });
      // More distinct codes than maxScripts: evicted ones are recompiled and still correct.
      for (let round = 0; round < 2; round++) {
        for (let k = 0; k < 5; k++) expect((await run(own, `return { k: ${k} }`)).result).toEqual({ k });
      }
      expect(own.stats()).toEqual({ isolates: 1, created: 1, discarded: 0 });
    } finally {
      own.dispose();
    }
  });

  it('reports syntax errors as FUNCTION_ERROR and cannot be escaped by closing the wrapper', async () => {
    const e = await fails(sb, 'return {');
    expect(e.code).toBe('FUNCTION_ERROR');
    expect(e.message).toMatch(/^syntax error: /);
    expect((await fails(sb, 'return {')).message).toBe(e.message);
    // An attempt to close the function and run top-level code / declare a global binding.
    expect((await fails(sb, '}); let leaked = 1; (function () {')).code).toBe('FUNCTION_ERROR');
    expect((await run(sb, 'return { t: typeof leaked }')).result).toEqual({ t: 'undefined' });
  });

  it('reports user throws with the thrown value', async () => {
    expect(await fails(sb, 'const x = 1; x()')).toEqual({ code: 'FUNCTION_ERROR', message: 'at line 1: TypeError: x is not a function' });
    expect((await fails(sb, 'const a = 1;\nreturn msg.nope.deeper;')).message).toBe(
      "at line 2: TypeError: Cannot read properties of undefined (reading 'deeper')",
    );
    expect((await fails(sb, 'function f() {\n  return null.z;\n}\nreturn f();')).message).toMatch(/^at line 2: TypeError: /);
    expect(await fails(sb, 'throw "boom"')).toEqual({ code: 'FUNCTION_ERROR', message: 'boom' });
    expect((await fails(sb, 'throw new RangeError("bad range")')).message).toBe('at line 1: RangeError: bad range');
    expect((await fails(sb, 'const f = () => f() + 1; return f()')).message).toMatch(/^(at line 1: )?RangeError: Maximum call stack size exceeded$/);
    expect((await fails(sb, 'return function () {}')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'return (async () => ({ a: 1 }))()')).message).toMatch(/Promise/);
    expect((await fails(sb, 'const o = {}; o.self = o; return o')).message).toMatch(/circular/i);
  });

  it('runs hostile getters on the result under the same limits', async () => {
    expect(await fails(sb, 'return { get x() { throw new Error("getter") } }')).toEqual({ code: 'FUNCTION_ERROR', message: 'at line 1: Error: getter' });
    expect((await fails(sb, 'return { get x() { for (;;) {} } }', { timeoutMs: 50 })).code).toBe('FUNCTION_TIMEOUT');
    expect((await fails(sb, 'return { toJSON() { for (;;) {} } }', { timeoutMs: 50 })).code).toBe('FUNCTION_TIMEOUT');
    expect((await run(sb, 'return { ok: true }')).result).toEqual({ ok: true });
  });

  it('keeps no state between calls', async () => {
    expect((await fails(sb, 'stash = 1')).message).toMatch(/ReferenceError/);
    expect((await fails(sb, 'globalThis.stash = 1')).message).toMatch(/TypeError/);
    expect((await fails(sb, 'Object.defineProperty(globalThis, "stash", { value: 1 })')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'Object.prototype.polluted = 1')).message).toMatch(/TypeError/);
    expect((await fails(sb, 'Array.prototype.push = function () { return 0 }')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'Math.stash = 1')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'JSON.parse = () => ({})')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'log.constructor.prototype.stash = 1')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'Object.getPrototypeOf(function* () {}).stash = 1')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'Object.getPrototypeOf([][Symbol.iterator]()).stash = 1')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'Object.getPrototypeOf(new Map().entries()).stash = 1')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'Object.getOwnPropertyDescriptor(Object.prototype, "__proto__").get.stash = 1')).code).toBe('FUNCTION_ERROR');
    // Partial work before a throw is not visible either.
    expect((await fails(sb, 'msg.stash = 1; vars.stash = 1; throw new Error("x")')).code).toBe('FUNCTION_ERROR');
    await run(sb, '/(sec)ret/.exec("secret"); return null');
    const seen = (
      await run(
        sb,
        `return {
      g: typeof stash, gt: typeof globalThis.stash, p: ({}).polluted, a: [].push(1), m: Math.stash,
      j: JSON.parse("[1]"), f: (function () {}).stash, i: Object.getPrototypeOf(function* () {}).stash,
      ms: msg.stash, vs: vars.stash, re: RegExp.$1 + RegExp.lastMatch
    }`,
      )
    ).result;
    expect(seen).toEqual({ g: 'undefined', gt: 'undefined', a: 1, j: [1], re: '' });
  });

  it('freezes every intrinsic reachable from globalThis and the hidden iterator/generator intrinsics', async () => {
    const out = (
      await run(
        sb,
        `
      const roots = [function* () {}, async function () {}, async function* () {},
        [][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](), /a/[Symbol.matchAll]('')];
      const todo = [globalThis, ...roots.map((r) => Object.getPrototypeOf(r))], seen = new Set(), open = [];
      while (todo.length) {
        const o = todo.pop();
        if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
        seen.add(o);
        if (!Object.isFrozen(o)) open.push(String(o.name || Object.prototype.toString.call(o)));
        todo.push(Object.getPrototypeOf(o));
        const ds = Object.getOwnPropertyDescriptors(o);
        for (const k of Reflect.ownKeys(ds)) todo.push(ds[k].value, ds[k].get, ds[k].set);
      }
      return { open, count: seen.size };`,
      )
    ).result as { open: string[]; count: number };
    expect(out.open).toEqual([]);
    expect(out.count).toBeGreaterThan(500);
  });

  it('still lets instances shadow frozen inherited properties', async () => {
    const out = await run(sb, 'const e = new Error("m"); e.name = "MyError"; const o = {}; o.toString = () => "custom"; return { e: String(e), o: String(o) }');
    expect(out.result).toEqual({ e: 'MyError: m', o: 'custom' });
    expect((await fails(sb, 'Object.prototype.toString = () => "x"')).code).toBe('FUNCTION_ERROR');
    expect((await run(sb, 'return { s: String({}) }')).result).toEqual({ s: '[object Object]' });
  });

  it('gives no access to process, require, timers, network or wasm', async () => {
    const out = (
      await run(
        sb,
        `return {
      process: typeof process, require: typeof require, setTimeout: typeof setTimeout, setInterval: typeof setInterval,
      queueMicrotask: typeof queueMicrotask, fetch: typeof fetch, WebAssembly: typeof WebAssembly,
      SharedArrayBuffer: typeof SharedArrayBuffer, Atomics: typeof Atomics, console: typeof console,
      module: typeof module, Buffer: typeof Buffer, self: typeof this,
      viaCtor: (function () {}).constructor("return typeof process")(),
      globalKeys: Object.getOwnPropertyNames((function () {}).constructor("return this")()).filter((k) => /process|require|fetch|Wasm|Assembly|Atomics|console/i.test(k)),
    }`,
      )
    ).result;
    expect(out).toEqual({
      process: 'undefined',
      require: 'undefined',
      setTimeout: 'undefined',
      setInterval: 'undefined',
      queueMicrotask: 'undefined',
      fetch: 'undefined',
      WebAssembly: 'undefined',
      SharedArrayBuffer: 'undefined',
      Atomics: 'undefined',
      console: 'undefined',
      module: 'undefined',
      Buffer: 'undefined',
      self: 'undefined',
      viaCtor: 'undefined',
      globalKeys: [],
    });
    expect((await fails(sb, 'return this.constructor.constructor("return process")()')).code).toBe('FUNCTION_ERROR');
    expect((await fails(sb, 'return ({}).constructor.constructor("return process")().mainModule')).message).toMatch(/process is not defined/);
    expect((await fails(sb, 'return import("node:fs")')).code).toBe('FUNCTION_ERROR');
  });

  it('times out an infinite loop; the host stays responsive and the isolate is reused', async () => {
    const own = createSandbox();
    try {
      await run(own, 'return null', { tenant: 'loop' });
      // How soon it is stopped is the bench's (sandbox phase), not a test's.
      expect(await fails(own, 'for (;;) {}', { tenant: 'loop', timeoutMs: 100 })).toEqual({
        code: 'FUNCTION_TIMEOUT',
        message: 'the function ran longer than 100 ms',
      });
      expect((await fails(own, 'Promise.resolve().then(() => { for (;;) {} }); return null', { tenant: 'loop', timeoutMs: 100 })).code).toBe(
        'FUNCTION_TIMEOUT',
      );
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect((await run(own, 'return { after: msg.payload }', { tenant: 'loop' })).result).toEqual({ after: 1 });
      expect(own.stats()).toEqual({ isolates: 1, created: 1, discarded: 0 });
    } finally {
      own.dispose();
    }
  });

  it('reports a memory bomb as FUNCTION_MEMORY and replaces the isolate', async () => {
    const own = createSandbox();
    try {
      expect((await run(own, 'return { warm: true }', { tenant: 'bomb', memoryMb: 16 })).result).toEqual({ warm: true });
      await run(own, 'return null', { tenant: 'other', memoryMb: 16 });
      const e = await fails(own, 'const a = []; while (true) a.push(new Array(1e6).fill(1))', { tenant: 'bomb', memoryMb: 16, timeoutMs: 20_000 });
      expect(e.code).toBe('FUNCTION_MEMORY');
      expect(own.stats()).toEqual({ isolates: 1, created: 2, discarded: 1 });
      expect((await run(own, 'return { again: msg.payload }', { tenant: 'bomb', memoryMb: 16 })).result).toEqual({ again: 1 });
      expect(own.stats()).toEqual({ isolates: 2, created: 3, discarded: 1 });
      // The other tenant's isolate was not touched.
      await run(own, 'return null', { tenant: 'other', memoryMb: 16 });
      expect(own.stats().created).toBe(3);
    } finally {
      own.dispose();
    }
  });

  it('survives a huge string', async () => {
    const own = createSandbox();
    try {
      const e = await fails(own, 'let s = "x"; for (;;) s += s', { memoryMb: 16, timeoutMs: 20_000 });
      expect(['FUNCTION_ERROR', 'FUNCTION_MEMORY']).toContain(e.code);
      expect((await run(own, 'return { ok: 1 }', { memoryMb: 16 })).result).toEqual({ ok: 1 });
    } finally {
      own.dispose();
    }
  });

  it('rejects results over maxResultBytes', async () => {
    const own = createSandbox({ maxResultBytes: 1000 });
    try {
      expect((await fails(own, 'return { big: "x".repeat(2000) }')).message).toMatch(/larger than 1000 bytes/);
      expect((await fails(own, 'return { big: "é".repeat(600) }')).message).toMatch(/larger than 1000 bytes/);
      expect((await run(own, 'return { small: "x".repeat(100) }')).result).toEqual({ small: 'x'.repeat(100) });
    } finally {
      own.dispose();
    }
  });

  it('gives each tenant its own isolate', async () => {
    const own = createSandbox({ maxIsolates: 2 });
    try {
      expect((await run(own, 'setVar("secret", 42); return null', { tenant: 'a', vars: { secret: 1 } })).sets).toEqual([['secret', 42]]);
      await run(own, '/(a-secret)/.exec("a-secret"); return null', { tenant: 'a' });
      expect((await run(own, 'return { s: vars.secret, re: RegExp.$1 }', { tenant: 'b' })).result).toEqual({ re: '' });
      expect(own.stats()).toEqual({ isolates: 2, created: 2, discarded: 0 });
      expect((await fails(own, 'for (;;) {}', { tenant: 'a', timeoutMs: 50 })).code).toBe('FUNCTION_TIMEOUT');
      expect((await run(own, 'return { b: 1 }', { tenant: 'b' })).result).toEqual({ b: 1 });
      // Same tenant, another memoryMb: another isolate; the least recently used one is evicted.
      await run(own, 'return null', { tenant: 'b', memoryMb: 32 });
      expect(own.stats()).toEqual({ isolates: 2, created: 3, discarded: 1 });
    } finally {
      own.dispose();
    }
  });

  it('dispose releases every isolate', async () => {
    const own = createSandbox();
    await run(own, 'return null', { tenant: 'x' });
    await run(own, 'return null', { tenant: 'y' });
    expect(own.stats().isolates).toBe(2);
    own.dispose();
    expect(own.stats().isolates).toBe(0);
    await expect(run(own, 'return null')).rejects.toThrow(/disposed/);
  });

  describe('batches: many executions in one call into the isolate', () => {
    const step = (code: string, timeoutMs = 1000) => ({ code, timeoutMs, memoryMb: 64 });
    const msgs = (n: number) => Array.from({ length: n }, (_, i) => ({ payload: i }));
    const chain = (steps: ReturnType<typeof step>[], n: number, vars: Record<string, unknown> = {}) => {
      const [msg, ...more] = msgs(n);
      return sb.runChain({ tenant: 'batch', msg: msg!, more, vars, steps });
    };

    it('gives every execution fresh msg and vars, carries setVar, keeps each log, stops at the first error with its line', async () => {
      const out = await chain(
        [
          step('msg.leak = 1; vars.leak = 1; setVar("n", vars.n + 1); log("a", msg.payload, vars.n); return { payload: msg.payload * 10 }'),
          step('log("b", vars.n, typeof vars.leak); return { payload: msg.payload + 1, leak: typeof msg.leak }'),
        ],
        4,
        { n: 0 },
      );
      expect(out).toHaveLength(8);
      expect(out.map((s) => s.ok && s.outcome.logs)).toEqual([
        ['a 0 1'],
        ['b 1 undefined'],
        ['a 1 2'],
        ['b 2 undefined'],
        ['a 2 3'],
        ['b 3 undefined'],
        ['a 3 4'],
        ['b 4 undefined'],
      ]);
      expect(out.filter((_, i) => i % 2 === 1).map((s) => s.ok && s.outcome.result)).toEqual([1, 11, 21, 31].map((p) => ({ payload: p, leak: 'undefined' })));
      expect(out[6]).toMatchObject({ ok: true, outcome: { sets: [['n', 4]] } });

      const failed = await chain([step('return msg'), step('if (msg.payload === 2) {\n  throw new Error("bad " + msg.payload);\n}\nreturn msg')], 5);
      expect(failed).toHaveLength(6);
      expect(failed.slice(0, 5).every((s) => s.ok)).toBe(true);
      expect(failed[5]).toMatchObject({ ok: false, code: 'FUNCTION_ERROR', message: 'at line 2: Error: bad 2' });
    });

    it('an execution over its timeoutMs fails with FUNCTION_TIMEOUT; the ones before it keep their results; the isolate is reused', async () => {
      const slow = 'if (msg.payload === 3) for (;;) {} return msg';
      const out = await chain([step('return { payload: msg.payload }', 100), step(slow, 100)], 6);
      expect(out).toHaveLength(8);
      expect(out.slice(0, 7).every((s) => s.ok)).toBe(true);
      expect(out[7]).toMatchObject({ ok: false, code: 'FUNCTION_TIMEOUT', message: 'the function ran longer than 100 ms' });
      // Busy for longer than its timeoutMs, then returns: still over time.
      const busy = 'if (msg.payload === 1) { const t = Date.now(); while (Date.now() - t < 300) {} } return msg';
      const late = await chain([step(busy, 100)], 3);
      expect(late.map((s) => s.ok || s.code)).toEqual([true, 'FUNCTION_TIMEOUT']);
      expect((await chain([step('return msg', 100)], 3)).map((s) => s.ok)).toEqual([true, true, true]);
    });

    it('checks each output against maxResultBytes in UTF-8 bytes; steps with different limits still run in order', async () => {
      const own = createSandboxPool({ size: 1, sandbox: { maxResultBytes: 1000 } });
      try {
        const [msg, ...more] = msgs(3);
        const big = 'return msg.payload === 1 ? { big: "€".repeat(400) } : msg';
        const out = await own.runChain({ tenant: 'batch', msg: msg!, more, vars: {}, steps: [step('return msg'), step(big)] });
        expect(out.map((s) => s.ok || s.message)).toEqual([true, true, true, 'output is larger than 1000 bytes']);
        const mixed = await own.runChain({
          tenant: 'batch',
          msg: msg!,
          more,
          vars: { k: 1 },
          steps: [step('setVar("k", vars.k * 2); return msg', 500), step('return { payload: msg.payload, k: vars.k }')],
        });
        expect(mixed.filter((_, i) => i % 2 === 1).map((s) => s.ok && s.outcome.result)).toEqual([0, 1, 2].map((p, i) => ({ payload: p, k: 2 ** (i + 1) })));
      } finally {
        await own.dispose();
      }
    });
  });
});
