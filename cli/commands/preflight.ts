/** Checks before a command starts work that could not go anywhere: fail fast, in one line. */

import type { RunRecord } from '../../core/types.js';
import { resumeRefusal } from '../../engine/resume-check.js';
import type { Production } from '../../redis/production.js';
import { CliError, EXIT } from '../errors.js';

/**
 * Throws one line when no BullMQ worker is connected to the run queue: a `--wait` would
 * otherwise wait its whole timeout for nothing. Checked before anything is enqueued.
 */
export async function requireWorker(p: Production): Promise<void> {
  const count = await p.queue.queue.getWorkersCount().catch(() => null);
  if (count === 0) {
    throw new CliError(
      'no worker is connected to the run queue, so --wait would never see the run end: start one with `flowmeter worker` (or drop --wait to only enqueue)',
      EXIT.failed,
    );
  }
}

/**
 * Throws when resuming a halted billable run would only halt it again (the API's resume route
 * refuses it with the same message: engine/resume-check.ts).
 */
export async function requireActionsToResume(p: Production, run: RunRecord): Promise<void> {
  const refusal = await resumeRefusal(p.ledger, run);
  if (refusal) throw new CliError(refusal.message, EXIT.halted);
}
