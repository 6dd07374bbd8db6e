/** Waiting for a run to end, the same way on every platform. */
import { FlowError } from '../core/errors.js';
import type { RunRecord } from '../core/types.js';
import type { RunEvent, SubscribeOptions } from './platform.js';

const ENDED = new Set(['succeeded', 'failed', 'halted', 'rejected']);
const FINAL = new Set(['succeeded', 'failed', 'rejected']);

export interface WaitDeps {
  subscribe(tenant: string, onEvent: (e: RunEvent) => void, opts?: SubscribeOptions): Promise<() => void>;
  get(tenant: string, runId: string): Promise<RunRecord | null>;
}

/**
 * Runs `start`, then resolves with the run record once the run has ended. It subscribes before
 * `start`, so the end cannot be missed; only a final status read afterwards needs no wait (a
 * run seen `halted` may be one being resumed).
 */
export async function waitForEnd(deps: WaitDeps, tenant: string, runId: string, start: () => Promise<void>, timeoutMs: number, hint = ''): Promise<RunRecord> {
  let done!: () => void;
  const ended = new Promise<void>((r) => (done = r));
  const stop = await deps.subscribe(tenant, (e) => e.type === 'run' && e.runId === runId && ENDED.has(e.status) && done(), { runsOnly: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    await start();
    const current = await deps.get(tenant, runId);
    if (!current || !FINAL.has(current.status)) {
      const late = new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new FlowError('TIMEOUT', `run ${runId} did not end within ${timeoutMs} ms${hint}`)), timeoutMs)),
      );
      await Promise.race([ended, late]);
    }
    const run = await deps.get(tenant, runId);
    if (!run) throw new FlowError('NOT_FOUND', `run ${runId} disappeared`);
    return run;
  } finally {
    clearTimeout(timer);
    stop();
  }
}
