/**
 * What a run holds in the worker's memory, bounded twice.
 *
 * Kept: what a run keeps until it ends, its outputs and the payloads its collecting loops gather.
 * Both grow for the whole run, in the worker's memory and in every checkpoint, so they are
 * bounded: a node whose messages would take them past MAX_KEPT_CHARS fails with
 * OUTPUT_TOO_LARGE (a Catch may handle it), and nothing of that node is kept. Before, a Fan Out
 * to 150 Functions each returning 10 MB kept 1.5 GB in the process (1.8 GB RSS) for 152
 * actions, and a loop collecting 10 MB per iteration grew without end.
 *
 * Counted as JSON characters of what is kept (measured only then: messages passed on to a
 * next node are not), in the run's state, so a resumed or recovered run goes on counting.
 *
 * Held by a wave: the results of a wave's nodes wait for the whole wave before any is applied,
 * so a wave of 150 Functions holds 150 results of up to 10 MB at once. A wave wider than
 * WIDE_WAVE has each result measured as it arrives; one that would take the wave past
 * MAX_WAVE_CHARS fails its node with OUTPUT_TOO_LARGE and is let go at once. (A narrower wave
 * holds at most WIDE_WAVE results, 10 MB each: not worth measuring every call for.)
 */
import { FlowError } from '../core/errors.js';
import type { RunState } from '../core/types.js';
import type { NodeResult } from '../nodes/define.js';
import { kept } from './frames.js';
import type { Slot } from './work.js';

/** The most JSON characters a run's outputs and collected payloads may take together: 64 MB. */
export const MAX_KEPT_CHARS = 64 * 1024 * 1024;

/** Counts what the run will keep of `slot`'s result; OUTPUT_TOO_LARGE (nothing counted) when it would pass the bound. */
export function keepResult(state: RunState, slot: Slot): FlowError | null {
  const result = slot.result as NodeResult;
  if (result.kind !== 'emit' || result.messages.length === 0 || slot.node.config.next || !slot.node.def.emitsOutputs) return null;
  const what = kept(state, slot.item.frame);
  if (!what) return null;
  let chars = 0;
  for (const m of result.messages) chars += JSON.stringify(what === 'payload' ? m.payload : m)?.length ?? 0;
  const total = (state.kept ?? 0) + chars;
  if (total > MAX_KEPT_CHARS) {
    const where = what === 'payload' ? 'its loop would collect' : 'the run would output';
    return new FlowError(
      'OUTPUT_TOO_LARGE',
      `${where} ${chars.toLocaleString('en-US')} more characters of JSON, taking what the run keeps to ${total.toLocaleString('en-US')}, more than the ${MAX_KEPT_CHARS.toLocaleString('en-US')} allowed`,
    );
  }
  state.kept = total;
  return null;
}

/** Waves of more nodes than this have their results measured as they arrive. */
export const WIDE_WAVE = 16;

/** The most JSON characters of node results one wave holds before it is applied: 256 MB. */
export const MAX_WAVE_CHARS = 256 * 1024 * 1024;

/** What one wave's results hold so far. */
export class WaveHold {
  private chars = 0;
  /** Counts a result that has arrived; OUTPUT_TOO_LARGE (nothing counted) when the wave would hold more than the bound. */
  take(result: NodeResult): FlowError | null {
    if (result.kind !== 'emit') return null;
    const chars = JSON.stringify(result.messages)?.length ?? 0;
    if (this.chars + chars > MAX_WAVE_CHARS) {
      return new FlowError(
        'OUTPUT_TOO_LARGE',
        `its ${chars.toLocaleString('en-US')} characters of JSON would take what its wave of nodes holds past the ${MAX_WAVE_CHARS.toLocaleString('en-US')} allowed`,
      );
    }
    this.chars += chars;
    return null;
  }
}
