/**
 * One due entry of the cron index (see scheduler.ts): where its firings start, each instant
 * through `platform.fire` (oldest first, at most `maxPerTick`), then the entry moved on.
 */
import { instantsBetween, nextInstants } from '../core/cron.js';
import type { CronEntry } from '../engine/cron-index.js';
import type { Platform } from '../engine/platform.js';
import { refusalOf } from '../metering/refusal.js';
import type { Scenario } from '../scenario/schema.js';
import { errorText, type FailureLog, type SchedulerLogger } from './failure-log.js';

type CronTrigger = Extract<Scenario['trigger'], { type: 'cron' }>;

/** What firing an entry takes from its scheduler. */
export interface EntryFiringOptions {
  log: SchedulerLogger;
  failures: FailureLog;
  /** Overrides every scenario's `trigger.catchUp` (SchedulerOptions.catchUpMs). */
  catchUpMs: number | undefined;
  /** Most instants fired per scenario per tick. */
  maxPerTick: number;
  /** An instant due for less than this (ms) is one a live scheduler is about to fire. */
  liveMs: number;
  /** When the scheduler started, ms (set before its first entry is fired). */
  startedAt(): number;
}

/**
 * Fires the due instants of one entry and moves it on; resolves with the number triggered.
 * `fresh`: where an entry not handled yet starts unless `initial` (present at start).
 */
export type FireEntry = (e: CronEntry, to: number, fresh: number, initial: boolean) => Promise<number>;

export const entryKey = (tenant: string, id: string) => `${tenant}\u0000${id}`;

export function entryFiring(platform: Platform, opts: EntryFiringOptions): FireEntry {
  const { log, maxPerTick, liveMs } = opts;
  const { fail, ok } = opts.failures;
  const index = platform.scenarios.cron;
  /** Scenarios whose schedule could not be computed, with the trigger that failed. */
  const badSchedules = new Map<string, string>();
  /** Tenants (and whether billable) whose firings are not fired for quota, with the period: logged once. */
  const uncounted = new Map<string, string>();

  function catchUpOf(trigger: CronTrigger): number {
    return opts.catchUpMs ?? trigger.catchUp ?? 0;
  }

  /**
   * Whether the quota refuses the scenario's firings now (metering/refusal.ts), with the
   * period: a billable firing is then recorded by the engine as rejected; a non-billable one
   * (its non-billable actions used up) is not fired. Best effort; a failure here never stops a
   * firing.
   */
  async function refusedNow(tenant: string, scenario: Scenario): Promise<{ period: string; billable: boolean } | null> {
    try {
      const at = new Date(); // the engine bills by its own (system) clock
      const [quota, usage] = await Promise.all([platform.ledger.getQuota(tenant), platform.ledger.usage(tenant, at)]);
      return refusalOf(scenario, { type: 'cron' }, quota, usage) === null ? null : { period: usage.period.key, billable: scenario.billable !== false };
    } catch {
      return null;
    }
  }

  /**
   * Whether a firing refused for quota is still recorded: past FLOWMETER_REJECTED_RUNS refused
   * triggers of the tenant this period it is only counted (a tenant's thousands of cron
   * scenarios firing every minute with no action left would fill the store, unbilled).
   */
  async function recordable(tenant: string, period: string): Promise<boolean> {
    try {
      return (await platform.rejected.count(tenant, period)) <= platform.rejected.maxRecords;
    } catch {
      return true;
    }
  }

  /**
   * Where an entry's firings start (exclusive): its cursor; but an instant that has been due
   * for a while (no scheduler ran: this one just started) fires only within this scheduler's
   * catch-up window. An entry not handled since it was enabled or redeployed starts at the
   * catch-up window when this scheduler finds it on its first read ("present at start"), else
   * at the previous tick (enabled while running: its past never fires).
   */
  function fromOf(e: CronEntry, trigger: CronTrigger, to: number, fresh: number, initial: boolean): number {
    const startedAt = opts.startedAt();
    const bound = startedAt - catchUpOf(trigger);
    if (e.cursor !== null) return e.cursor >= bound || e.next >= startedAt - liveMs ? e.cursor : bound;
    return Math.min(initial ? bound : fresh, to);
  }

  return async function fireEntry(e, to, fresh, initial) {
    const { tenant, scenarioId } = e;
    const fields = { tenant, scenarioId };
    const [scenario, enabled] = await Promise.all([platform.scenarios.get(tenant, scenarioId), platform.scenarios.isEnabled(tenant, scenarioId)]);
    if (!scenario || !enabled || scenario.trigger.type !== 'cron') {
      // Disabled or deleted since (its store write removes the entry too): forget it.
      await index.advance(e, null, to);
      return 0;
    }
    const trigger = scenario.trigger as CronTrigger;
    const { schedule, timezone = 'UTC' } = trigger;
    const k = entryKey(tenant, scenarioId);
    const scheduleId = `${schedule}\u0000${timezone}`;
    const from = fromOf(e, trigger, to, fresh, initial);
    let instants: Date[];
    try {
      instants = instantsBetween(schedule, timezone, new Date(from), new Date(to), maxPerTick);
      badSchedules.delete(k);
    } catch (err) {
      // Not a store failure: it will not get better until the scenario is redeployed (which
      // marks the entry fresh again); until then it is not due.
      if (badSchedules.get(k) !== scheduleId) {
        badSchedules.set(k, scheduleId);
        log.warn({ ...fields, schedule, timezone, err: errorText(err) }, 'scheduler: cannot compute the schedule; the scenario does not fire');
      }
      await index.advance(e, Number.POSITIVE_INFINITY, to);
      return 0;
    }
    let fired = 0;
    let cursor = from;
    let exhausted: Promise<{ period: string; billable: boolean } | null> | null = null;
    let complete = instants.length < maxPerTick;
    for (const instant of instants) {
      const iso = instant.toISOString();
      const context = `fire\u0000${k}`;
      try {
        const refused = await (exhausted ??= refusedNow(tenant, scenario));
        const rejected = refused?.period ?? null;
        if (refused !== null && (!refused.billable || !(await recordable(tenant, refused.period)))) {
          const once = `${tenant}\u0000${refused.billable}`;
          if (uncounted.get(once) !== refused.period) {
            uncounted.set(once, refused.period);
            log.warn(
              { ...fields, instant: iso },
              refused.billable
                ? "scheduler: the tenant's quota is exhausted and its refused triggers this period are past FLOWMETER_REJECTED_RUNS: firings are counted, not recorded (logged once per tenant and period)"
                : "scheduler: the tenant's non-billable actions this period have reached its quota: non-billable firings are not fired (logged once per tenant and period)",
            );
          }
          cursor = instant.getTime();
          continue;
        }
        const { run, created } = await platform.fire(tenant, scenarioId, trigger.input ?? null, { type: 'cron', firedAt: iso, instant: iso }, instant);
        if (created) {
          fired++;
          if (rejected !== null) {
            log.warn(
              { ...fields, instant: iso, runId: run.runId },
              "scheduler: fired, but the tenant's quota is exhausted: the run is recorded as rejected (QUOTA_EXHAUSTED)",
            );
          } else {
            log.info({ ...fields, instant: iso, runId: run.runId }, 'scheduler: fired');
          }
        }
        ok(context, fields, 'firing');
      } catch (err) {
        fail(context, { ...fields, instant: iso }, err, 'firing');
        // The cursor stays before this instant: it is due again, tried next tick.
        complete = false;
        break;
      }
      cursor = instant.getTime();
    }
    if (complete) cursor = to;
    // The next instant after the cursor: due at once when firing stopped early.
    const next = nextInstants(schedule, timezone, new Date(cursor), 1)[0]?.getTime() ?? Number.POSITIVE_INFINITY;
    await index.advance(e, next, cursor);
    return fired;
  };
}
