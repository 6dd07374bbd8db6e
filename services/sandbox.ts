/**
 * The Function node sandbox: isolated-vm isolates kept warm per (tenant, memoryMb).
 *
 * Security model:
 * - one Isolate + one Context per (tenant, memoryMb); tenants never share an isolate;
 * - in each new context, before any user code runs, dangerous or non-deterministic globals are
 *   deleted and every intrinsic reachable from `globalThis` (values, accessors, prototypes, and
 *   the hidden iterator/generator intrinsics) is deep-frozen, then `globalThis` itself;
 * - user code is compiled with the context's `Function` constructor (the body is parsed on its own,
 *   so it cannot close the wrapper and run top-level code or declare global `let`s) in strict mode;
 * - a private driver (a Reference, not a global) runs each call with fresh `msg`/`vars` (JSON in),
 *   fresh `setVar`/`log` closures, resets RegExp legacy statics, and returns JSON out; everything
 *   runs under `timeout`, microtasks included.
 * Errors are classified by isolated-vm's messages, never by `instanceof`.
 */
import ivm from 'isolated-vm';
import { errorMessage, FlowError } from '../core/errors.js';
import type { FunctionOutcome, FunctionRequest, FunctionSandbox } from '../nodes/define.js';

/** Options of {@link createSandbox}. */
export interface SandboxOptions {
  /** Max warm isolates kept (LRU over (tenant, memoryMb)); the least recently used is disposed. Default 32. */
  maxIsolates?: number;
  /** Max compiled functions cached per context (LRU by code string). Default 500. */
  maxScripts?: number;
  /** Max size of a call's output (result, logs and setVar values, as JSON), in bytes. Default 10 MB. */
  maxResultBytes?: number;
}

/** Counters of {@link createSandbox}: `discarded` counts isolates dropped (memory limit or LRU) before `dispose()`. */
export interface SandboxStats {
  isolates: number;
  created: number;
  discarded: number;
}

const MAX_LOG_LINES = 100;
const MAX_LOG_CHARS = 2000;
const MAX_ERROR_CHARS = 2000;
const BOOT_TIMEOUT_MS = 10_000;

/** Evaluated once per context; returns [run, compile, drop] without touching the global object. */
const bootstrap = (maxChars: number): string => `(function () {
  'use strict';
  const G = globalThis, O = Object, R = Reflect;
  for (const k of ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef', 'console']) delete G[k];
  // Override mistake: so that e.g. err.name = 'X' or obj.toString = f still work on instances,
  // turn these inherited data properties into accessors whose setter defines an own property.
  const tame = (proto) => {
    for (const k of R.ownKeys(proto)) {
      const d = O.getOwnPropertyDescriptor(proto, k);
      if (!('value' in d) || typeof k !== 'string') continue;
      const v = d.value;
      O.defineProperty(proto, k, { enumerable: d.enumerable, configurable: false, get() { return v; },
        set(nv) {
          if (this === proto) throw new TypeError('Cannot assign to read only property ' + k);
          O.defineProperty(this, k, { value: nv, writable: true, enumerable: true, configurable: true });
        } });
    }
  };
  for (const C of [Object, Function, Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) tame(C.prototype);
  const seen = new Set();
  const todo = [G, function* () {}, async function () {}, async function* () {}, (function* () {})(),
    (async function* () {})(), [][Symbol.iterator](), new Map()[Symbol.iterator](),
    new Set()[Symbol.iterator](), ''[Symbol.iterator](), /a/[Symbol.matchAll]('')];
  while (todo.length > 0) {
    const o = todo.pop();
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
    seen.add(o);
    todo.push(O.getPrototypeOf(o));
    const ds = O.getOwnPropertyDescriptors(o);
    for (const k of R.ownKeys(ds)) todo.push(ds[k].value, ds[k].get, ds[k].set);
    O.freeze(o);
  }
  if (!O.isFrozen(G)) throw new Error('global not frozen');
  const parse = JSON.parse, stringify = JSON.stringify, Fn = Function, Prom = Promise, defProp = O.defineProperty;
  const ErrorC = Error, errToString = Error.prototype.toString, call = Fn.prototype.call.bind(Fn.prototype.call);
  const RE = /(?:)/, fns = new Map();
  const cap = (s, n) => (s.length > n ? s.slice(0, n) : s);
  // The body's line of the innermost frame of the compiled body, as "at line N: " (the
  // Function constructor puts 3 lines before the body: the signature, ") {", "use strict").
  const FRAME = /eval at compile \\([^)]*\\), <anonymous>:(\\d+):\\d+\\)/;
  const lineOf = (e) => {
    try {
      const stack = e.stack;
      const m = typeof stack === 'string' ? FRAME.exec(stack) : null;
      return m && m[1] - 3 >= 1 ? 'at line ' + (m[1] - 3) + ': ' : '';
    } catch (_) { return ''; }
  };
  const describe = (e) => {
    try {
      if (typeof e === 'string') return cap(e, ${MAX_ERROR_CHARS});
      if (e instanceof ErrorC) return cap(lineOf(e) + String(call(errToString, e)), ${MAX_ERROR_CHARS});
      const s = stringify(e);
      return cap(s === undefined ? String(e) : s, ${MAX_ERROR_CHARS});
    } catch (_) { return 'a value that cannot be described was thrown'; }
  };
  const fmt = (a) => {
    if (typeof a === 'string') return a;
    try { const s = stringify(a); return s === undefined ? String(a) : s; } catch (_) {
      try { return String(a); } catch (_) { return '[unprintable]'; }
    }
  };
  const run = (id, msgJson, varsJson) => {
    RE.exec('');
    const fn = fns.get(id);
    const logs = [], sets = [], vars = parse(varsJson);
    const setVar = (name, value) => {
      if (typeof name !== 'string' || name === '') throw new TypeError('setVar: name must be a non-empty string');
      sets.push([name, value]);
      defProp(vars, name, { value, writable: true, enumerable: true, configurable: true });
    };
    const log = (...args) => {
      if (logs.length >= ${MAX_LOG_LINES}) return;
      let line = '';
      for (let i = 0; i < args.length; i++) line += (i > 0 ? ' ' : '') + fmt(args[i]);
      logs.push(cap(line, ${MAX_LOG_CHARS}));
    };
    try {
      const r = fn(parse(msgJson), vars, setVar, log);
      if (typeof r === 'function') return 'Ereturned a function; return an object, an array of objects, or null';
      if (r instanceof Prom) return 'Ereturned a Promise (async code is not supported); return an object, an array of objects, or null';
      const out = stringify(r === undefined ? [logs, sets] : [logs, sets, r]);
      if (out.length > ${maxChars}) return 'Eoutput is larger than ${maxChars} bytes';
      return out;
    } catch (e) { return 'E' + describe(e); }
  };
  const compile = (id, code) => {
    try { fns.set(id, Fn('msg', 'vars', 'setVar', 'log', '"use strict";\\n' + code + '\\n')); return ''; }
    catch (e) { return describe(e); }
  };
  const drop = (id) => { fns.delete(id); };
  return [run, compile, drop];
})()`;

/** The driver functions inside the context take ids, code and JSON strings, and return strings. */
type Fn = (...args: Array<string | number>) => string;

interface Slot {
  isolate: ivm.Isolate;
  run: ivm.Reference<Fn>;
  compile: ivm.Reference<Fn>;
  drop: ivm.Reference<Fn>;
  /** code → id of the compiled function in the context, in LRU order. */
  scripts: Map<string, number>;
  lastCode: string | undefined;
  nextId: number;
}

/** Longest `timeoutMs` of one call (SPEC §10). */
export const MAX_TIMEOUT_MS = 30_000;

/** The in-process sandbox: `runSync` blocks the calling thread (use it inside a sandbox host). */
export interface InProcessSandbox extends FunctionSandbox {
  runSync(req: FunctionRequest, varsJson?: string): FunctionOutcome;
  dispose(): void;
  stats(): SandboxStats;
}

/**
 * Creates an in-process sandbox that keeps warm isolates; call `dispose()` to release them all.
 * It runs in the caller's process and thread: an allocation isolated-vm cannot bound aborts the
 * process, so the engine uses it only inside sandbox host processes (`sandbox-pool.ts`).
 */
export function createSandbox(opts: SandboxOptions = {}): InProcessSandbox {
  const maxIsolates = Math.max(1, opts.maxIsolates ?? 32);
  const maxScripts = Math.max(1, opts.maxScripts ?? 500);
  const maxBytes = Math.max(1, Math.floor(opts.maxResultBytes ?? 10 * 1024 * 1024));
  const slots = new Map<string, Slot>();
  const timeouts = new Map<number, { timeout: number }>();
  let lastKey: string | undefined;
  let created = 0;
  let discarded = 0;
  let disposed = false;

  function release(key: string, slot: Slot): void {
    slots.delete(key);
    if (lastKey === key) lastKey = undefined;
    discarded++;
    if (!slot.isolate.isDisposed) slot.isolate.dispose();
  }

  function newSlot(memoryMb: number): Slot {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
    created++;
    try {
      const context = isolate.createContextSync();
      const script = isolate.compileScriptSync(bootstrap(maxBytes));
      const fns = script.runSync(context, { reference: true, timeout: BOOT_TIMEOUT_MS }) as ivm.Reference<Fn[]>;
      script.release();
      const get = (i: number): ivm.Reference<Fn> => fns.getSync(i, { reference: true }) as ivm.Reference<Fn>;
      const slot: Slot = { isolate, run: get(0), compile: get(1), drop: get(2), scripts: new Map(), lastCode: undefined, nextId: 1 };
      fns.release();
      return slot;
    } catch (e) {
      discarded++;
      if (!isolate.isDisposed) isolate.dispose();
      throw new FlowError('INTERNAL', `could not start the Function sandbox: ${errorMessage(e)}`);
    }
  }

  function slotFor(tenant: string, memoryMb: number): [string, Slot] {
    const key = `${memoryMb}:${tenant}`;
    let slot = slots.get(key);
    if (slot?.isolate.isDisposed) {
      release(key, slot);
      slot = undefined;
    }
    if (slot === undefined) {
      while (slots.size >= maxIsolates) {
        const [oldKey, old] = slots.entries().next().value as [string, Slot];
        release(oldKey, old);
      }
      slot = newSlot(memoryMb);
      slots.set(key, slot);
    } else if (lastKey !== key) {
      slots.delete(key);
      slots.set(key, slot);
    }
    lastKey = key;
    return [key, slot];
  }

  /** Turns an isolated-vm failure into a FlowError; discards the isolate when it died. */
  function fail(e: unknown, key: string, slot: Slot, timeoutMs: number, memoryMb: number): FlowError {
    const message = errorMessage(e);
    if (slot.isolate.isDisposed || /memory limit/i.test(message)) {
      if (slots.get(key) === slot) release(key, slot);
      return new FlowError('FUNCTION_MEMORY', `the function went over its memory limit of ${memoryMb} MB`);
    }
    if (/timed out/i.test(message)) return new FlowError('FUNCTION_TIMEOUT', `the function ran longer than ${timeoutMs} ms`);
    return new FlowError('FUNCTION_ERROR', message);
  }

  function scriptId(key: string, slot: Slot, code: string, opt: { timeout: number }, memoryMb: number): number {
    let id = slot.scripts.get(code);
    if (id !== undefined) {
      if (slot.lastCode !== code) {
        slot.scripts.delete(code);
        slot.scripts.set(code, id);
        slot.lastCode = code;
      }
      return id;
    }
    try {
      while (slot.scripts.size >= maxScripts) {
        const [oldCode, oldId] = slot.scripts.entries().next().value as [string, number];
        slot.scripts.delete(oldCode);
        slot.drop.applySync(undefined, [oldId], opt);
      }
      id = slot.nextId++;
      const err = slot.compile.applySync(undefined, [id, code], opt);
      if (err !== '') throw new FlowError('FUNCTION_ERROR', `syntax error: ${err.replace(/^SyntaxError: /, '')}`);
    } catch (e) {
      throw e instanceof FlowError ? e : fail(e, key, slot, opt.timeout, memoryMb);
    }
    slot.scripts.set(code, id);
    slot.lastCode = code;
    return id;
  }

  /** Runs one call; `varsJson` (the JSON of `req.vars`) may be passed when the caller has it. */
  function runSync(req: FunctionRequest, varsJsonIn?: string): FunctionOutcome {
    if (disposed) throw new FlowError('INTERNAL', 'the Function sandbox is disposed');
    const { tenant, code, msg, vars } = req;
    // Never let a bad value turn into "no timeout" (0/NaN/Infinity) or an invalid heap size.
    const timeoutMs = Math.min(Math.max(1, Math.floor(req.timeoutMs) || 1), MAX_TIMEOUT_MS);
    const memoryMb = req.memoryMb >= 8 ? Math.floor(req.memoryMb) : 8;
    let opt = timeouts.get(timeoutMs);
    if (opt === undefined) {
      opt = { timeout: timeoutMs };
      if (timeouts.size < 64) timeouts.set(timeoutMs, opt);
    }
    let msgJson: string;
    let varsJson: string;
    try {
      msgJson = JSON.stringify(msg);
      varsJson = varsJsonIn ?? JSON.stringify(vars ?? {});
    } catch (e) {
      throw new FlowError('FUNCTION_ERROR', `input is not JSON: ${errorMessage(e)}`);
    }
    const [key, slot] = slotFor(tenant, memoryMb);
    const id = scriptId(key, slot, code, opt, memoryMb);
    let out: string;
    try {
      out = slot.run.applySync(undefined, [id, msgJson, varsJson], opt);
    } catch (e) {
      throw fail(e, key, slot, timeoutMs, memoryMb);
    }
    if (out.charCodeAt(0) === 69 /* E */) throw new FlowError('FUNCTION_ERROR', out.slice(1));
    if (out.length * 3 > maxBytes && Buffer.byteLength(out) > maxBytes) {
      throw new FlowError('FUNCTION_ERROR', `output is larger than ${maxBytes} bytes`);
    }
    const parsed = JSON.parse(out) as [string[], Array<[string, unknown]>, unknown?];
    return { result: parsed.length > 2 ? parsed[2] : undefined, logs: parsed[0], sets: parsed[1] };
  }

  return {
    run: async (req) => runSync(req),
    runSync,
    dispose(): void {
      disposed = true;
      for (const slot of slots.values()) {
        try {
          if (!slot.isolate.isDisposed) slot.isolate.dispose();
        } catch {
          /* already gone */
        }
      }
      slots.clear();
      lastKey = undefined;
    },
    stats: () => ({ isolates: slots.size, created, discarded }),
  };
}
