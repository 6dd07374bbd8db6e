/** Deployed scenarios of each tenant on Redis (the twin of `MemoryScenarioStore`). */
import type { Scenario } from '../scenario/schema.js';
import { info, notFound, type ScenarioInfo, type ScenarioStore } from '../engine/scenario-store.js';
import type { FlowRedis } from './client.js';
import { scriptError } from './script-errors.js';
import type { Keys } from './keys.js';

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
    if (code < 0) throw scriptError(code, { tenant, scenarioId: id });
  }
  async disable(tenant: string, id: string): Promise<void> {
    if (!(await this.redis.hexists(this.keys.scenarios(tenant), id))) throw notFound(id);
    await this.redis.srem(this.keys.enabled(tenant), id);
  }
  async tenants(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.tenants())).sort();
  }
}
