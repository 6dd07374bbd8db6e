/**
 * The ledger: a Meter that also keeps quotas, add-ons, alerts and the usage report.
 * `MemoryLedger` is the embedded default; `RedisLedger` does the same atomically in Lua.
 */
import type { LeaseRequest, LeaseResult, Meter, Settlement } from './meter.js';
import type { MeterName } from '../core/types.js';
import { localDate, periodAt, periodByKey } from './periods.js';
import { buildReport, DEFAULT_QUOTA, emptyCounters, quotaSchema, type PeriodCounters, type Quota, type QuotaPatch, type UsageReport } from './quota.js';

export interface Alert {
  tenant: string;
  period: string;
  threshold: number;
  used: number;
  limit: number;
  at: string;
}

export interface Ledger extends Meter {
  getQuota(tenant: string): Promise<Quota>;
  setQuota(tenant: string, patch: QuotaPatch): Promise<Quota>;
  /** Adds extra actions to the period containing `at` only. */
  addActions(tenant: string, actions: number, at: Date): Promise<void>;
  usage(tenant: string, at: Date, periodKey?: string): Promise<UsageReport>;
}

export interface LedgerOptions {
  /** Called once per threshold per period when used actions cross it. */
  onAlert?: (alert: Alert) => void;
}

export class MemoryLedger implements Ledger {
  private quotas = new Map<string, Quota>();
  private counters = new Map<string, PeriodCounters>();
  private billed = new Set<string>();
  /** Actions held by runs, per tenant and period (`tenant\0period` → total, and per run). */
  private leased = new Map<string, { total: number; byRun: Map<string, number> }>();

  private leases(tenant: string, period: string) {
    const k = `${tenant}\u0000${period}`;
    let l = this.leased.get(k);
    if (!l) this.leased.set(k, (l = { total: 0, byRun: new Map() }));
    return l;
  }

  periodOf(tenant: string, at: Date): { period: string; date: string } {
    const tz = (this.quotas.get(tenant) ?? DEFAULT_QUOTA).timezone;
    return { period: periodAt(at, tz).key, date: localDate(at, tz) };
  }

  lease(req: LeaseRequest): LeaseResult {
    const quota = this.quotas.get(req.tenant) ?? DEFAULT_QUOTA;
    const { period } = this.periodOf(req.tenant, req.at);
    if (quota.overage === 'allow') return { granted: req.want, held: false, othersHold: false, period };
    const c = this.periodCounters(req.tenant, period);
    const l = this.leases(req.tenant, period);
    const avail = quota.monthlyActions + c.addOns - c.used - l.total;
    if (avail <= 0) return { granted: 0, held: true, othersHold: l.total - (l.byRun.get(req.runId) ?? 0) > 0, period };
    // At most a quarter of what is left: runs near the limit share the remainder.
    const granted = Math.min(req.want, Math.max(1, Math.floor(avail / 4)));
    l.total += granted;
    l.byRun.set(req.runId, (l.byRun.get(req.runId) ?? 0) + granted);
    return { granted, held: true, othersHold: false, period };
  }

  settle(s: Settlement): void {
    const quota = this.quotas.get(s.tenant) ?? DEFAULT_QUOTA;
    const c = this.periodCounters(s.tenant, s.period);
    let billedNow = 0;
    for (const e of s.entries) {
      const id = `${s.tenant}\u0000${s.runId}\u0000${e.key}`;
      if (this.billed.has(id)) continue;
      this.billed.add(id);
      billedNow++;
      if (s.billable) {
        c.used++;
        if (c.used > quota.monthlyActions + c.addOns) c.overage++;
        c.scenarioActions[s.scenarioId] = (c.scenarioActions[s.scenarioId] ?? 0) + 1;
        c.days[e.date] = (c.days[e.date] ?? 0) + 1;
        if (e.trigger) c.scenarioRuns[s.scenarioId] = (c.scenarioRuns[s.scenarioId] ?? 0) + 1;
      } else c.nonBillable++;
      if (e.trigger) c.meters.runs = (c.meters.runs ?? 0) + 1;
    }
    const back = s.heldUsed + s.release;
    if (back > 0) {
      const l = this.leases(s.tenant, s.period);
      l.total -= back;
      const mine = (l.byRun.get(s.runId) ?? 0) - back;
      if (mine > 0) l.byRun.set(s.runId, mine);
      else l.byRun.delete(s.runId);
    }
    if (s.billable && billedNow > 0) this.checkAlerts(s.tenant, s.period, quota, c, s.at);
  }

  private checkAlerts(tenant: string, period: string, quota: Quota, c: PeriodCounters, at: Date): void {
    for (const t of quota.alerts) {
      if (c.used >= Math.ceil(t * quota.monthlyActions) && !(String(t) in c.alerts)) {
        c.alerts[String(t)] = at.toISOString();
        this.opts.onAlert?.({ tenant, period, threshold: t, used: c.used, limit: quota.monthlyActions, at: at.toISOString() });
      }
    }
  }

  constructor(private readonly opts: LedgerOptions = {}) {}

  private periodCounters(tenant: string, key: string): PeriodCounters {
    const k = `${tenant}\u0000${key}`;
    let c = this.counters.get(k);
    if (!c) this.counters.set(k, (c = emptyCounters()));
    return c;
  }

  count(tenant: string, name: MeterName | 'runs', amount: number, at: Date): void {
    const quota = this.quotas.get(tenant) ?? DEFAULT_QUOTA;
    const c = this.periodCounters(tenant, periodAt(at, quota.timezone).key);
    c.meters[name] = (c.meters[name] ?? 0) + amount;
  }

  async getQuota(tenant: string): Promise<Quota> {
    return structuredClone(this.quotas.get(tenant) ?? DEFAULT_QUOTA);
  }

  async setQuota(tenant: string, patch: QuotaPatch): Promise<Quota> {
    const next = quotaSchema.parse({ ...(this.quotas.get(tenant) ?? DEFAULT_QUOTA), ...patch });
    this.quotas.set(tenant, next);
    return structuredClone(next);
  }

  async addActions(tenant: string, actions: number, at: Date): Promise<void> {
    if (!Number.isInteger(actions) || actions <= 0) throw new Error('add-on actions must be a positive integer');
    const quota = this.quotas.get(tenant) ?? DEFAULT_QUOTA;
    this.periodCounters(tenant, periodAt(at, quota.timezone).key).addOns += actions;
  }

  async usage(tenant: string, at: Date, periodKey?: string): Promise<UsageReport> {
    const quota = this.quotas.get(tenant) ?? DEFAULT_QUOTA;
    const period = periodKey ? periodByKey(periodKey, quota.timezone) : periodAt(at, quota.timezone);
    return buildReport(tenant, period, quota, structuredClone(this.periodCounters(tenant, period.key)), at);
  }
}
