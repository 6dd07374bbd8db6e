/**
 * Loop batches: a Loop whose body is a chain of Function nodes would cost one sandbox host round
 * trip per iteration. When an iteration's first wave is the body's first Function, alone, with
 * nothing else queued, `chain.ts` sends the body's chain for this iteration AND the loop's next
 * iterations in ONE request (`ChainRequest.more`): the host runs them in order, iteration after
 * iteration, carrying `vars` exactly as sequential execution would, and returns every step.
 *
 * Nothing else changes: each iteration still starts as its own wave (reserving and recording its
 * action), and each of its Functions is its own wave. A prepared outcome is used only when the
 * wave is exactly the one expected: the same node, the same loop frame at the same iteration
 * index, and the iteration's message (built by the loop node's own `iterate`). Anything
 * else drops what was prepared; a Function has no effect outside its outcome, so an unused
 * outcome changes nothing and is never billed.
 *
 * A batch never computes past the actions the run holds (`Budget.room()`) nor past its
 * `maxActionsPerRun`: iteration i's remaining Functions cost n - 1, each further iteration
 * 1 (the iteration) + n (its Functions). So that one hop carries many iterations, the run
 * leases ahead for the batch (`Budget.ensure`, exact: unspent actions go back at settlement).
 * It is also capped in iterations and in bytes. While the engine applies one batch, the next
 * one (its vars: the first one's, with every `setVar` of its steps) is already computing in
 * the host (`chain.ts`).
 */

import { isDeepStrictEqual } from 'node:util';
import type { Message } from '../core/types.js';
import type { CompiledNode } from '../scenario/compile.js';
import { isLoopFrame, type LoopFrame } from './frames.js';
import type { Slot, Work } from './work.js';

/** Most iterations computed in one host round trip (the first one included). */
export const MAX_BATCH_ITERATIONS = 1024;
/** Most bytes (JSON, estimated) of the further iterations' messages sent in one round trip. */
export const MAX_BATCH_BYTES = 1 << 18;

/** What a batch prepared: the loop, and its iterations' messages. */
export interface LoopPrep {
  /** The loop's frame id, and the frame object itself (a frame is never reused). */
  frame: string;
  f: LoopFrame;
  /** The iteration the batch starts in. */
  first: number;
  /** messages[k]: the message of iteration `first + k` (for the first batch, messages[0] is the slot's). */
  messages: Message[];
}

/** A loop whose whole body is a chain of Function nodes, and how its iterations' messages are made. */
export interface LoopBody {
  frame: string;
  f: LoopFrame;
  /** The message of iteration `index`, as the loop node enters it (its type's `iterate`). */
  enter(index: number): Message;
}

/**
 * The loop `slot` starts an iteration of, when `nodes` (the Function chain from `slot`) is its
 * whole body; else undefined.
 */
export function loopBody(w: Work, slot: Slot, nodes: CompiledNode[]): LoopBody | undefined {
  const f = w.state.frames[slot.item.frame];
  if (f === undefined || !isLoopFrame(f)) return undefined;
  const loop = w.compiled.nodes.get(f.node);
  const iterate = loop?.def.iterate;
  if (iterate === undefined) return undefined;
  const it = (index: number) => iterate(loop!.config as never, { input: f.input, item: f.items[index], index, count: f.items.length });
  // nextIteration advanced the frame when this iteration started: it is iteration f.index - 1.
  if (it(f.index - 1).to !== slot.node.id) return undefined;
  // The body goes on after these Functions (a non-Function node, or a chain cut short).
  if (nodes.at(-1)!.config.next !== undefined) return undefined;
  return { frame: slot.item.frame, f, enter: (index) => it(index).msg };
}

/**
 * The messages of up to `k` iterations from `from` (capped in iterations, by the items left, and
 * in bytes), and their JSON (each serialised once: the bytes counted are the ones sent).
 */
export function iterations(body: LoopBody, from: number, k: number): { messages: Message[]; json: string[] } {
  const { f } = body;
  const count = Math.min(k, f.items.length - from, MAX_BATCH_ITERATIONS);
  const messages: Message[] = [];
  const json: string[] = [];
  let bytes = 0;
  for (let j = 0; j < count; j++) {
    const msg = body.enter(from + j);
    const text = JSON.stringify(msg);
    bytes += text.length;
    if (bytes > MAX_BATCH_BYTES && messages.length > 0) break;
    messages.push(msg);
    json.push(text);
  }
  return { messages, json };
}

/** Whether two values of an iteration's message are equal: the same, equal primitives in a flat object, or deeply equal. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object' || Array.isArray(a) || Array.isArray(b)) return isDeepStrictEqual(a, b);
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return isDeepStrictEqual(a, b);
  for (const k of ka) {
    const x = (a as Record<string, unknown>)[k];
    const y = (b as Record<string, unknown>)[k];
    if (x !== y || !Object.hasOwn(b, k)) return isDeepStrictEqual(a, b);
  }
  return true;
}

/**
 * Whether `slot` is iteration `first + k` of the batch's loop starting: the same frame, at that
 * iteration, with the message the loop node's `iterate` built for it.
 */
export function sameIteration(w: Work, prep: LoopPrep, k: number, slot: Slot): boolean {
  const f = w.state.frames[prep.frame];
  if (f !== prep.f || slot.item.frame !== prep.frame || f.index - 1 !== prep.first + k) return false;
  const want = prep.messages[k];
  const got = slot.item.msg;
  if (want === undefined) return false;
  const keys = Object.keys(want);
  if (Object.keys(got).length !== keys.length) return false;
  // The loop node builds both from the same input and item: fields are the same objects but
  // for the small ones it makes per iteration (Loop: `loop: { index, count }`).
  for (const key of keys) {
    if (!sameValue(want[key], got[key])) return false;
  }
  return true;
}
