/**
 * The ledger: a Meter that also keeps quotas, add-ons, alerts and the usage report.
 * `MemoryLedger` is the embedded default; `RedisLedger` does the same atomically in Lua.
 */

import type { ConnectionUse, MeterName } from '../core/types.js';
import { type AddOnOptions, type AddOnPurchase, checkAddOn, reportInstant, validAddOns } from './addons.js';
import { BilledKeys } from './billed-keys.js';
import { entryNode, type LeaseRequest, type LeaseResult, type Meter, type Settlement } from './meter.js';
import { localDate, periodAt, periodByKey } from './periods.js';
import type { Plan } from './plan.js';
import {
  buildReport,
  countConnection,
  DEFAULT_QUOTA,
  emptyCounters,
  type PeriodCounters,
  type Quota,
  type QuotaPatch,
  quotaSchema,
  type UsageReport,
  withoutUnset,
} from './quota.js';

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
  /**
   * Buys an add-on: extra actions for the period containing `at` only (until `expires`, when
   * given). The purchase is recorded with its time, for the invoice's proration.
   */
  addActions(tenant: string, actions: number, at: Date, opts?: AddOnOptions): Promise<AddOnPurchase>;
  /** The add-ons bought in a period, in the order bought. */
  addOnPurchases(tenant: string, periodKey: string): Promise<AddOnPurchase[]>;
  usage(tenant: string, at: Date, periodKey?: string): Promise<UsageReport>;
  /** The tenant's plan, or null when none is set. */
  getPlan(tenant: string): Promise<Plan | null>;
  /** Sets the plan, and the quota's `monthlyActions` to its `includedActions`. */
  setPlan(tenant: string, plan: Plan): Promise<Quota>;
  /**
   * A scenario's billed actions per node in the period containing `at`, or in period
   * `periodKey` (YYYY-MM) when given (SPEC §12 graph), for the given node ids (`$trigger` for
   * the trigger's action); see `NodeUsage`.
   */
  nodeUsage(tenant: string, scenarioId: string, nodeIds: readonly string[], at: Date, periodKey?: string): Promise<NodeUsage>;
}

/**
 * Per-node counts of a period, billed with the actions (once per task key, billable runs only):
 * `actions`, the node's billed actions (a loop's own and its iterations'); `runs`, the runs that
 * billed the node at least once (counted in the period of the run's first action on the node).
 */
export interface NodeUsage {
  period: string;
  nodes: Record<string, { actions: number; runs: number }>;
}

export interface LedgerOptions {
  /** Called once per threshold per period when used actions cross it. */
  onAlert?: (alert: Alert) => void;
  /**
   * Awaited after the quota changes or an add-on is bought (actions may be available again):
   * auto-resume hooks here. Its errors are not the caller's: they are swallowed.
   */
  onAllowanceRaised?: (tenant: string, at: Date) => void | Promise<void>;
}

/** Calls `onAllowanceRaised`, never failing the change that has already been made. */
export async function allowanceRaised(opts: LedgerOptions, tenant: string, at: Date): Promise<void> {
  try {
    await opts.onAllowanceRaised?.(tenant, at);
  } catch (err) {
    process.stderr.write(`flowmeter: auto-resume for ${tenant} failed: ${(err as Error).message}\n`);
  }
}

export class MemoryLedger implements Ledger {
  private quotas = new Map<string, Quota>();
  private counters = new Map<string, PeriodCounters>();
  /** Task keys already billed, per `tenant\0runId`. */
  private billed = new Map<string, BilledKeys>();
  private plans = new Map<string, Plan>();
  /** Add-ons bought, per `tenant\0period`. */
  private purchases = new Map<string, AddOnPurchase[]>();
  /** Actions held by runs, per tenant and period (`tenant\0period` → total, and per run). */
  private leased = new Map<string, { total: number; byRun: Map<string, number> }>();
  /** Per-node counts, per `tenant\0period\0scenario` → node → counts (see `NodeUsage`). */
  private nodeCounts = new Map<string, Map<string, { actions: number; runs: number }>>();
  /** The nodes each run has billed, as `tenant\0runId\0node` (a run counts once per node). */
  private nodeRuns = new Set<string>();

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
    const avail = quota.monthlyActions + this.addOnsAt(req.tenant, period, req.at) - c.used - l.total;
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
    const runKey = `${s.tenant}\u0000${s.runId}`;
    let billed = this.billed.get(runKey);
    if (!billed) this.billed.set(runKey, (billed = new BilledKeys()));
    let billedNow = 0;
    const nodes = new Map<string, number>(); // actions billed now per node
    let triggers = 0;
    // Per day, counted in runs of the same date (entries come in time order).
    let day: string | null = null;
    let dayCount = 0;
    for (const e of s.entries) {
      if (!billed.add(e.key)) continue;
      billedNow++;
      if (e.trigger) triggers++;
      if (s.billable && e.date !== day) {
        if (day !== null) c.days[day] = (c.days[day] ?? 0) + dayCount;
        day = e.date;
        dayCount = 0;
      }
      dayCount++;
      if (s.billable) {
        const node = entryNode(e);
        if (node !== '') nodes.set(node, (nodes.get(node) ?? 0) + 1);
      }
    }
    if (s.billable) {
      const limit = quota.monthlyActions + this.addOnsAt(s.tenant, s.period, s.at);
      if (day !== null) c.days[day] = (c.days[day] ?? 0) + dayCount;
      const before = c.used;
      c.used += billedNow;
      c.overage += Math.max(0, c.used - Math.max(before, limit));
      if (billedNow > 0) c.scenarioActions[s.scenarioId] = (c.scenarioActions[s.scenarioId] ?? 0) + billedNow;
      if (triggers > 0) c.scenarioRuns[s.scenarioId] = (c.scenarioRuns[s.scenarioId] ?? 0) + triggers;
    } else c.nonBillable += billedNow;
    if (triggers > 0) c.meters.runs = (c.meters.runs ?? 0) + triggers;
    const back = s.heldUsed + s.release;
    if (back > 0) {
      const l = this.leases(s.tenant, s.period);
      l.total -= back;
      const mine = (l.byRun.get(s.runId) ?? 0) - back;
      if (mine > 0) l.byRun.set(s.runId, mine);
      else l.byRun.delete(s.runId);
    }
    if (nodes.size > 0) this.countNodes(s, nodes);
    if (s.billable && billedNow > 0) this.checkAlerts(s.tenant, s.period, quota, c, s.at);
  }

  /** Actions billed now per node; the run counts for a node the first time it bills it. */
  private countNodes(s: Settlement, nodes: Map<string, number>): void {
    const k = `${s.tenant}\u0000${s.period}\u0000${s.scenarioId}`;
    let m = this.nodeCounts.get(k);
    if (!m) this.nodeCounts.set(k, (m = new Map()));
    for (const [node, actions] of nodes) {
      let n = m.get(node);
      if (!n) m.set(node, (n = { actions: 0, runs: 0 }));
      n.actions += actions;
      const first = `${s.tenant}\u0000${s.runId}\u0000${node}`;
      if (!this.nodeRuns.has(first)) {
        this.nodeRuns.add(first);
        n.runs++;
      }
    }
  }

  async nodeUsage(tenant: string, scenarioId: string, nodeIds: readonly string[], at: Date, periodKey?: string): Promise<NodeUsage> {
    const period = periodKey ?? this.periodOf(tenant, at).period;
    const m = this.nodeCounts.get(`${tenant}\u0000${period}\u0000${scenarioId}`);
    const nodes: NodeUsage['nodes'] = Object.create(null); // node ids may be __proto__
    for (const id of nodeIds) nodes[id] = { ...(m?.get(id) ?? { actions: 0, runs: 0 }) };
    return { period, nodes };
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

  count(tenant: string, name: MeterName | 'runs', amount: number, at: Date, conn?: ConnectionUse): void {
    const quota = this.quotas.get(tenant) ?? DEFAULT_QUOTA;
    const c = this.periodCounters(tenant, periodAt(at, quota.timezone).key);
    c.meters[name] = (c.meters[name] ?? 0) + amount;
    if (conn) c.connections[conn.connection] = countConnection(c.connections[conn.connection], name, amount, at, conn.status);
  }

  async getQuota(tenant: string): Promise<Quota> {
    return structuredClone(this.quotas.get(tenant) ?? DEFAULT_QUOTA);
  }

  async setQuota(tenant: string, patch: QuotaPatch): Promise<Quota> {
    const next = withoutUnset(quotaSchema.parse({ ...(this.quotas.get(tenant) ?? DEFAULT_QUOTA), ...patch }));
    this.quotas.set(tenant, next);
    await allowanceRaised(this.opts, tenant, new Date());
    return structuredClone(next);
  }

  private addOnsAt(tenant: string, period: string, at: Date): number {
    return validAddOns(this.purchases.get(`${tenant}\u0000${period}`) ?? [], at);
  }

  async addActions(tenant: string, actions: number, at: Date, opts: AddOnOptions = {}): Promise<AddOnPurchase> {
    const purchase = checkAddOn(actions, at, opts);
    const quota = this.quotas.get(tenant) ?? DEFAULT_QUOTA;
    const k = `${tenant}\u0000${periodAt(at, quota.timezone).key}`;
    this.purchases.set(k, [...(this.purchases.get(k) ?? []), purchase]);
    await allowanceRaised(this.opts, tenant, at);
    return structuredClone(purchase);
  }

  async addOnPurchases(tenant: string, periodKey: string): Promise<AddOnPurchase[]> {
    return structuredClone(this.purchases.get(`${tenant}\u0000${periodKey}`) ?? []);
  }

  async usage(tenant: string, at: Date, periodKey?: string): Promise<UsageReport> {
    const quota = this.quotas.get(tenant) ?? DEFAULT_QUOTA;
    const period = periodKey ? periodByKey(periodKey, quota.timezone) : periodAt(at, quota.timezone);
    const c = structuredClone(this.periodCounters(tenant, period.key));
    c.addOns = validAddOns(this.purchases.get(`${tenant}\u0000${period.key}`) ?? [], reportInstant(period, at));
    return buildReport(tenant, period, quota, c, at);
  }

  async getPlan(tenant: string): Promise<Plan | null> {
    return structuredClone(this.plans.get(tenant) ?? null);
  }

  async setPlan(tenant: string, plan: Plan): Promise<Quota> {
    const quota = await this.setQuota(tenant, { monthlyActions: plan.includedActions });
    this.plans.set(tenant, structuredClone(plan));
    return quota;
  }
}
