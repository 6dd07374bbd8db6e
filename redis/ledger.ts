/**
 * The ledger on Redis: runs lease actions (lease.lua) and settle what they spent
 * (settle.lua, or checkpoint.lua with the run's progress), atomically, so the quota holds
 * whatever the number of workers and runs in flight, and a task key is never billed twice.
 */
import { randomUUID } from 'node:crypto';
import { type ConnectionUse, type MeterName, TRIGGER_NODE } from '../core/types.js';
import { type AddOnOptions, type AddOnPurchase, checkAddOn, reportInstant, validAddOns } from '../metering/addons.js';
import { allowanceRaised, type Ledger, type LedgerOptions, type NodeUsage } from '../metering/ledger.js';
import { entryNode, type LeaseRequest, type LeaseResult, type Settlement } from '../metering/meter.js';
import { localDate, periodAt, periodByKey } from '../metering/periods.js';
import { type Plan, parsePlan, planDocument } from '../metering/plan.js';
import {
  buildReport,
  DEFAULT_QUOTA,
  emptyCounters,
  OPTIONAL_QUOTA_FIELDS,
  type PeriodCounters,
  type Quota,
  type QuotaPatch,
  quotaSchema,
  type UsageReport,
  withoutUnset,
} from '../metering/quota.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';
import { scriptError } from './script-errors.js';
import { listTenant } from './tenant-set.js';
import { BILLED_TTL_SECONDS } from './ttl.js';

/** How long a tenant's timezone is cached for computing period keys, in ms. */
const QUOTA_CACHE_MS = 2000;

function decodeQuota(h: Record<string, string>): Quota {
  return quotaSchema.parse({
    ...(h.monthlyActions !== undefined && { monthlyActions: Number(h.monthlyActions) }),
    ...(h.overage !== undefined && { overage: h.overage }),
    ...(h.timezone !== undefined && { timezone: h.timezone }),
    ...(h.alerts !== undefined && { alerts: JSON.parse(h.alerts) }),
    ...(h.maxActiveScenarios !== undefined && { maxActiveScenarios: Number(h.maxActiveScenarios) }),
    ...(h.resumeHalted !== undefined && { resumeHalted: h.resumeHalted }),
    ...(h.notifyEmails !== undefined && { notifyEmails: JSON.parse(h.notifyEmails) }),
    ...(h.notifyWebhook !== undefined && { notifyWebhook: h.notifyWebhook }),
    ...(h.concurrency !== undefined && { concurrency: Number(h.concurrency) }),
    ...(h.weight !== undefined && { weight: Number(h.weight) }),
  });
}

/** The keys of a settlement, in the order of settle.lua (and checkpoint.lua's KEYS[3..8]). */
export function settleKeys(k: Keys, s: { tenant: string; runId: string; period: string }): string[] {
  return [
    k.quota(s.tenant),
    k.period(s.tenant, s.period),
    k.periodScenarios(s.tenant, s.period),
    k.periodDays(s.tenant, s.period),
    k.billed(s.tenant, s.runId),
    k.leases(s.tenant, s.period),
  ];
}

/** A string with a lone surrogate made well-formed (U+FFFD), as Redis received it as an argument of its own (cjson refuses a lone one). */
const SURROGATE = /[\ud800-\udfff]/;
function wellFormed(s: string): string {
  return SURROGATE.test(s) ? Buffer.from(s, 'utf8').toString('utf8') : s;
}

/**
 * The arguments of lib-settle.lua: the entries go as their count and one JSON array of their
 * (key, node, date) strings; the billed set is kept `billedTtlSeconds` (tests shorten it).
 */
export function settleArgs(s: Settlement, billedTtlSeconds: number = BILLED_TTL_SECONDS): Array<string | number> {
  const out: Array<string | number> = [
    s.runId,
    s.scenarioId,
    s.billable ? '1' : '0',
    s.heldUsed,
    s.release,
    s.at.toISOString(),
    DEFAULT_QUOTA.monthlyActions,
    JSON.stringify(DEFAULT_QUOTA.alerts),
    billedTtlSeconds,
    s.entries.length,
  ];
  if (s.entries.length > 0) {
    const flat: string[] = [];
    for (const e of s.entries) flat.push(wellFormed(String(e.key)), wellFormed(entryNode(e)), String(e.date));
    out.push(JSON.stringify(flat));
  }
  return out;
}

export class RedisLedger implements Ledger {
  private cache = new Map<string, { quota: Quota; at: number }>();

  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly opts: LedgerOptions = {},
  ) {}

  /** The quota, cached briefly: only its timezone is used from the cache (limits are read in Lua). */
  private async cachedQuota(tenant: string): Promise<Quota> {
    const hit = this.cache.get(tenant);
    const now = Date.now();
    if (hit && now - hit.at < QUOTA_CACHE_MS) return hit.quota;
    const quota = await this.getQuota(tenant);
    this.cache.set(tenant, { quota, at: now });
    return quota;
  }

  /** Reports thresholds crossed (returned by settle.lua or checkpoint.lua). */
  alerted(tenant: string, period: string, thresholds: Array<string | number>, at: Date): void {
    if (thresholds.length === 0) return;
    void this.getQuota(tenant).then(
      (q) => {
        for (const t of thresholds)
          this.opts.onAlert?.({
            tenant,
            period,
            threshold: Number(t),
            used: Math.ceil(Number(t) * q.monthlyActions),
            limit: q.monthlyActions,
            at: at.toISOString(),
          });
      },
      () => undefined,
    );
  }

  async periodOf(tenant: string, at: Date): Promise<{ period: string; date: string }> {
    const quota = await this.cachedQuota(tenant);
    return { period: periodAt(at, quota.timezone).key, date: localDate(at, quota.timezone) };
  }

  async lease(req: LeaseRequest): Promise<LeaseResult> {
    const { period } = await this.periodOf(req.tenant, req.at);
    const k = this.keys;
    const out = await this.redis.fmLease(
      k.quota(req.tenant),
      k.period(req.tenant, period),
      k.leases(req.tenant, period),
      k.run(req.tenant, req.runId),
      req.runId,
      req.want,
      DEFAULT_QUOTA.monthlyActions,
      req.owner ?? '',
      randomUUID(),
      req.at.toISOString(),
    );
    if (typeof out === 'number') throw scriptError(out, { tenant: req.tenant, runId: req.runId });
    return { granted: Number(out[0]), held: Number(out[1]) === 1, othersHold: Number(out[2]) === 1, period };
  }

  async settle(s: Settlement): Promise<void> {
    const crossed = await this.redis.fmSettle(...settleKeys(this.keys, s), randomUUID(), ...settleArgs(s));
    this.alerted(s.tenant, s.period, crossed, s.at);
  }

  async count(tenant: string, name: MeterName | 'runs', amount: number, at: Date, conn?: ConnectionUse): Promise<void> {
    const quota = await this.cachedQuota(tenant);
    const period = periodAt(at, quota.timezone).key;
    if (!conn) {
      await this.redis.hincrby(this.keys.period(tenant, period), `m:${name}`, amount);
      return;
    }
    // Fields <connection>\0<stat> of the period's connections hash, in one transaction.
    const k = this.keys.periodConnections(tenant, period);
    const f = (stat: string) => `${conn.connection}\u0000${stat}`;
    const multi = this.redis.multi().hincrby(this.keys.period(tenant, period), `m:${name}`, amount);
    if (name === 'connectorBytes') multi.hincrby(k, f('bytes'), amount);
    if (name === 'connectorRequests') {
      multi.hincrby(k, f('requests'), amount).hset(k, f('lastStatus'), String(conn.status ?? ''), f('lastAt'), at.toISOString());
      if (conn.status === undefined || conn.status >= 400) multi.hincrby(k, f('errors'), amount);
    }
    await multi.exec();
  }

  async getQuota(tenant: string): Promise<Quota> {
    const h = await this.redis.hgetall(this.keys.quota(tenant));
    return decodeQuota(h);
  }

  async setQuota(tenant: string, patch: QuotaPatch): Promise<Quota> {
    const next = withoutUnset(quotaSchema.parse({ ...(await this.getQuota(tenant)), ...patch }));
    const fields: Record<string, string> = {
      monthlyActions: String(next.monthlyActions),
      overage: next.overage,
      timezone: next.timezone,
      alerts: JSON.stringify(next.alerts),
    };
    await listTenant(this.redis, this.keys, tenant);
    const multi = this.redis.multi().hset(this.keys.quota(tenant), fields);
    for (const f of OPTIONAL_QUOTA_FIELDS) {
      const v = next[f];
      if (v !== undefined && v !== null) multi.hset(this.keys.quota(tenant), f, typeof v === 'object' ? JSON.stringify(v) : String(v));
      else multi.hdel(this.keys.quota(tenant), f);
    }
    await multi.exec();
    this.cache.delete(tenant);
    await allowanceRaised(this.opts, tenant, new Date());
    return next;
  }

  /**
   * Records the purchase in the period's add-on list; one without expiry also adds to the
   * period's `addOns` counter (what the Lua limit adds whole), in the same transaction.
   */
  async addActions(tenant: string, actions: number, at: Date, opts: AddOnOptions = {}): Promise<AddOnPurchase> {
    const purchase = checkAddOn(actions, at, opts);
    const quota = await this.getQuota(tenant);
    const period = periodAt(at, quota.timezone).key;
    const multi = this.redis.multi().rpush(this.keys.addOns(tenant, period), JSON.stringify(purchase));
    if (purchase.expires === undefined) multi.hincrby(this.keys.period(tenant, period), 'addOns', actions);
    await multi.exec();
    await allowanceRaised(this.opts, tenant, at);
    return purchase;
  }

  async addOnPurchases(tenant: string, periodKey: string): Promise<AddOnPurchase[]> {
    return (await this.redis.lrange(this.keys.addOns(tenant, periodKey), 0, -1)).map((s) => JSON.parse(s) as AddOnPurchase);
  }

  async getPlan(tenant: string): Promise<Plan | null> {
    const s = await this.redis.get(this.keys.plan(tenant));
    return s === null ? null : parsePlan(JSON.parse(s));
  }

  async setPlan(tenant: string, plan: Plan): Promise<Quota> {
    const quota = await this.setQuota(tenant, { monthlyActions: plan.includedActions });
    await this.redis.set(this.keys.plan(tenant), JSON.stringify(planDocument(plan)));
    return quota;
  }

  /**
   * Field `<scenario>:n:<node>` of the period's per-scenario hash: runs × 2^32 + actions, one
   * HINCRBY per node and settlement (lib-settle.lua); the trigger's node is `<scenario>:runs`.
   */
  async nodeUsage(tenant: string, scenarioId: string, nodeIds: readonly string[], at: Date, periodKey?: string): Promise<NodeUsage> {
    const period = periodKey ?? (await this.periodOf(tenant, at)).period;
    const nodes: NodeUsage['nodes'] = Object.create(null); // node ids may be __proto__
    if (nodeIds.length === 0) return { period, nodes };
    const fields = nodeIds.map((id) => (id === TRIGGER_NODE ? `${scenarioId}:runs` : `${scenarioId}:n:${id}`));
    const values = await this.redis.hmget(this.keys.periodScenarios(tenant, period), ...fields);
    nodeIds.forEach((id, i) => {
      const v = BigInt(values[i] ?? 0);
      nodes[id] = id === TRIGGER_NODE ? { actions: Number(v), runs: Number(v) } : { actions: Number(v & 0xffffffffn), runs: Number(v >> 32n) };
    });
    return { period, nodes };
  }

  async usage(tenant: string, at: Date, periodKey?: string): Promise<UsageReport> {
    const quota = await this.getQuota(tenant);
    const period = periodKey ? periodByKey(periodKey, quota.timezone) : periodAt(at, quota.timezone);
    const [p, scen, days, purchases, conns] = await Promise.all([
      this.redis.hgetall(this.keys.period(tenant, period.key)),
      this.redis.hgetall(this.keys.periodScenarios(tenant, period.key)),
      this.redis.hgetall(this.keys.periodDays(tenant, period.key)),
      this.addOnPurchases(tenant, period.key),
      this.redis.hgetall(this.keys.periodConnections(tenant, period.key)),
    ]);
    const c: PeriodCounters = emptyCounters();
    c.used = Number(p.used ?? 0);
    c.overage = Number(p.overage ?? 0);
    c.nonBillable = Number(p.nonBillable ?? 0);
    // Without expiry: the counter (kept whole); with expiry: those valid at `at` (or the period's end).
    c.addOns =
      Number(p.addOns ?? 0) +
      validAddOns(
        purchases.filter((a) => a.expires !== undefined),
        reportInstant(period, at),
      );
    for (const [f, v] of Object.entries(p)) {
      if (f.startsWith('m:')) c.meters[f.slice(2)] = Number(v);
      if (f.startsWith('a:')) c.alerts[f.slice(2)] = v;
    }
    // Fields <scenario>:runs, <scenario>:actions; the per-node <scenario>:n:<node> are not in the report.
    for (const [f, v] of Object.entries(scen)) {
      const i = f.indexOf(':');
      const id = f.slice(0, i);
      const counter = f.slice(i + 1);
      if (counter === 'runs') c.scenarioRuns[id] = Number(v);
      else if (counter === 'actions') c.scenarioActions[id] = Number(v);
    }
    for (const [d, v] of Object.entries(days)) c.days[d] = Number(v);
    for (const [f, v] of Object.entries(conns)) {
      const [name, stat] = f.split('\u0000') as [string, string];
      const s = (c.connections[name] ??= { requests: 0, bytes: 0, errors: 0, lastStatus: null, lastAt: null });
      if (stat === 'requests' || stat === 'bytes' || stat === 'errors') s[stat] = Number(v);
      else if (stat === 'lastStatus') s.lastStatus = v === '' ? null : Number(v);
      else if (stat === 'lastAt') s.lastAt = v;
    }
    return buildReport(tenant, period, quota, c, at);
  }
}
