/**
 * Frames: the structure that makes a run's pending work serialisable. Every work item lives
 * in a frame (the run's root, a loop's body, a sequencer's step). A frame counts its open
 * items (and open child frames); when that count reaches 0 the frame moves on: the loop's
 * next iteration, the sequencer's next step, or the continuation after it.
 */
import type { Frame, Message, RunState, WorkItem } from '../core/types.js';
import type { Iteration } from '../nodes/define.js';
import { collectedMessage, type LoopCollect } from '../nodes/loop.js';
import type { CompiledScenario } from '../scenario/compile.js';

export function initialState(start: string, msg: Message): RunState {
  return { items: [{ node: start, msg, frame: 'root', caught: [] }], frames: { root: { kind: 'root', open: 1 } }, nextFrame: 1, nextSeq: 2 };
}

export function push(state: RunState, item: WorkItem): void {
  state.frames[item.frame]!.open++;
  state.items.push(item);
}

/** Opens a loop or sequencer frame under `parent` and queues its first unit of work. */
export function openFrame(
  state: RunState,
  parent: WorkItem,
  frame: { kind: 'loop'; items: unknown[]; collect: boolean; over?: string } | { kind: 'seq'; steps: string[] },
  compiled: CompiledScenario,
): void {
  const id = `f${state.nextFrame++}`;
  // open starts at 1, a token for the frame itself, dropped below (so an empty loop closes at once).
  const common = { parent: parent.frame, node: parent.node, input: parent.msg, index: 0, open: 1, caught: parent.caught };
  state.frames[id] =
    frame.kind === 'loop'
      ? { kind: 'loop', ...common, items: frame.items, collected: frame.collect ? [] : null, ...(frame.over !== undefined && { over: frame.over }) }
      : { kind: 'seq', ...common, steps: frame.steps };
  state.frames[parent.frame]!.open++;
  advance(state, id);
  consumed(state, id, compiled);
}

/** What the run keeps of messages that end a path in `frameId`: their payloads (a collecting loop), the messages (the run's outputs), or nothing (a loop that drops them). */
export function kept(state: RunState, frameId: string): 'payload' | 'message' | null {
  const f = deliveredTo(state, frameId);
  if (!f) return 'message';
  return f.kind === 'loop' && f.collected ? 'payload' : null;
}

/** The frame messages that end a path in `frameId` go to: the nearest loop, or none (the run). */
function deliveredTo(state: RunState, frameId: string): Frame | undefined {
  let f: Frame | undefined = state.frames[frameId];
  while (f && f.kind === 'seq') f = state.frames[f.parent];
  return f && f.kind === 'loop' ? f : undefined;
}

/** Where messages that end a path in `frameId` go: the nearest loop (collected or dropped), or the run. */
export function deliver(state: RunState, frameId: string, messages: Message[], outputs: Message[]): void {
  const f = deliveredTo(state, frameId);
  if (f && f.kind === 'loop') {
    if (f.collected) for (const m of messages) f.collected.push(m.payload);
    return;
  }
  for (const m of messages) outputs.push(m); // not push(...): any number of messages
}

/** Queues the frame's next unit of work; returns false when it has none left. */
function advance(state: RunState, id: string): boolean {
  const f = state.frames[id]!;
  if (f.kind === 'loop' && f.index < f.items.length) {
    // The iteration's message is made when it starts (nextIteration): the item carries none,
    // so a checkpoint does not store the loop's input once per queued iteration.
    push(state, { node: f.node, msg: {}, frame: id, caught: f.caught, iterate: id });
    return true;
  }
  if (f.kind === 'seq' && f.index < f.steps.length) {
    push(state, { node: f.steps[f.index]!, msg: f.input, frame: id, caught: f.caught });
    f.index++;
    return true;
  }
  return false;
}

/**
 * Called when an item of `frameId` has been consumed: closes every frame whose work is done,
 * queueing what comes after it. Returns true when the whole run has no work left.
 */
export function consumed(state: RunState, frameId: string, compiled: CompiledScenario): boolean {
  let id = frameId;
  for (;;) {
    const f = state.frames[id]!;
    f.open--;
    if (f.open > 0) return false;
    if (f.kind === 'root') return true;
    if (advance(state, id)) return false;
    // The loop or sequence is done: continue after it in the parent frame.
    delete state.frames[id];
    const { next, collect } = compiled.nodes.get(f.node)!.config;
    if (next) {
      const msg = f.kind === 'loop' && f.collected ? collectedMessage(f.input, f.collected, collect as LoopCollect) : f.input;
      push(state, { node: next, msg, frame: f.parent, caught: f.caught });
    }
    id = f.parent;
  }
}

/** A loop's frame. */
export type LoopFrame = Extract<Frame, { kind: 'loop' }>;

export function isLoopFrame(f: Frame): f is LoopFrame {
  return f.kind === 'loop';
}

/** Starts the next iteration of a loop frame: its input, item, index and the item count. */
export function nextIteration(state: RunState, frameId: string): Iteration {
  const f = state.frames[frameId];
  if (f?.kind !== 'loop') throw new Error(`frame ${frameId} is not a loop`);
  const index = f.index++;
  return { input: f.input, item: f.items[index], index, count: f.items.length };
}
