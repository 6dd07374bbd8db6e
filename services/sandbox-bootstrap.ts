/**
 * The source evaluated once in each new sandbox context (see `sandbox.ts` for the security
 * model): it deletes dangerous globals, deep-freezes every reachable intrinsic and the global
 * object, and returns the private driver functions the host calls through References.
 */

import { MAX_FUNCTION_MESSAGES, MAX_VARS, MAX_VARS_BYTES } from '../core/function-limits.js';
import { MAX_MESSAGE_DEPTH } from '../core/json-depth.js';

const MAX_LOG_LINES = 100;
const MAX_LOG_CHARS = 2000;
const MAX_ERROR_CHARS = 2000;

/**
 * Evaluated once per context; returns [run, compile, drop, batch, collect] without touching
 * the global object. `maxChars`: the most UTF-16 units of one call's output JSON; `maxBytes`:
 * its most UTF-8 bytes (checked here by the batch driver, by the caller for `run`).
 */
export const bootstrap = (maxChars: number, maxBytes: number = maxChars): string => `(function () {
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
  // Whether a call's output JSON ([logs, sets, result]) nests its result deeper than
  // ${MAX_MESSAGE_DEPTH} levels of arrays and objects, or a setVar value (two levels further in):
  // read off the text (what leaves the isolate, toJSON included), without recursion.
  const tooDeep = (s) => {
    let d = 0, part = 0, str = false;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (str) { if (c === 92) i++; else if (c === 34) str = false; }
      else if (c === 34) str = true;
      else if (c === 91 || c === 123) { if (++d > (part === 2 ? ${MAX_MESSAGE_DEPTH + 1} : ${MAX_MESSAGE_DEPTH + 3})) return true; }
      else if (c === 93 || c === 125) d--;
      else if (c === 44 && d === 1) part++;
    }
    return false;
  };
  // The scenario's variables after a call's setVars, against core/function-limits.ts's bounds: what
  // is wrong, or ''. (A call that set none is not measured: it cannot have added to them.)
  const varsOver = (vars) => {
    const count = O.keys(vars).length;
    if (count > ${MAX_VARS}) return 'setVar: the scenario would have ' + count + ' variables, more than the ${MAX_VARS} allowed; nothing was set';
    const json = stringify(vars);
    if (json.length > ${MAX_VARS_BYTES / 4} && utf8(json) > ${MAX_VARS_BYTES}) return "setVar: the scenario's variables would take " + utf8(json) + ' bytes as JSON, more than the ${MAX_VARS_BYTES} allowed; nothing was set';
    return '';
  };
  // One execution: fresh vars (from JSON), fresh setVar/log closures; the output as JSON
  // ([logs, sets] or [logs, sets, result]) or 'E' + the error.
  const exec = (fn, msg, varsJson) => {
    RE.exec('');
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
      const r = fn(msg, vars, setVar, log);
      if (typeof r === 'function') return 'Ereturned a function; return an object, an array of objects, or null';
      if (r instanceof Prom) return 'Ereturned a Promise (async code is not supported); return an object, an array of objects, or null';
      if (isArray(r) && r.length > ${MAX_FUNCTION_MESSAGES}) return 'Ereturned ' + r.length + ' messages, more than the ${MAX_FUNCTION_MESSAGES} a Function may return; return one message holding them, and a Loop over them';
      const out = stringify(r === undefined ? [logs, sets] : [logs, sets, r]);
      if (out.length > ${maxChars}) return 'Eoutput is larger than ${maxChars} bytes';
      if (out.length > ${2 * MAX_MESSAGE_DEPTH} && tooDeep(out)) return 'Ereturned a message or set a variable that nests deeper than ${MAX_MESSAGE_DEPTH} levels of arrays and objects';
      if (sets.length > 0) { const over = varsOver(vars); if (over) return 'E' + over; }
      return out;
    } catch (e) { return 'E' + describe(e); }
  };
  const run = (id, msgJson, varsJson) => exec(fns.get(id), parse(msgJson), varsJson);
  // Batches: the steps (compiled ids, comma-separated) on each message of msgsJson in turn,
  // carrying vars, as the host would call run() step after step, in ONE call into the isolate.
  // Records: [ms, 1, output] | [ms, 2, error message] | [ms, 3] (ran over timeoutMs). It stops
  // after a failure or an output that is not one message, and starts no message after budgetMs
  // or once its records pass batchChars characters. The records so far stay in \`done\`, so
  // that \`collect\` can return them when the call was stopped (its timeout).
  const now = Date.now, isArray = Array.isArray;
  let done = [];
  const utf8 = (s) => {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1; else if (c < 0x800) n += 2; else if (c >= 0xd800 && c < 0xdc00) { n += 4; i++; } else n += 3;
    }
    return n;
  };
  const batch = (idsCsv, msgsJson, varsJson, timeoutMs, budgetMs, batchChars) => {
    const ids = idsCsv.split(',');
    const steps = [];
    for (let k = 0; k < ids.length; k++) steps.push(fns.get(+ids[k]));
    const msgs = parse(msgsJson);
    done = [];
    let chars = 0;
    const t0 = now();
    outer: for (let i = 0; i < msgs.length; i++) {
      if (i > 0 && (now() - t0 > budgetMs || chars > batchChars)) break;
      let msg = msgs[i];
      for (let k = 0; k < steps.length; k++) {
        const s0 = now();
        const out = exec(steps[k], msg, varsJson);
        const ms = now() - s0;
        if (ms > timeoutMs) { done.push('[' + ms + ',3]'); break outer; }
        if (out.charCodeAt(0) === 69) { done.push('[' + ms + ',2,' + stringify(out.slice(1)) + ']'); break outer; }
        if (out.length * 3 > ${maxBytes} && utf8(out) > ${maxBytes}) { done.push('[' + ms + ',2,"output is larger than ${maxBytes} bytes"]'); break outer; }
        done.push('[' + ms + ',1,' + out + ']');
        chars += out.length;
        const p = parse(out);
        const r = p[2];
        if (r === null || typeof r !== 'object' || isArray(r)) break outer;
        msg = r;
        if (p[1].length > 0) {
          const cur = parse(varsJson);
          for (let j = 0; j < p[1].length; j++) defProp(cur, p[1][j][0], { value: p[1][j][1], writable: true, enumerable: true, configurable: true });
          varsJson = stringify(cur);
        }
      }
    }
    return collect();
  };
  const collect = () => { const r = '[' + done.join(',') + ']'; done = []; return r; };
  const compile = (id, code) => {
    try { fns.set(id, Fn('msg', 'vars', 'setVar', 'log', '"use strict";\\n' + code + '\\n')); return ''; }
    catch (e) { return describe(e); }
  };
  const drop = (id) => { fns.delete(id); };
  return [run, compile, drop, batch, collect];
})()`;
