/**
 * Auto-resume (SPEC §11, quota field `resumeHalted`): with `auto` (the default), runs halted for
 * quota resume by themselves, oldest first, as soon as actions are available again (the quota
 * raised, an add-on bought, a new period), as far as the allowance goes.
 *
 * A tenant's halted runs wait in a queue ordered by start time. One run at a time is resumed
 * per tenant (its "turn"): when it ends (succeeded, or halted again), the next one is taken if
 * actions remain; so an allowance enough for one run resumes the oldest and leaves the others
 * halted. Taking a run and its turn is one atomic step of the `HaltedRuns` store (a Lua script
 * on Redis), so each halted run is resumed once whatever the number of processes.
 * Triggers: a run's end (`ended`), a raised allowance (`kick`), and a periodic `sweep` (period
 * rollover, and actions returned by runs that ended).
 */
import { errorCode } from '../core/errors.js';
import type { RunRecord } from '../core/types.js';
import type { Ledger } from '../metering/ledger.js';

/** How often a process with workers looks at halted runs (period rollover, returned actions), ms. */
export const AUTO_RESUME_SWEEP_MS = 60_000;

/**
 * Every AUTO_RESUME_SWEEP_MS: halted runs resume when actions are back (a new period, actions
 * returned by ended runs), and period resets are notified. The timer does not keep the process
 * alive; clear it on close.
 */
export function startSweeps(o: {
  autoResume: () => AutoResumer | null;
  tenants: () => Promise<string[]>;
  notifyResets?: (tenants: string[], at: Date) => Promise<void> | void;
  now?: () => Date;
}): NodeJS.Timeout {
  return setInterval(() => {
    void o
      .autoResume()
      ?.sweep()
      .catch(() => undefined);
    void o
      .tenants()
      .then((ts) => o.notifyResets?.(ts, o.now?.() ?? new Date()))
      .catch(() => undefined);
  }, AUTO_RESUME_SWEEP_MS).unref();
}

/** A run's end, as the halted-run store needs it. */
export interface EndedRun {
  runId: string;
  /** It halted for quota: it joins the tenant's halted runs. */
  halted: boolean;
  /** Its place in the queue (the run's start, ms): oldest first. */
  score: number;
}

/** A tenant's halted runs, with the turn of the one being resumed. */
export interface HaltedRuns {
  /**
   * Records `ended` (a halt joins the queue; the run whose turn it was gives the turn up), then,
   * when resumeHalted is auto, no run has the turn and actions are available at `at`, takes the
   * oldest halted run and gives it the turn. Atomic. Returns its id, or null.
   */
  step(tenant: string, at: Date, ended?: EndedRun): Promise<string | null>;
  /** Tenants that have had halted runs (for the periodic sweep). */
  tenants(): Promise<string[]>;
}

export interface AutoResumerOptions {
  /** Continues a halted run (the platform's resume: it enqueues or starts it). */
  resume: (tenant: string, runId: string) => Promise<void>;
  now?: () => Date;
  /** Called for each run that halted for quota (notifications). */
  onQuotaHalt?: (run: RunRecord) => void;
}

/** Whether a run ended halted because the quota was exhausted. */
export function haltedForQuota(run: RunRecord): boolean {
  return run.status === 'halted' && run.error?.code === 'QUOTA_EXHAUSTED';
}

export class AutoResumer {
  constructor(
    private readonly halted: HaltedRuns,
    private readonly opts: AutoResumerOptions,
  ) {}

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  /** After a run has ended. `resumed`: it had been resumed or recovered (it may hold the turn). */
  async ended(run: RunRecord, resumed: boolean): Promise<void> {
    const halted = haltedForQuota(run);
    if (halted) this.opts.onQuotaHalt?.(run);
    if (!halted && !resumed) return; // nothing to record: no store round trip on the hot path
    const score = Date.parse(run.startedAt ?? '') || Date.now();
    await this.next(run.tenant, this.halted.step(run.tenant, this.now(), { runId: run.runId, halted, score }));
  }

  /** Actions may be available again for the tenant. */
  async kick(tenant: string): Promise<void> {
    await this.next(tenant, this.halted.step(tenant, this.now()));
  }

  /** Kicks every tenant that has had halted runs (period rollover; actions returned). */
  async sweep(): Promise<void> {
    for (const tenant of await this.halted.tenants()) await this.kick(tenant);
  }

  private async next(tenant: string, first: Promise<string | null>): Promise<void> {
    let runId = await first;
    while (runId) {
      try {
        await this.opts.resume(tenant, runId);
        return;
      } catch (err) {
        const code = errorCode(err);
        if (code !== 'RUN_NOT_HALTED' && code !== 'NOT_FOUND') throw err;
        // Resumed by hand meanwhile, or expired: give its turn up and take the next.
        runId = await this.halted.step(tenant, this.now(), { runId, halted: false, score: 0 });
      }
    }
  }
}

/** The memory twin of the halted-run store (embedded mode). */
export class MemoryHaltedRuns implements HaltedRuns {
  private readonly queues = new Map<string, Map<string, number>>();
  private readonly turns = new Map<string, string>();

  constructor(private readonly ledger: Ledger) {}

  async step(tenant: string, at: Date, ended?: EndedRun): Promise<string | null> {
    if (ended) {
      if (ended.halted) this.queue(tenant).set(ended.runId, ended.score);
      if (this.turns.get(tenant) === ended.runId) this.turns.delete(tenant);
    }
    const quota = await this.ledger.getQuota(tenant);
    const usage = await this.ledger.usage(tenant, at);
    // From here on synchronous: no other step of this process interleaves.
    if (quota.resumeHalted === 'manual' || this.turns.has(tenant)) return null;
    if (quota.overage !== 'allow' && usage.remaining <= 0) return null;
    const queue = this.queue(tenant);
    let oldest: [string, number] | null = null;
    for (const e of queue) if (!oldest || e[1] < oldest[1] || (e[1] === oldest[1] && e[0] < oldest[0])) oldest = e;
    if (!oldest) return null;
    queue.delete(oldest[0]);
    this.turns.set(tenant, oldest[0]);
    return oldest[0];
  }

  async tenants(): Promise<string[]> {
    return [...this.queues.keys()];
  }

  private queue(tenant: string): Map<string, number> {
    let q = this.queues.get(tenant);
    if (!q) this.queues.set(tenant, (q = new Map()));
    return q;
  }
}
