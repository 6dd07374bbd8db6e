/** Checks before a command starts work that could not go anywhere: fail fast, in one line. */

import type { RunRecord } from '../../core/types.js';
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
 * Throws when resuming a halted billable run would only halt it again: the tenant (overage
 * `halt`) has no action left, and the run needs at least one per pending item.
 */
export async function requireActionsToResume(p: Production, run: RunRecord): Promise<void> {
  if (!run.billable) return;
  const [quota, usage] = await Promise.all([p.ledger.getQuota(run.tenant), p.ledger.usage(run.tenant, new Date())]);
  if (quota.overage !== 'halt' || usage.remaining > 0) return;
  const needed = Math.max(1, run.pending?.items.length ?? 1);
  throw new CliError(
    `run ${run.runId} would halt again: tenant ${run.tenant} has 0 actions left in ${usage.period.key} and the run needs at least ${needed} more; add some with \`flowmeter quota add --tenant ${run.tenant} --actions N\``,
    EXIT.halted,
  );
}
