/** Deployed scenarios of each tenant on Redis (the twin of `MemoryScenarioStore`). */

import {
  type DeployResult,
  indexCron,
  info,
  notFound,
  rollbackTo,
  type ScenarioInfo,
  type ScenarioStore,
  type ScenarioVersion,
  scenarioHash,
  tagVersion,
} from '../engine/scenario-store.js';
import type { Scenario } from '../scenario/schema.js';
import type { FlowRedis } from './client.js';
import { RedisCronIndex } from './cron-index.js';
import type { Keys } from './keys.js';
import { SCRIPT_CODES, scriptError } from './script-errors.js';
import { listTenant } from './tenant-set.js';

/**
 * The tenant's scenarios are in its hash slot; the set of tenants and the cron index are not
 * (global, and per queue shard): they are written with commands of their own, the set of
 * tenants before the tenant's write and the cron index after it (see engine/cron-index.ts).
 */
export class RedisScenarioStore implements ScenarioStore {
  readonly cron: RedisCronIndex;
  /** `maxBytes`: bytes of version entries a tenant may keep (FLOWMETER_SCENARIO_BYTES, deploy.lua). */
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly maxBytes = Number.MAX_SAFE_INTEGER,
  ) {
    this.cron = new RedisCronIndex(redis, keys, () => this.enabledScenarios());
  }

  private async enabledScenarios(): Promise<Array<{ tenant: string; scenarioId: string; cron: boolean }>> {
    const out: Array<{ tenant: string; scenarioId: string; cron: boolean }> = [];
    for (const tenant of await this.tenants()) {
      for (const s of await this.list(tenant)) if (s.enabled) out.push({ tenant, scenarioId: s.id, cron: s.trigger.type === 'cron' });
    }
    return out;
  }

  /** deploy.lua: the next version, unless the document equals the current one. */
  async deploy(tenant: string, scenario: Scenario, rollbackOf?: number): Promise<DeployResult> {
    const hash = scenarioHash(scenario);
    const json = JSON.stringify(scenario);
    const entry = `{"deployedAt":${JSON.stringify(new Date().toISOString())},"hash":"${hash}",${rollbackOf !== undefined ? `"rollbackOf":${rollbackOf},` : ''}"scenario":${json}}`;
    await listTenant(this.redis, this.keys, tenant);
    const out = await this.redis.fmDeploy(
      this.keys.scenarios(tenant),
      this.keys.scenarioVersions(tenant, scenario.id),
      this.keys.scenarioBytes(tenant),
      scenario.id,
      hash,
      json,
      entry,
      this.maxBytes,
    );
    if (typeof out === 'number') {
      // The numbers for the message, read after the refusal (as deploy.lua counts them).
      const [kept, count] = await Promise.all([
        this.redis.get(this.keys.scenarioBytes(tenant)),
        this.redis.llen(this.keys.scenarioVersions(tenant, scenario.id)),
      ]);
      const bytes = Buffer.byteLength(`{"version":${count + 1},${entry.slice(1)}`);
      throw scriptError(out, { tenant, scenarioId: scenario.id, storage: { kept: Number(kept ?? 0), bytes, limit: this.maxBytes } });
    }
    const [created, changed, version] = out;
    if (changed === 1 && (await this.isEnabled(tenant, scenario.id))) await indexCron(this.cron, tenant, scenario, 2, true);
    return { created: created === 1, changed: changed === 1, version };
  }
  async get(tenant: string, id: string): Promise<Scenario | null> {
    const [[, raw], [, count]] = (await this.redis.multi().hget(this.keys.scenarios(tenant), id).llen(this.keys.scenarioVersions(tenant, id)).exec()) as [
      [unknown, string | null],
      [unknown, number],
    ];
    if (!raw) return null;
    const scenario = JSON.parse(raw) as Scenario;
    return count > 0 ? tagVersion(scenario, count) : scenario;
  }
  async versions(tenant: string, id: string): Promise<ScenarioVersion[]> {
    const [[, exists], [, rows]] = (await this.redis
      .multi()
      .hexists(this.keys.scenarios(tenant), id)
      .lrange(this.keys.scenarioVersions(tenant, id), 0, -1)
      .exec()) as [[unknown, number], [unknown, string[]]];
    if (exists !== 1) throw notFound(id);
    return rows.map((r) => JSON.parse(r) as ScenarioVersion);
  }
  rollback(tenant: string, id: string, to: number): Promise<DeployResult> {
    return rollbackTo(this, tenant, id, to);
  }
  async delete(tenant: string, id: string): Promise<void> {
    const [[, removed]] = (await this.redis.multi().hdel(this.keys.scenarios(tenant), id).srem(this.keys.enabled(tenant), id).exec()) as [[unknown, number]];
    if (removed !== 1) throw notFound(id);
    await this.cron.unschedule(tenant, id);
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
    if (code === SCRIPT_CODES.MAX_ACTIVE_SCENARIOS) {
      // The numbers for the message, read after the refusal.
      const [enabled, maxActive] = await Promise.all([
        this.redis.scard(this.keys.enabled(tenant)),
        this.redis.hget(this.keys.quota(tenant), 'maxActiveScenarios'),
      ]);
      throw scriptError(code, { tenant, scenarioId: id, enabled, maxActive: Number(maxActive) });
    }
    if (code < 0) throw scriptError(code, { tenant, scenarioId: id });
    const raw = await this.redis.hget(this.keys.scenarios(tenant), id);
    if (raw) await indexCron(this.cron, tenant, JSON.parse(raw) as Scenario, code === 1 ? 1 : 2);
  }
  async disable(tenant: string, id: string): Promise<void> {
    if (!(await this.redis.hexists(this.keys.scenarios(tenant), id))) throw notFound(id);
    await this.redis.srem(this.keys.enabled(tenant), id);
    await this.cron.unschedule(tenant, id);
  }
  async tenants(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.tenants())).sort();
  }
}
