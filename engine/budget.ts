/**
 * A run's budget: the actions it holds from the tenant's pool. Actions are taken one at a
 * time from a local lease and settled in batches with the checkpoints, so metering costs a
 * round trip per batch, not per action. The limit is never passed (held actions count
 * against it), a run never halts while other runs still hold unused actions (it waits for
 * them), and a key already billed is never billed again.
 */
import type { LeaseResult, Meter, SettleEntry, Settlement } from '../metering/meter.js';

/** The first lease of a run, unless BudgetOptions say otherwise. */
export const FIRST_LEASE = 16;
/** Most actions one `ensure` asks for beyond those held (a loop batch's lease ahead). */
export const MAX_LEASE_AHEAD = 4096;

export interface BudgetOptions {
  /** First lease size; it doubles with each lease up to `maxLease` (default 16). */
  firstLease?: number;
  /** Largest lease (default 256). */
  maxLease?: number;
  /** Longest wait for other runs' held actions before halting, ms (default 5 minutes). */
  maxWaitMs?: number;
  owner?: () => string | undefined;
}

export class Budget {
  private held = 0;
  private heldUsed = 0;
  /** Actions granted in allow mode: not held against the limit. */
  private free = 0;
  private period: string | null = null;
  private entries: SettleEntry[] = [];
  private want: number;
  /** The instant (ms) `take` last found the period and local date of, and that date. */
  private lastAt = Number.NaN;
  private lastDate = '';
  /** Leases ahead still asking the meter. */
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly meter: Meter,
    private readonly run: { tenant: string; runId: string; scenarioId: string; billable: boolean },
    private readonly opts: BudgetOptions = {},
    /** A lease already granted for the run (with its claim). */
    initial?: LeaseResult,
  ) {
    this.want = opts.firstLease ?? FIRST_LEASE;
    if (initial && initial.granted > 0) {
      if (initial.held) this.held = initial.granted;
      else this.free = initial.granted;
      this.period = initial.period;
      this.want = Math.min(this.want * 2, opts.maxLease ?? 256);
    }
  }

  /**
   * Takes one action for task `key` spent on `node` (per-node counts); false when the quota is
   * exhausted (the run must halt).
   */
  async take(key: string, at: Date, trigger = false, node?: string): Promise<boolean> {
    const p = this.meter.periodOf(this.run.tenant, at);
    const { period, date } = p instanceof Promise ? await p : p;
    if (this.period !== null && period !== this.period) await this.flushTo(period); // a new month
    this.period = period;
    this.lastAt = at.getTime();
    this.lastDate = date;
    if (!this.run.billable) {
      this.entries.push({ key, trigger, date, node });
      return true;
    }
    if (this.held === 0 && this.free === 0) {
      if (!(await this.lease(at))) return false;
    }
    if (this.held > 0) {
      this.held--;
      this.heldUsed++;
    } else {
      this.free--;
    }
    this.entries.push({ key, trigger, date, node });
    return true;
  }

  /**
   * `take` when it needs no wait: `at` is in the minute of the instant `take` last saw (so the
   * same period and local date) and an action is at hand. Undefined otherwise (then call `take`).
   */
  takeSync(key: string, at: Date, trigger = false, node?: string): boolean | undefined {
    // Within the same UTC minute the period and local date cannot change: every time zone's
    // offset is a whole number of minutes (since the 1970s), so local midnight falls on one.
    const t = at.getTime();
    if (t !== this.lastAt && (t < this.lastAt || Math.floor(t / 60_000) !== Math.floor(this.lastAt / 60_000))) return undefined;
    if (this.run.billable) {
      if (this.held > 0) {
        this.held--;
        this.heldUsed++;
      } else if (this.free > 0) this.free--;
      else return undefined;
    }
    this.entries.push({ key, trigger, date: this.lastDate, node });
    return true;
  }

  private async lease(at: Date): Promise<boolean> {
    const deadline = Date.now() + (this.opts.maxWaitMs ?? 300_000);
    let pause = 2;
    for (;;) {
      const r = await this.meter.lease({ tenant: this.run.tenant, runId: this.run.runId, want: this.want, at, owner: this.opts.owner?.() });
      this.want = Math.min(this.want * 2, this.opts.maxLease ?? 256);
      if (r.granted > 0) {
        if (r.held) this.held += r.granted;
        else this.free += r.granted;
        if (this.period !== r.period) this.period = r.period;
        return true;
      }
      // Spent but unsettled actions still count as held: settle ours first, so that runs
      // waiting on each other cannot deadlock, then ask again.
      if (this.dirty) {
        const own = this.settlement(false, at);
        if (own) await this.meter.settle(own);
        continue;
      }
      if (!r.othersHold || Date.now() > deadline) return false;
      // Other runs hold unused actions: they will spend or return them. Wait, don't halt.
      await new Promise((res) => setTimeout(res, pause));
      pause = Math.min(pause * 2, 50);
    }
  }

  /**
   * Leases ahead for work computed in one piece (a loop batch): when fewer than `n` actions are
   * held, asks the meter once for the difference (at most MAX_LEASE_AHEAD); never waits for
   * other runs and never halts. Resolves to `room()`, which may stay below `n` (the quota).
   * Leases are exact: what is not spent is given back at the final settlement.
   */
  ensure(n: number, at: Date): Promise<number> {
    const p = this.leaseAhead(n, at);
    // settle(final) must see what it leased: the run awaits `drain()` before its last settlement.
    const done = p.then(
      () => undefined,
      () => undefined,
    );
    this.inflight = this.inflight ? Promise.all([this.inflight, done]).then(() => undefined) : done;
    return p;
  }

  /** Waits until no `ensure` is still asking the meter (before the final settlement). */
  async drain(): Promise<void> {
    while (this.inflight) {
      const p = this.inflight;
      await p;
      if (this.inflight === p) this.inflight = null;
    }
  }

  private async leaseAhead(n: number, at: Date): Promise<number> {
    const room = this.room();
    if (room >= n || this.period === null) return room;
    const p = this.meter.periodOf(this.run.tenant, at);
    // At a month boundary take() settles the old month first: lease nothing ahead across it.
    if ((p instanceof Promise ? await p : p).period !== this.period) return this.room();
    const want = Math.min(Math.ceil(n - room), MAX_LEASE_AHEAD);
    const r = await this.meter.lease({ tenant: this.run.tenant, runId: this.run.runId, want, at, owner: this.opts.owner?.() });
    if (r.granted > 0 && r.period === this.period) {
      if (r.held) this.held += r.granted;
      else this.free += r.granted;
    } else if (r.granted > 0 && r.held) {
      // The month changed in between: give that lease back at once.
      const { tenant, runId, scenarioId, billable } = this.run;
      await this.meter.settle({ tenant, runId, scenarioId, billable, period: r.period, entries: [], heldUsed: 0, release: r.granted, at });
    }
    return this.room();
  }

  /** Actions `take` can grant now without asking the meter (unbounded for a non-billable run). */
  room(): number {
    return this.run.billable ? this.held + this.free : Infinity;
  }

  /** Whether anything waits to be settled. */
  get dirty(): boolean {
    return this.entries.length > 0 || this.heldUsed > 0;
  }

  /**
   * What to settle now: the spent entries, and with `final` the unused held actions too.
   * The budget forgets them; the caller must hand the settlement to the store or meter.
   */
  settlement(final: boolean, at: Date): Settlement | null {
    // A final settlement is made even when empty: it closes the run's lease bookkeeping.
    if (this.period === null || (!this.dirty && !final)) return null;
    const s: Settlement = {
      tenant: this.run.tenant,
      runId: this.run.runId,
      scenarioId: this.run.scenarioId,
      billable: this.run.billable,
      period: this.period,
      entries: this.entries,
      heldUsed: this.heldUsed,
      release: final ? this.held : 0,
      at,
    };
    this.entries = [];
    this.heldUsed = 0;
    if (final) this.held = 0;
    return s;
  }

  /** At a month boundary: settle the old month and give its unused actions back. */
  private async flushTo(period: string): Promise<void> {
    const s = this.settlement(true, new Date());
    if (s) await this.meter.settle(s);
    this.free = 0;
    this.period = period;
  }
}
