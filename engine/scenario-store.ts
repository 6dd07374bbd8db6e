/**
 * Deployed scenarios of each tenant, and which are enabled. Enabling is refused past the
 * tenant's `maxActiveScenarios`.
 */
import type { Scenario } from './schema.js';
import { FlowError } from './errors.js';
import { scriptError, type FlowRedis } from './redis.js';
import type { Keys } from './redis-keys.js';

export interface ScenarioInfo {
  id: string;
  name: string | null;
  trigger: Scenario['trigger'];
  enabled: boolean;
  nodes: number;
}

export interface ScenarioStore {
  /** Stores (or replaces) a validated scenario; its enabled state is kept. */
  deploy(tenant: string, scenario: Scenario): Promise<{ created: boolean }>;
  get(tenant: string, id: string): Promise<Scenario | null>;
  list(tenant: string): Promise<ScenarioInfo[]>;
  isEnabled(tenant: string, id: string): Promise<boolean>;
  /** Throws NOT_FOUND, or MAX_ACTIVE_SCENARIOS when the tenant is at its limit. */
  enable(tenant: string, id: string, maxActive: number | undefined): Promise<void>;
  disable(tenant: string, id: string): Promise<void>;
  /** Every tenant that has deployed a scenario. */
  tenants(): Promise<string[]>;
}

function info(s: Scenario, enabled: boolean): ScenarioInfo {
  return { id: s.id, name: s.name ?? null, trigger: s.trigger, enabled, nodes: s.nodes.length };
}

function notFound(id: string): FlowError {
  return new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(id)}`);
}

export class MemoryScenarioStore implements ScenarioStore {
  private byTenant = new Map<string, Map<string, Scenario>>();
  private enabledSet = new Map<string, Set<string>>();

  private of(tenant: string): Map<string, Scenario> {
    let m = this.byTenant.get(tenant);
    if (!m) this.byTenant.set(tenant, (m = new Map()));
    return m;
  }
  private on(tenant: string): Set<string> {
    let s = this.enabledSet.get(tenant);
    if (!s) this.enabledSet.set(tenant, (s = new Set()));
    return s;
  }
  async deploy(tenant: string, scenario: Scenario): Promise<{ created: boolean }> {
    const created = !this.of(tenant).has(scenario.id);
    this.of(tenant).set(scenario.id, structuredClone(scenario));
    return { created };
  }
  async get(tenant: string, id: string): Promise<Scenario | null> {
    const s = this.of(tenant).get(id);
    return s ? structuredClone(s) : null;
  }
  async list(tenant: string): Promise<ScenarioInfo[]> {
    return [...this.of(tenant).values()].sort((a, b) => a.id.localeCompare(b.id)).map((s) => info(s, this.on(tenant).has(s.id)));
  }
  async isEnabled(tenant: string, id: string): Promise<boolean> {
    return this.on(tenant).has(id);
  }
  async enable(tenant: string, id: string, maxActive: number | undefined): Promise<void> {
    if (!this.of(tenant).has(id)) throw notFound(id);
    const on = this.on(tenant);
    if (on.has(id)) return;
    if (maxActive !== undefined && on.size >= maxActive) throw scriptError('fmEnable', -1);
    on.add(id);
  }
  async disable(tenant: string, id: string): Promise<void> {
    if (!this.of(tenant).has(id)) throw notFound(id);
    this.on(tenant).delete(id);
  }
  async tenants(): Promise<string[]> {
    return [...this.byTenant.keys()].filter((t) => this.of(t).size > 0).sort();
  }
}

export class RedisScenarioStore implements ScenarioStore {
  constructor(private readonly redis: FlowRedis, private readonly keys: Keys) {}

  async deploy(tenant: string, scenario: Scenario): Promise<{ created: boolean }> {
    const [[, created]] = (await this.redis
      .multi()
      .hset(this.keys.scenarios(tenant), scenario.id, JSON.stringify(scenario))
      .sadd(this.keys.tenants(), tenant)
      .exec()) as [[unknown, number]];
    return { created: created === 1 };
  }
  async get(tenant: string, id: string): Promise<Scenario | null> {
    const raw = await this.redis.hget(this.keys.scenarios(tenant), id);
    return raw ? (JSON.parse(raw) as Scenario) : null;
  }
  async list(tenant: string): Promise<ScenarioInfo[]> {
    const [all, on] = await Promise.all([this.redis.hgetall(this.keys.scenarios(tenant)), this.redis.smembers(this.keys.enabled(tenant))]);
    const enabled = new Set(on);
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as Scenario)
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((s) => info(s, enabled.has(s.id)));
  }
  async isEnabled(tenant: string, id: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.enabled(tenant), id)) === 1;
  }
  async enable(tenant: string, id: string, _maxActive?: number): Promise<void> {
    // The limit is read inside enable.lua from the quota hash, atomically with the count.
    const code = await this.redis.fmEnable(this.keys.scenarios(tenant), this.keys.enabled(tenant), this.keys.quota(tenant), id);
    if (code === -3) throw notFound(id);
    if (code < 0) throw scriptError('fmEnable', code);
  }
  async disable(tenant: string, id: string): Promise<void> {
    if (!(await this.redis.hexists(this.keys.scenarios(tenant), id))) throw notFound(id);
    await this.redis.srem(this.keys.enabled(tenant), id);
  }
  async tenants(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.tenants())).sort();
  }
}
