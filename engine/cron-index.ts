/**
 * The cron index (SPEC §6): which enabled cron scenarios are due when, so the scheduler reads
 * only what is due instead of listing every tenant each second.
 *
 * An entry per enabled cron scenario, kept by the scenario store as scenarios are deployed,
 * enabled, disabled, deleted or rolled back:
 *
 * - `next`: the instant (ms) the scheduler should look at it again: its next firing, or a
 *   negative *fresh marker* (unique per write) meaning "just enabled or redeployed: start
 *   by the scheduler's own rules" (its previous tick, or its catch-up window on start);
 * - `cursor`: everything at or before this instant (ms) has been dealt with (none before a
 *   scheduler handled the entry since it was enabled or redeployed).
 *
 * The scheduler moves an entry on with `advance`, a compare-and-set on the `next` it read:
 * a store write in between (a fresh marker) or another scheduler's move makes it a no-op, so
 * neither a redeploy nor a concurrent scheduler is overwritten with a stale schedule.
 */

/** One due entry, as read. */
export interface CronEntry {
  tenant: string;
  scenarioId: string;
  /** `next` exactly as stored (the compare-and-set compares it). */
  token: string;
  /** `next` as a number: negative for a fresh marker. */
  next: number;
  cursor: number | null;
}

export interface CronIndex {
  /** Shards of the index (each read separately); 1 for the in-memory twin. */
  readonly shards: number;
  /**
   * Entries of `shard` with `next` ≤ `to`, lowest first, skipping the first `offset` (those a
   * previous page of this tick left due), at most `limit`.
   */
  due(shard: number, to: number, offset: number, limit: number): Promise<CronEntry[]>;
  /**
   * If the entry still has the `next` it was read with: sets `next` (null removes the entry and
   * its cursor) and raises the cursor to `cursor` (never lowers it). Returns whether it did.
   */
  advance(entry: CronEntry, next: number | null, cursor: number): Promise<boolean>;
  /**
   * A scenario became an enabled cron scenario, or was redeployed: a fresh marker, and its
   * cursor goes (it starts afresh). `ifAbsent` only adds a missing entry (a repair).
   */
  schedule(tenant: string, scenarioId: string, o?: { ifAbsent?: boolean }): Promise<void>;
  /** The scenario no longer fires (disabled, deleted, no longer cron): entry and cursor go. */
  unschedule(tenant: string, scenarioId: string): Promise<void>;
  /** Builds a missing index once (data from before it existed); the scheduler calls it on start. */
  prepare?(): Promise<void>;
}

let lastMarker = 0;
/** A fresh marker: negative, and unique per write within a process (and across, by chance: 2^52). */
export function freshMarker(): number {
  let m = -(1 + Math.floor(Math.random() * 2 ** 52));
  if (m === lastMarker) m -= 1;
  lastMarker = m;
  return m;
}

/** The member naming a scenario in the index. */
export function cronMember(tenant: string, scenarioId: string): string {
  return `${tenant}\u0000${scenarioId}`;
}

/** The tenant and scenario of a member. */
export function parseCronMember(member: string): { tenant: string; scenarioId: string } {
  const i = member.indexOf('\u0000');
  return { tenant: member.slice(0, i), scenarioId: member.slice(i + 1) };
}

/** The in-memory twin (embedded mode). */
export class MemoryCronIndex implements CronIndex {
  readonly shards = 1;
  private readonly next = new Map<string, number>();
  private readonly cursors = new Map<string, number>();

  async due(_shard: number, to: number, offset: number, limit: number): Promise<CronEntry[]> {
    return [...this.next]
      .filter(([, n]) => n <= to)
      .sort(([ma, a], [mb, b]) => a - b || (ma < mb ? -1 : ma > mb ? 1 : 0))
      .slice(offset, offset + limit)
      .map(([member, n]) => ({ ...parseCronMember(member), token: String(n), next: n, cursor: this.cursors.get(member) ?? null }));
  }
  async advance(e: CronEntry, next: number | null, cursor: number): Promise<boolean> {
    const member = cronMember(e.tenant, e.scenarioId);
    if (this.next.get(member) !== e.next) return false;
    if (next === null) {
      this.next.delete(member);
      this.cursors.delete(member);
      return true;
    }
    this.next.set(member, next);
    if (cursor > (this.cursors.get(member) ?? Number.NEGATIVE_INFINITY)) this.cursors.set(member, cursor);
    return true;
  }
  async schedule(tenant: string, scenarioId: string, o: { ifAbsent?: boolean } = {}): Promise<void> {
    const member = cronMember(tenant, scenarioId);
    if (o.ifAbsent && this.next.has(member)) return;
    this.next.set(member, freshMarker());
    this.cursors.delete(member);
  }
  async unschedule(tenant: string, scenarioId: string): Promise<void> {
    const member = cronMember(tenant, scenarioId);
    this.next.delete(member);
    this.cursors.delete(member);
  }
}
