/**
 * Before resuming a halted run: would it only halt again? A billable run of a tenant whose
 * overage is `halt` and who has no action left re-halts at once and records a second halted
 * task, so the CLI (`runs resume`) and the API (`POST /api/runs/:id/resume`) refuse it up front
 * with the same code and message, naming how many actions are missing.
 */
import type { RunRecord } from '../core/types.js';
import type { Ledger } from '../metering/ledger.js';

/** Why a resume is refused: the numbers its message names. */
export interface ResumeRefusal {
  /** Always QUOTA_EXHAUSTED. */
  code: 'QUOTA_EXHAUSTED';
  message: string;
  /** The billing period (`YYYY-MM`) with no action left. */
  period: string;
  /** When that period ends (ISO instant): actions are available again then. */
  periodEnd: string;
  remaining: number;
  /** The fewest actions the run needs to make progress: one per pending work item. */
  needed: number;
}

/** The refusal for resuming `run` now, or null when the resume can make progress. */
export async function resumeRefusal(ledger: Pick<Ledger, 'getQuota' | 'usage'>, run: RunRecord, at: Date = new Date()): Promise<ResumeRefusal | null> {
  if (!run.billable) return null;
  const [quota, usage] = await Promise.all([ledger.getQuota(run.tenant), ledger.usage(run.tenant, at)]);
  if (quota.overage !== 'halt' || usage.remaining > 0) return null;
  const needed = Math.max(1, run.pending?.items.length ?? 1);
  return {
    code: 'QUOTA_EXHAUSTED',
    message: `run ${run.runId} would halt again: tenant ${run.tenant} has 0 actions left in ${usage.period.key} and the run needs at least ${needed} more; add some with \`flowmeter quota add --tenant ${run.tenant} --actions N\``,
    period: usage.period.key,
    periodEnd: usage.period.end,
    remaining: usage.remaining,
    needed,
  };
}
