/** Checks before a command starts work that could not go anywhere: fail fast, in one line. */

import { instantsBetween } from '../../core/cron.js';
import type { RunRecord } from '../../core/types.js';
import type { Production } from '../../redis/production.js';
import { estimateScenario, MAX_FIRINGS } from '../../scenario/estimate.js';
import type { Scenario } from '../../scenario/schema.js';
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

/**
 * For a billable cron scenario being enabled: one warning line when its firings until the
 * end of the tenant's billing period would cost more than the actions the tenant has left,
 * with the numbers; undefined when they fit (or the scenario is not cron or not billable).
 */
export async function cronBudgetWarning(p: Production, tenant: string, scenario: Scenario, now = new Date()): Promise<string | undefined> {
  if (scenario.trigger.type !== 'cron' || scenario.billable === false) return undefined;
  const { schedule, timezone } = scenario.trigger;
  const usage = await p.ledger.usage(tenant, now);
  // instantsBetween takes (from, to]: a firing at the period's end belongs to the next one.
  const firings = instantsBetween(schedule, timezone ?? 'UTC', now, new Date(Date.parse(usage.period.end) - 1), MAX_FIRINGS + 1);
  const capped = firings.length > MAX_FIRINGS;
  const n = Math.min(firings.length, MAX_FIRINGS);
  const { min, max } = estimateScenario(scenario).perRun;
  if (n * max <= usage.remaining) return undefined;
  const cost = min === max ? `${n * min}` : `${n * min} to ${n * max}`;
  return `warning: ${scenario.id} fires ${capped ? 'more than ' : ''}${n} times by the end of ${usage.period.key} (${usage.period.end}), ${capped ? 'more than ' : ''}${cost} actions (${min === max ? min : `${min} to ${max}`} a run), and tenant ${tenant} has ${usage.remaining} actions left`;
}
