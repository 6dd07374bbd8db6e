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
import { errorMessage, FlowError } from '../core/errors.js';
import type { FunctionOutcome, FunctionRequest, FunctionSandbox } from '../nodes/define.js';
import { BOOT_TIMEOUT_MS, newSlot, type Slot } from './sandbox-slot.js';

/** Options of {@link createSandbox}. */
export interface SandboxOptions {
  /** Max warm isolates kept (LRU over (tenant, memoryMb)); the least recently used is disposed. Default 32. */
  maxIsolates?: number;
  /** Max compiled functions cached per context (LRU by code string). Default 500. */
  maxScripts?: number;
  /** Max size of a call's output (result, logs and setVar values, as JSON), in bytes. Default 10 MB. */
  maxResultBytes?: number;
  /**
   * Most heap (V8's total plus external) a warm isolate may keep after a call, MB; one that
   * keeps more is disposed, the next call of its (tenant, memoryMb) starting a fresh one. A call
   * that allocated hundreds of MB otherwise leaves them committed in its idle isolate, and a
   * tenant varying memoryMb gets an isolate for each value (up to maxIsolates). Default 32.
   */
  retainMb?: number;
}

/** Counters of {@link createSandbox}: `discarded` counts isolates dropped (memory limit or LRU) before `dispose()`. */
export interface SandboxStats {
  isolates: number;
  created: number;
  discarded: number;
}

/** Calls shorter than this (ms) are not followed by a look at their isolate's heap (see `trim`). */
const TRIM_AFTER_MS = 1;

/** A batch for {@link InProcessSandbox.runBatchSync}: steps with the same limits, messages and vars as JSON. */
export interface BatchRequest {
  tenant: string;
  codes: string[];
  timeoutMs: number;
  memoryMb: number;
  msgs: string;
  vars: string;
  /** Starts no further message after this many ms. */
  budgetMs: number;
}

/**
 * One step of a batch as JSON: [ms, 1, [logs, sets, result?]] (ran), [ms, 2, message]
 * (FUNCTION_ERROR), [ms, 3] (FUNCTION_TIMEOUT).
 */
export type BatchRecord = [number, 1, OutcomeTuple] | [number, 2, string] | [number, 3];

/** What the isolate returns for one call, as JSON: `[logs, sets, result?]`. */
export type OutcomeTuple = [string[], Array<[string, unknown]>, unknown?];

/** A call's outcome from its tuple; `chars`: the JSON characters it came in. */
export function outcomeOf(o: OutcomeTuple, chars: number): FunctionOutcome {
  return { result: o.length > 2 ? o[2] : undefined, logs: o[0], sets: o[1], chars };
}

/** Longest `timeoutMs` of one call (SPEC §10). */
export const MAX_TIMEOUT_MS = 30_000;

/** The in-process sandbox: `runSync` blocks the calling thread (use it inside a sandbox host). */
export interface InProcessSandbox extends FunctionSandbox {
  runSync(req: FunctionRequest, varsJson?: string): FunctionOutcome;
  /** `runSync` without parsing: the outcome as the isolate's JSON `[logs, sets, result?]` (checked against the output limit). */
  runRawSync(req: FunctionRequest, varsJson?: string): string;
  /**
   * Runs `req.codes` (same limits) on each message of `req.msgs` (a JSON array) in turn, in ONE
   * call into the isolate; returns the steps' records as JSON (see `BatchRecord`), or null when
   * the batch cannot run that way (a syntax error, the isolate died: run it step by step).
   */
  runBatchSync(req: BatchRequest): string | null;
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
  const retainBytes = Math.max(1, opts.retainMb ?? 32) * 1024 * 1024;
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
      created++;
      try {
        slot = newSlot(memoryMb, maxBytes);
      } catch (e) {
        discarded++;
        throw e;
      }
      slots.set(key, slot);
    } else if (lastKey !== key) {
      slots.delete(key);
      slots.set(key, slot);
    }
    lastKey = key;
    return [key, slot];
  }

  /**
   * After a call that took more than TRIM_AFTER_MS (touching many MB takes time; a heap
   * statistics call costs ~3 µs, too much for every short call): disposes the isolate when it
   * keeps more than retainMb.
   */
  function trim(key: string, slot: Slot, startedAt: number): void {
    if (performance.now() - startedAt <= TRIM_AFTER_MS || slots.get(key) !== slot || slot.isolate.isDisposed) return;
    const h = slot.isolate.getHeapStatisticsSync();
    if (h.total_heap_size + h.externally_allocated_size > retainBytes) release(key, slot);
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

  function limits(timeoutMsIn: number, memoryMbIn: number): { timeoutMs: number; memoryMb: number; opt: { timeout: number } } {
    // Never let a bad value turn into "no timeout" (0/NaN/Infinity) or an invalid heap size.
    const timeoutMs = Math.min(Math.max(1, Math.floor(timeoutMsIn) || 1), MAX_TIMEOUT_MS);
    const memoryMb = memoryMbIn >= 8 ? Math.floor(memoryMbIn) : 8;
    let opt = timeouts.get(timeoutMs);
    if (opt === undefined) {
      opt = { timeout: timeoutMs };
      if (timeouts.size < 64) timeouts.set(timeoutMs, opt);
    }
    return { timeoutMs, memoryMb, opt };
  }

  function runBatchSync(req: BatchRequest): string | null {
    if (disposed) throw new FlowError('INTERNAL', 'the Function sandbox is disposed');
    const { timeoutMs, memoryMb, opt } = limits(req.timeoutMs, req.memoryMb);
    const [key, slot] = slotFor(req.tenant, memoryMb);
    const startedAt = performance.now();
    try {
      return batchOn(key, slot, req, timeoutMs, memoryMb, opt);
    } finally {
      trim(key, slot, startedAt);
    }
  }

  function batchOn(key: string, slot: Slot, req: BatchRequest, timeoutMs: number, memoryMb: number, opt: { timeout: number }): string | null {
    let ids: string;
    try {
      ids = req.codes.map((code) => scriptId(key, slot, code, opt, memoryMb)).join(',');
    } catch {
      return null;
    }
    // The call may run up to budgetMs, then start one more step: that step gets timeoutMs.
    const budgetMs = Math.max(0, Math.floor(req.budgetMs));
    try {
      // The records a batch keeps in the isolate's heap stay a small part of it (64 MB: 4 M chars).
      const maxChars = Math.min(4 << 20, memoryMb << 16);
      return slot.batch.applySync(undefined, [ids, req.msgs, req.vars, timeoutMs, budgetMs, maxChars], { timeout: budgetMs + timeoutMs });
    } catch (e) {
      const err = fail(e, key, slot, timeoutMs, memoryMb);
      if (err.code !== 'FUNCTION_TIMEOUT') return null;
      // The step running when the call was stopped started at most budgetMs in: it ran over timeoutMs.
      let before: string;
      try {
        before = slot.collect.applySync(undefined, [], { timeout: BOOT_TIMEOUT_MS });
      } catch {
        return null;
      }
      return `${before.slice(0, -1)}${before.length > 2 ? ',' : ''}[${timeoutMs},3]]`;
    }
  }

  /** Runs one call; `varsJson` (the JSON of `req.vars`) may be passed when the caller has it. */
  function runSync(req: FunctionRequest, varsJsonIn?: string): FunctionOutcome {
    const out = runRawSync(req, varsJsonIn);
    return outcomeOf(JSON.parse(out) as OutcomeTuple, out.length);
  }

  function runRawSync(req: FunctionRequest, varsJsonIn?: string): string {
    if (disposed) throw new FlowError('INTERNAL', 'the Function sandbox is disposed');
    const { tenant, code, msg, vars } = req;
    const { timeoutMs, memoryMb, opt } = limits(req.timeoutMs, req.memoryMb);
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
    const startedAt = performance.now();
    try {
      out = slot.run.applySync(undefined, [id, msgJson, varsJson], opt);
    } catch (e) {
      throw fail(e, key, slot, timeoutMs, memoryMb);
    } finally {
      trim(key, slot, startedAt);
    }
    if (out.charCodeAt(0) === 69 /* E */) throw new FlowError('FUNCTION_ERROR', out.slice(1));
    if (out.length * 3 > maxBytes && Buffer.byteLength(out) > maxBytes) {
      throw new FlowError('FUNCTION_ERROR', `output is larger than ${maxBytes} bytes`);
    }
    return out;
  }

  return {
    run: async (req) => runSync(req),
    runSync,
    runRawSync,
    runBatchSync,
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
