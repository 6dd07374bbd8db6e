/**
 * Triggers the quota refuses (SPEC §4: recorded as `rejected` runs), bounded. A refused trigger
 * costs its tenant nothing, so what it leaves in the store must be bounded by something other
 * than the quota: before, a tenant whose actions were used up could send 0.5 MB payloads to its
 * own trigger route, each stored as a rejected run (200 requests: 100 MB of Redis), and anyone
 * could send its unsigned webhook requests that each left a 1.4 KB record for 7 days.
 *
 * - The payload (and headers) are kept, for replay, within the tenant's FLOWMETER_REJECTED_BYTES
 *   for the period; past it the record says `payloadKept: false`.
 * - Non-billable triggers (test runs, `"billable": false` scenarios) do not consume the quota
 *   (SPEC §4), but they are not free of limits either: once a tenant's non-billable actions of
 *   the period reach its quota (monthlyActions + add-ons), its next ones are refused the same
 *   way. Before, any tenant key could run without end for nothing: `"test": true` on every
 *   trigger. (Checked when a run starts: a run already going finishes.)
 * - At most FLOWMETER_REJECTED_RUNS (10,000) refused triggers of a tenant per period are
 *   recorded as runs (about 1.5 KB each without payload); past that they are counted (the count
 *   is in the 429's message) and refused with 429, no run recorded.
 */
import type { RunRecord, TriggerInfo } from '../core/types.js';
import type { Platform } from '../engine/platform.js';
import { newRun } from '../engine/run-record.js';
import { refusalOf } from '../metering/refusal.js';
import type { Scenario } from '../scenario/schema.js';
import { ApiError, secondsUntil } from './routes-common.js';

/** How long a rejected run and its payload are kept (SPEC §9). */
export const REJECTED_RETENTION_S = 7 * 86400;

/** A trigger about to start: `bytes` is the size of the request body that carried it. */
export interface Trigger {
  platform: Platform;
  scenario: Scenario;
  tenant: string;
  trigger: TriggerInfo;
  payload: unknown;
  bytes: number;
}

/** A trigger refused before it started: the run recorded (null past FLOWMETER_REJECTED_RUNS), and the 429 to answer. */
export interface Refusal {
  run: RunRecord | null;
  error: ApiError;
}

/**
 * Refuses a trigger the quota does not let start (metering/refusal.ts: a billable one while the
 * quota is exhausted, a non-billable one past its allowance), as a webhook must answer 429
 * before a run would end: records it within the bounds above. Null when the trigger may go (a
 * run racing the last action past this check is rejected by the engine as usual).
 */
export async function refuseWhenExhausted(t: Trigger): Promise<Refusal | null> {
  const { platform, scenario, tenant, trigger } = t;
  const [quota, usage] = await Promise.all([platform.ledger.getQuota(tenant), platform.ledger.usage(tenant, new Date())]);
  const reason = refusalOf(scenario, trigger, quota, usage);
  if (reason === null) return null;
  const period = usage.period.key;
  const n = await platform.rejected.count(tenant, period);
  const most = platform.rejected.maxRecords;
  if (n > most) {
    const more = `; ${n.toLocaleString('en-US')} triggers were refused this period, and past ${most.toLocaleString('en-US')} (FLOWMETER_REJECTED_RUNS) they are counted, not recorded as runs`;
    return { run: null, error: exhausted(usage.period.end, undefined, more, reason) };
  }
  const run = await recordRejected(t, period, reason);
  return { run, error: exhausted(usage.period.end, run.runId, '', reason) };
}

/**
 * Records a trigger refused for quota as a `rejected` run: 0 actions, no task, nothing enqueued,
 * kept 7 days. Its payload (and headers) are kept for replay only within the tenant's
 * FLOWMETER_REJECTED_BYTES for the period, so unpaid floods cannot fill Redis; past it the
 * record says `payloadKept: false`.
 */
async function recordRejected(t: Trigger, period: string, reason: string): Promise<RunRecord> {
  const { platform, scenario, tenant, trigger, payload, bytes } = t;
  const size = bytes + Buffer.byteLength(JSON.stringify(trigger));
  const kept = await platform.rejected.admit(tenant, period, size);
  const run = newRun(scenario, tenant, kept ? trigger : { type: trigger.type, ...(trigger.replayOf !== undefined && { replayOf: trigger.replayOf }) });
  if (!kept) run.payloadKept = false;
  await platform.runs.create(run, scenario, kept ? payload : null);
  const now = new Date().toISOString();
  const why = reason.startsWith("the tenant's actions")
    ? `tenant ${tenant} has no actions left this period`
    : reason.replace("the tenant's", `tenant ${tenant}'s`);
  const message = `${why}${kept ? '' : '; the payload was not kept (over FLOWMETER_REJECTED_BYTES this period)'}`;
  Object.assign(run, { status: 'rejected', startedAt: now, finishedAt: now, error: { code: 'QUOTA_EXHAUSTED', message } });
  await platform.runs.finish(run, []);
  await platform.rejected.expire(tenant, run.runId, REJECTED_RETENTION_S);
  return run;
}

/** 429 QUOTA_EXHAUSTED with `Retry-After` until the period ends (and the run that records it). */
export function exhausted(periodEnd: string, runId?: string, more = '', reason = "the tenant's actions for this period are used up"): ApiError {
  const seconds = secondsUntil(periodEnd);
  return new ApiError('QUOTA_EXHAUSTED', `${reason}; the period ends at ${periodEnd}${more}`, {
    headers: { 'retry-after': String(seconds) },
    details: { retryAfter: seconds, ...(runId && { runId }) },
  });
}
