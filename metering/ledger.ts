/**
 * The ledger: a Meter that also keeps quotas, add-ons, alerts and the usage report.
 * `MemoryLedger` is the embedded default; `RedisLedger` does the same atomically in Lua.
 */
import type { Meter, ReserveRequest, ReserveResult } from '../engine/stores.js';
import type { MeterName } from '../engine/define-node.js';
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

  constructor(private readonly opts: LedgerOptions = {}) {}

  private periodCounters(tenant: string, key: string): PeriodCounters {
    const k = `${tenant}\u0000${key}`;
    let c = this.counters.get(k);
    if (!c) this.counters.set(k, (c = emptyCounters()));
    return c;
  }

  reserve(req: ReserveRequest): ReserveResult {
    const id = `${req.tenant}\u0000${req.runId}\u0000${req.taskKey}`;
    if (this.billed.has(id)) return { ok: true };
    const quota = this.quotas.get(req.tenant) ?? DEFAULT_QUOTA;
    const period = periodAt(req.at, quota.timezone);
    const c = this.periodCounters(req.tenant, period.key);
    if (!req.billable) {
      c.nonBillable++;
    } else {
      const limit = quota.monthlyActions + c.addOns;
      if (c.used >= limit) {
        if (quota.overage === 'halt') return { ok: false, code: 'QUOTA_EXHAUSTED' };
        c.overage++;
      }
      c.used++;
      c.scenarioActions[req.scenarioId] = (c.scenarioActions[req.scenarioId] ?? 0) + 1;
      const day = localDate(req.at, quota.timezone);
      c.days[day] = (c.days[day] ?? 0) + 1;
      if (req.trigger) c.scenarioRuns[req.scenarioId] = (c.scenarioRuns[req.scenarioId] ?? 0) + 1;
      for (const t of quota.alerts) {
        if (c.used >= Math.ceil(t * quota.monthlyActions) && !(String(t) in c.alerts)) {
          c.alerts[String(t)] = req.at.toISOString();
          this.opts.onAlert?.({ tenant: req.tenant, period: period.key, threshold: t, used: c.used, limit: quota.monthlyActions, at: req.at.toISOString() });
        }
      }
    }
    if (req.trigger) c.meters.runs = (c.meters.runs ?? 0) + 1;
    this.billed.add(id);
    return { ok: true };
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
