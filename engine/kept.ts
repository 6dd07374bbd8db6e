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
 * so a wave of 150 Functions holds 150 results of up to 10 MB at once. Each result is counted
 * as it arrives (WaveHold): one that would take its wave past MAX_WAVE_CHARS, or past its share
 * of what the process's runs may hold together (HeldResults), fails its node with
 * OUTPUT_TOO_LARGE and is let go at once.
 */
import { getHeapStatistics } from 'node:v8';
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

/** Waves of more nodes than this have every result measured as it arrives (see WaveHold). */
export const WIDE_WAVE = 16;

/** The most JSON characters of node results one wave holds before it is applied: 256 MB. */
export const MAX_WAVE_CHARS = 256 * 1024 * 1024;

/**
 * What the waves of every run in this process hold: JSON characters of node results not yet
 * applied. The runs of a worker share one heap, so one tenant's runs (four places, each a Fan
 * Out to 16 Functions returning 10 MB) held 4 GB and stalled the worker: its other tenants'
 * runs waited minutes and its job locks lapsed. Past `limit`, a wave over its fair share (the
 * limit over the waves holding results now) has its node fail with OUTPUT_TOO_LARGE; a wave
 * under it is never refused, so a small run is not failed for a large one's sake.
 */
export class HeldResults {
  private total = 0;
  private holders = 0;

  /** `limit`: JSON characters the waves of this process may hold together before fair shares apply. */
  constructor(public limit: number) {}

  /** Holds `chars` more for a wave holding `own` now; an error (nothing held) when refused. */
  take(own: number, chars: number): FlowError | null {
    const holders = this.holders + (own === 0 ? 1 : 0);
    if (this.total + chars > this.limit && own + chars > this.limit / holders) {
      return new FlowError(
        'OUTPUT_TOO_LARGE',
        `its ${chars.toLocaleString('en-US')} characters of JSON would take what its wave holds to ${(own + chars).toLocaleString('en-US')}, more than its share (${Math.floor(this.limit / holders).toLocaleString('en-US')}) of the ${this.limit.toLocaleString('en-US')} the runs of this process may hold at once`,
      );
    }
    if (own === 0) this.holders++;
    this.total += chars;
    return null;
  }

  /** Lets go of what a wave held (`own` > 0). */
  release(own: number): void {
    this.total -= own;
    this.holders--;
  }

  /** What is held now: JSON characters and waves (tests, diagnostics). */
  get held(): { chars: number; waves: number } {
    return { chars: this.total, waves: this.holders };
  }
}

/**
 * Default of `FLOWMETER_WAVE_BYTES`: 64 MB, or a 32nd of the heap's limit when that is less. JSON
 * of small objects takes up to about 8 times its characters once parsed: 64 MB of it held by a
 * worker's waves is some 500 MB of its heap (default limit about 4 GB), beside the results still
 * arriving and the garbage of those refused.
 */
export function defaultWaveChars(): number {
  return Math.min(64 * 1024 * 1024, Math.floor(getHeapStatistics().heap_size_limit / 32));
}

/** This process's {@link HeldResults} (a platform sets its limit from FLOWMETER_WAVE_BYTES). */
export const processHeld = new HeldResults(defaultWaveChars());

/**
 * What one wave's results hold so far. A result whose size the node knows without measuring
 * (`chars`: a Function's JSON from the sandbox, a Connector's body) is counted always; in a wave
 * of more than WIDE_WAVE nodes, every other result is measured too.
 */
export class WaveHold {
  private chars = 0;

  constructor(
    private readonly held: HeldResults,
    private readonly wide: boolean,
  ) {}

  /** Counts a result that has arrived; OUTPUT_TOO_LARGE (nothing counted) when the wave would hold too much. */
  take(result: NodeResult): FlowError | null {
    if (result.kind !== 'emit' || result.counted) return null;
    return this.admit(result.chars ?? (this.wide ? (JSON.stringify(result.messages)?.length ?? 0) : 0));
  }

  /** Counts `chars` of a result before it is parsed (`NodeContext.admit`); OUTPUT_TOO_LARGE (nothing counted) when the wave would hold too much. */
  admit(chars: number): FlowError | null {
    if (chars === 0) return null;
    if (this.chars + chars > MAX_WAVE_CHARS) {
      return new FlowError(
        'OUTPUT_TOO_LARGE',
        `its ${chars.toLocaleString('en-US')} characters of JSON would take what its wave of nodes holds past the ${MAX_WAVE_CHARS.toLocaleString('en-US')} allowed`,
      );
    }
    const refused = this.held.take(this.chars, chars);
    if (refused) return refused;
    this.chars += chars;
    return null;
  }

  /** The wave has been applied (or failed): what it held goes back. */
  release(): void {
    if (this.chars > 0) this.held.release(this.chars);
    this.chars = 0;
  }
}
