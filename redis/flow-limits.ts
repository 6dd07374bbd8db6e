/**
 * The flow-control limits the fair dispatcher applies (SPEC §10), as lib-fair.lua's `lt:` and
 * `ls:` fields: read from the tenant's quota and the stored scenario, at most every 2 s per
 * tenant or scenario and process, and sent to the shard with each push (and each worker
 * heartbeat, for the tenants and scenarios this process has seen lately).
 */
import type { RunRef } from './queue.js';

/** How long limits read are reused, ms (a changed limit applies after at most this). */
const LIMITS_CACHE_MS = 2000;
/** Tenants and scenarios remembered for heartbeat refreshes. */
const KNOWN_MAX = 256;

/** A tenant's flow-control fields (quota `concurrency`, `weight`). */
export interface TenantLimits {
  concurrency?: number;
  weight?: number;
}

/** A scenario's flow-control fields. */
export interface ScenarioLimits {
  concurrency?: number;
  throttle?: { limit: number; periodMs: number };
}

export interface LimitSources {
  /** The tenant's limits (its quota). */
  tenantLimits(tenant: string): Promise<TenantLimits>;
  /** The stored scenario's limits (null: no such scenario). */
  scenarioLimits(tenant: string, scenarioId: string): Promise<ScenarioLimits | null>;
}

export class FlowLimits {
  private readonly cache = new Map<string, { at: number; value: Promise<string> }>();
  private readonly known = new Map<string, RunRef>();

  constructor(private readonly sources: LimitSources) {}

  /** Notes a run's tenant and scenario, whose limits heartbeats refresh. */
  remember(r: RunRef): void {
    const key = `${r.tenant}\n${r.scenarioId ?? ''}`;
    this.known.delete(key);
    this.known.set(key, r);
    if (this.known.size > KNOWN_MAX) this.known.delete(this.known.keys().next().value!);
  }

  /** The tenants and scenarios seen lately (one run of each). */
  recent(): RunRef[] {
    return [...this.known.values()];
  }

  /** The `lt:` and `ls:` fields and values of the tenants and scenarios of `refs`, flat. */
  async fields(refs: RunRef[]): Promise<string[]> {
    const fields = new Map<string, Promise<string>>();
    for (const r of refs) {
      const t = `lt:${r.tenant}`;
      if (!fields.has(t))
        fields.set(
          t,
          this.cached(t, async () => tenantField(await this.sources.tenantLimits(r.tenant))),
        );
      if (r.scenarioId === undefined) continue;
      const s = `ls:${r.tenant}\n${r.scenarioId}`;
      if (!fields.has(s))
        fields.set(
          s,
          this.cached(s, async () => scenarioField(await this.sources.scenarioLimits(r.tenant, r.scenarioId!))),
        );
    }
    const values = await Promise.all(fields.values());
    return [...fields.keys()].flatMap((f, i) => [f, values[i]!]);
  }

  /** Forgets what was read of a tenant's limits (its quota changed). */
  forget(tenant: string): void {
    for (const k of this.cache.keys()) if (k === `lt:${tenant}` || k.startsWith(`ls:${tenant}\n`)) this.cache.delete(k);
  }

  private cached(key: string, read: () => Promise<string>): Promise<string> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < LIMITS_CACHE_MS) return hit.value;
    if (this.cache.size > 10_000) this.cache.clear();
    const value = read();
    this.cache.set(key, { at: now, value });
    value.catch(() => this.cache.delete(key));
    return value;
  }
}

function tenantField(l: TenantLimits): string {
  return `${l.concurrency ?? 0} ${l.weight ?? 1}`;
}

function scenarioField(l: ScenarioLimits | null): string {
  return `${l?.concurrency ?? 0} ${l?.throttle?.limit ?? 0} ${l?.throttle?.periodMs ?? 0}`;
}
