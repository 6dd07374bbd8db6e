/**
 * How a run's pending state is stored. A loop frame's input and items (and a sequencer's
 * input) never change while the frame is open, and can be large (a 10,000-item loop): they are
 * stored once, as a field of their own (`f:<frame>`), and the state written at every
 * checkpoint carries only what changes.
 */

import { getPath } from '../core/paths.js';
import type { Frame, Message, RunState } from '../core/types.js';

/** A frame's unchanging parts; `trigger`: its input is the run's trigger message (stored already). */
type FrameStatic = { input?: unknown; trigger?: true; items?: unknown[] };

/** The trigger message of a state, when known: a frame whose input it is stores a reference. */
const triggers = new WeakMap<RunState, Message>();

export function rememberTrigger(state: RunState, msg: Message): void {
  triggers.set(state, msg);
}

/** The state JSON without frame statics, and the statics of frames not yet in `written`. */
export function encodeState(state: RunState, written: Set<string>): { json: string; fields: Array<[string, string]>; ids: string[] } {
  const frames: Record<string, unknown> = {};
  const fields: Array<[string, string]> = [];
  const ids: string[] = [];
  for (const [id, f] of Object.entries(state.frames)) {
    if (f.kind === 'root') {
      frames[id] = f;
      continue;
    }
    const { input, ...rest } = f;
    // Items read from the input (`over` under msg) are in the input already: not stored twice.
    const items = f.kind === 'loop' && !(f.over && getPath({ msg: input, vars: {} }, f.over) === f.items) ? f.items : undefined;
    if (f.kind === 'loop') {
      delete (rest as { items?: unknown }).items;
      if (!items) (rest as { itemsFromInput?: boolean }).itemsFromInput = true;
    }
    frames[id] = rest;
    if (!written.has(id)) {
      // A loop right after the trigger loops over the trigger's payload: stored once, as the run's payload.
      const statics: FrameStatic = input === triggers.get(state) ? { trigger: true } : { input };
      fields.push([`f:${id}`, JSON.stringify({ ...statics, ...(items && { items }) })]);
      ids.push(id);
    }
  }
  return { json: JSON.stringify({ ...state, frames }), fields, ids };
}

/**
 * The state back, with each frame's statics from the stored fields (`f:<frame>` → JSON), and
 * `trigger()` for frames whose input is the run's trigger message.
 */
export function decodeState(json: string, field: (name: string) => string | undefined, trigger?: () => Message): RunState {
  const state = JSON.parse(json) as RunState;
  let triggerMsg: Message | undefined;
  for (const [id, f] of Object.entries(state.frames)) {
    if (f.kind === 'root' || (f as { input?: unknown }).input !== undefined) continue;
    const raw = field(`f:${id}`);
    if (!raw) throw new Error(`the stored state of frame ${id} is missing`);
    const statics = JSON.parse(raw) as FrameStatic;
    if (statics.trigger) {
      if (!trigger) throw new Error(`frame ${id} refers to the trigger message, which is not available`);
      statics.input = triggerMsg ??= trigger();
      rememberTrigger(state, triggerMsg);
    }
    const loop = f as Frame & { itemsFromInput?: boolean; over?: string };
    if (loop.itemsFromInput && loop.over) {
      Object.assign(loop, { input: statics.input, items: getPath({ msg: statics.input as never, vars: {} }, loop.over) });
      delete loop.itemsFromInput;
    } else Object.assign(loop, statics.items ? { input: statics.input, items: statics.items } : { input: statics.input });
  }
  return state;
}
