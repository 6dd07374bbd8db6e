/**
 * Chain steps from what a sandbox host answered: a batch's records (one JSON string), or the
 * death of the host that ran the step.
 */
import type { ChainStep } from '../nodes/define.js';
import { outcomeOf } from './sandbox.js';
import type { BatchRecord, HostJob } from './sandbox-host.js';

/** A host that died (or was killed) while it ran a job. */
export interface Death {
  died: true;
  timedOut: boolean;
  how: string;
}

/** The step a host's death stands for: FUNCTION_TIMEOUT when it was killed for time, else FUNCTION_MEMORY. */
export function deathStep(d: Death, step: HostJob['steps'][number]): ChainStep {
  if (d.timedOut) return { ok: false, code: 'FUNCTION_TIMEOUT', message: `the function ran longer than ${step.timeoutMs} ms`, ms: 0 };
  return {
    ok: false,
    code: 'FUNCTION_MEMORY',
    message: `the function's sandbox process died (${d.how}): over its memory limit of ${step.memoryMb} MB, or killed`,
    ms: 0,
  };
}

/** A batch's records (one JSON string from the host) as chain steps; record i ran steps[i % steps.length]. */
export function fromRecords(json: string, steps: HostJob['steps']): ChainStep[] {
  const records = JSON.parse(json) as BatchRecord[];
  const out: ChainStep[] = new Array(records.length);
  // Each record's share of the JSON (exact for one call): what its result holds, unmeasured.
  const chars = Math.ceil(json.length / Math.max(1, records.length));
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r[1] === 1) out[i] = { ok: true, outcome: outcomeOf(r[2], chars), ms: r[0] };
    else if (r[1] === 2) out[i] = { ok: false, code: 'FUNCTION_ERROR', message: r[2], ms: r[0] };
    else {
      const t = steps[i % steps.length]!.timeoutMs;
      out[i] = { ok: false, code: 'FUNCTION_TIMEOUT', message: `the function ran longer than ${t} ms`, ms: r[0] };
    }
  }
  return out;
}
