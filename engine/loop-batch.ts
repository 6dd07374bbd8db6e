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
 * 1 (the iteration) + n (its Functions). It is also capped in iterations and in bytes.
 */

import { isDeepStrictEqual } from 'node:util';
import type { Message } from '../core/types.js';
import type { CompiledNode } from '../scenario/compile.js';
import { isLoopFrame, type LoopFrame } from './frames.js';
import type { Slot, Work } from './work.js';

/** Most iterations computed in one host round trip (the first one included). */
export const MAX_BATCH_ITERATIONS = 256;
/** Most bytes (JSON, estimated) of the further iterations' messages sent in one round trip. */
export const MAX_BATCH_BYTES = 1 << 20;

/** What a batch prepared beyond its first iteration. */
export interface LoopPrep {
  /** The loop's frame id, and the frame object itself (a frame is never reused). */
  frame: string;
  f: LoopFrame;
  /** The iteration the batch started in. */
  first: number;
  /** messages[k]: the message of iteration `first + k`, for k ≥ 1 (messages[0] is unused). */
  messages: Message[];
}

/** JSON size of a loop's input without its payload, per frame (the part every iteration's message shares). */
const baseBytes = new WeakMap<LoopFrame, number>();

function jsonBytes(v: unknown): number {
  try {
    return JSON.stringify(v)?.length ?? 4;
  } catch {
    return Infinity;
  }
}

/**
 * The loop's next iterations that may ride along with the chain `nodes` starting at `slot`, or
 * undefined when `slot` is not the first node of a loop body made only of these Functions.
 * `room`: actions the run may still spend without asking the meter (the slot's own is taken).
 */
export function loopBatch(w: Work, slot: Slot, nodes: CompiledNode[], room: number): { prep: LoopPrep; more: Message[] } | undefined {
  const f = w.state.frames[slot.item.frame];
  if (f === undefined || !isLoopFrame(f)) return undefined;
  const loop = w.compiled.nodes.get(f.node);
  // The iterations' messages, as the loop node enters them (its type's `iterate`).
  const enter = (index: number) => loop!.def.iterate!(loop!.config as never, { input: f.input, item: f.items[index], index, count: f.items.length });
  if (loop?.def.iterate === undefined || enter(f.index - 1).to !== slot.node.id) return undefined;
  // The body goes on after these Functions (a non-Function node, or a chain cut short by `room`).
  if (nodes.at(-1)!.config.next !== undefined) return undefined;
  const n = nodes.length;
  const afford = Math.floor((room - (n - 1)) / (n + 1));
  const k = Math.min(f.items.length - f.index, afford, MAX_BATCH_ITERATIONS - 1);
  if (!(k >= 1)) return undefined;
  let base = baseBytes.get(f);
  if (base === undefined) {
    base = jsonBytes({ ...f.input, payload: null }) + 40;
    baseBytes.set(f, base);
  }
  const more: Message[] = [];
  let bytes = 0;
  for (let j = 0; j < k; j++) {
    bytes += base + jsonBytes(f.items[f.index + j]);
    if (bytes > MAX_BATCH_BYTES) break;
    more.push(enter(f.index + j).msg);
  }
  if (more.length === 0) return undefined;
  // nextIteration advanced the frame when this iteration started: it is iteration f.index - 1.
  return { prep: { frame: slot.item.frame, f, first: f.index - 1, messages: [slot.item.msg, ...more] }, more };
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
    if (want[key] !== got[key] && !isDeepStrictEqual(want[key], got[key])) return false;
  }
  return true;
}
