/** A tenant's quota (§4) and the usage report (§7). */
import { z } from 'zod';
import { isValidTimezone, type Period } from './periods.js';

export const quotaSchema = z.strictObject({
  /** Actions per billing period (default 500, the free plan). */
  monthlyActions: z.number().int().min(0).default(500),
  /** `halt` stops runs at the limit; `allow` records overage. */
  overage: z.enum(['halt', 'allow']).default('halt'),
  /** IANA timezone of the billing period (default UTC). */
  timezone: z.string().refine(isValidTimezone, 'must be an IANA timezone').default('UTC'),
  /** Fractions of the limit at which one alert per period is recorded. */
  alerts: z.array(z.number().positive().max(10)).default([0.9, 1.0]),
  /** At most this many enabled scenarios. */
  maxActiveScenarios: z.number().int().min(0).optional(),
  /** `auto` (absent means auto): halted runs resume by themselves when actions are available again; `manual`: only `resume`. */
  resumeHalted: z.enum(['auto', 'manual']).optional(),
  /** Addresses mailed on alerts, quota halts and period resets. */
  notifyEmails: z.array(z.email()).max(20).optional(),
  /** URL POSTed (signed) on alerts, quota halts and period resets. */
  notifyWebhook: z.url({ protocol: /^https?$/ }).optional(),
  /** Most runs of the tenant executing at once (absent: unlimited; null in a patch unsets it). */
  concurrency: z.number().int().positive().max(1_000_000).nullable().optional(),
  /** The tenant's share of workers when tenants compete (absent means 1). */
  weight: z.number().int().positive().max(1000).optional(),
});

/** Optional quota fields: absent when unset (arrays are stored as JSON in Redis). */
export const OPTIONAL_QUOTA_FIELDS = ['maxActiveScenarios', 'resumeHalted', 'notifyEmails', 'notifyWebhook', 'concurrency', 'weight'] as const;

export type Quota = z.infer<typeof quotaSchema>;

/** A quota with its unset fields (null: `concurrency` unset by a patch) left out. */
export function withoutUnset(q: Quota): Quota {
  const out = { ...q };
  for (const f of OPTIONAL_QUOTA_FIELDS) if (out[f] === null) delete out[f];
  return out;
}
export type QuotaPatch = Partial<Quota>;

export const DEFAULT_QUOTA: Quota = quotaSchema.parse({});

export interface UsageReport {
  tenant: string;
  period: Period;
  limit: number;
  addOns: number;
  used: number;
  remaining: number;
  overage: number;
  nonBillable: number;
  byScenario: Array<{ scenarioId: string; runs: number; actions: number }>;
  byDay: Array<{ date: string; actions: number }>;
  meters: { runs: number; connectorRequests: number; connectorBytes: number; mailsSent: number };
  alerts: Array<{ threshold: number; at: string }>;
  /** Per scenario connection: Connector requests, bytes, failed requests, the last status and when. */
  connections: Record<string, ConnectionStatus>;
  /**
   * For the current period: where usage will be at the period's end if the rate so far goes
   * on (`projectedUsed`), and whether that passes `limit + addOns` (`willExceed`). Null for a
   * period that is over or has not started.
   */
  projection: { projectedUsed: number; perDay: number; willExceed: boolean; exceedsOn: string | null } | null;
}

/** Projects the period's end usage from the rate so far (linear). */
export function project(period: Period, used: number, limit: number, at: Date): UsageReport['projection'] {
  const start = Date.parse(period.start);
  const end = Date.parse(period.end);
  const now = at.getTime();
  if (now < start || now >= end) return null;
  const elapsed = Math.max(now - start, 3600_000); // at least an hour, so a first action does not project wildly
  const rate = used / elapsed; // actions per ms
  const projectedUsed = Math.round(used + rate * (end - now));
  const willExceed = projectedUsed > limit;
  const exceedsOn = willExceed && rate > 0 ? new Date(Math.max(now, start + limit / rate)).toISOString() : null;
  return { projectedUsed, perDay: Math.round(rate * 86_400_000 * 10) / 10, willExceed, exceedsOn };
}

export interface ConnectionStatus {
  requests: number;
  bytes: number;
  /** Requests that failed on the network, timed out or got a status of 400 or more. */
  errors: number;
  /** The last response status (null: the last request got none). */
  lastStatus: number | null;
  lastAt: string | null;
}

/** Adds one count to a connection's status (memory ledger; the Redis ledger does it in a hash). */
export function countConnection(s: ConnectionStatus | undefined, name: string, amount: number, at: Date, status: number | undefined): ConnectionStatus {
  const c = s ?? { requests: 0, bytes: 0, errors: 0, lastStatus: null, lastAt: null };
  if (name === 'connectorBytes') c.bytes += amount;
  if (name === 'connectorRequests') {
    c.requests += amount;
    if (status === undefined || status >= 400) c.errors += amount;
    c.lastStatus = status ?? null;
    c.lastAt = at.toISOString();
  }
  return c;
}

/** Raw per-period counters, as a store keeps them. */
export interface PeriodCounters {
  used: number;
  overage: number;
  nonBillable: number;
  addOns: number;
  scenarioRuns: Record<string, number>;
  scenarioActions: Record<string, number>;
  days: Record<string, number>;
  meters: Record<string, number>;
  alerts: Record<string, string>;
  connections: Record<string, ConnectionStatus>;
}

export function emptyCounters(): PeriodCounters {
  return { used: 0, overage: 0, nonBillable: 0, addOns: 0, scenarioRuns: {}, scenarioActions: {}, days: {}, meters: {}, alerts: {}, connections: {} };
}

/** Builds the §7 report from counters: byScenario by most runs, byDay by date. */
export function buildReport(tenant: string, period: Period, quota: Quota, c: PeriodCounters, at: Date = new Date()): UsageReport {
  const ids = new Set([...Object.keys(c.scenarioRuns), ...Object.keys(c.scenarioActions)]);
  const byScenario = [...ids]
    .map((scenarioId) => ({ scenarioId, runs: c.scenarioRuns[scenarioId] ?? 0, actions: c.scenarioActions[scenarioId] ?? 0 }))
    .sort((a, b) => b.runs - a.runs || b.actions - a.actions || a.scenarioId.localeCompare(b.scenarioId));
  return {
    tenant,
    period,
    limit: quota.monthlyActions,
    addOns: c.addOns,
    used: c.used,
    remaining: Math.max(0, quota.monthlyActions + c.addOns - c.used),
    overage: c.overage,
    nonBillable: c.nonBillable,
    byScenario,
    byDay: Object.entries(c.days)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([date, actions]) => ({ date, actions })),
    meters: {
      runs: c.meters.runs ?? 0,
      connectorRequests: c.meters.connectorRequests ?? 0,
      connectorBytes: c.meters.connectorBytes ?? 0,
      mailsSent: c.meters.mailsSent ?? 0,
    },
    alerts: Object.entries(c.alerts)
      .map(([t, when]) => ({ threshold: Number(t), at: when }))
      .sort((a, b) => a.threshold - b.threshold),
    connections: c.connections,
    projection: project(period, c.used, quota.monthlyActions + c.addOns, at),
  };
}
