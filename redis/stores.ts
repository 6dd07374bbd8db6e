/** VarStore and KeyStore on Redis (the run store is in redis-run-store.ts). */

import { FlowError } from '../core/errors.js';
import { MAX_VARS, MAX_VARS_BYTES, varsOverBounds } from '../core/function-limits.js';
import type { KeyStore } from '../engine/platform.js';
import type { VarStore } from '../engine/stores.js';
import { apiKeyHash, apiKeyId, type KeyInfo, LAST_USED_EVERY_MS, newApiKey } from '../services/api-keys.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

export { RedisRunStore, type RedisRunStoreOptions, type RunEvent } from './run-store.js';

export class RedisVarStore implements VarStore {
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
  ) {}

  async load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>> {
    const key = this.keys.vars(tenant, scenarioId);
    const names = Object.keys(defaults);
    if (names.length) {
      const pipe = this.redis.pipeline();
      for (const n of names) pipe.hsetnx(key, n, JSON.stringify(defaults[n] ?? null));
      const added = (await pipe.exec())?.some(([, r]) => r === 1);
      // Defaults written here are not in setvars.lua's count: it counts afresh next time.
      if (added) await this.redis.hdel(this.keys.varSizes(tenant), scenarioId);
    }
    const h = await this.redis.hgetall(key);
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, JSON.parse(v)]));
  }

  async setMany(tenant: string, scenarioId: string, sets: Array<[string, unknown]>): Promise<void> {
    const last = new Map<string, string>();
    for (const [name, value] of sets) last.set(name, JSON.stringify(value ?? null));
    const args: string[] = [];
    for (const [name, json] of last) args.push(name, json);
    const [ok, bytes, count] = await this.redis.fmSetVars(
      this.keys.vars(tenant, scenarioId),
      this.keys.varSizes(tenant),
      scenarioId,
      MAX_VARS_BYTES,
      MAX_VARS,
      ...args,
    );
    if (ok !== 1) throw varsOverBounds(bytes, count) ?? new FlowError('INTERNAL', `setvars.lua refused variables within bounds (${bytes} bytes, ${count})`);
  }
}

/**
 * API keys on Redis: the global index (hash → tenant) that authentication reads on every request
 * (no cache, so a revoke holds at once in every process), the tenant's keys (hash → created),
 * the id index (id → tenant and hash) and last use (id → ISO, written at most once a minute per
 * process).
 */
export class RedisKeyStore implements KeyStore {
  private readonly usedAt = new Map<string, number>();
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
  ) {}
  async create(tenant: string): Promise<string> {
    const key = newApiKey();
    const hash = apiKeyHash(key);
    // Three hash slots on a Redis Cluster (the tenant's, and two global indexes), so three
    // writes: the one that makes the key valid (the hash → tenant index) last. A failure before
    // it leaves a key nobody was given and that authenticates nothing.
    await this.redis.hset(this.keys.apiKeys(tenant), hash, new Date().toISOString());
    await this.redis.hset(this.keys.apiKeyIds(), apiKeyId(hash, true), `${tenant} ${hash}`);
    await this.redis.hset(this.keys.apiKeyIndex(), hash, tenant);
    return key;
  }
  async resolve(key: string): Promise<string | null> {
    const hash = apiKeyHash(key);
    const tenant = await this.redis.hget(this.keys.apiKeyIndex(), hash);
    if (tenant) {
      const id = apiKeyId(hash, true);
      const now = Date.now();
      if (now - (this.usedAt.get(id) ?? 0) >= LAST_USED_EVERY_MS) {
        this.usedAt.set(id, now);
        this.redis.hset(this.keys.apiKeyUsed(tenant), id, new Date(now).toISOString()).catch(() => undefined);
      }
    }
    return tenant;
  }
  async list(tenant: string): Promise<KeyInfo[]> {
    const [created, used] = await Promise.all([this.redis.hgetall(this.keys.apiKeys(tenant)), this.redis.hgetall(this.keys.apiKeyUsed(tenant))]);
    return Object.entries(created)
      .map(([hash, createdAt]) => {
        const id = apiKeyId(hash, true);
        return { id, createdAt, lastUsedAt: used[id] ?? null };
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
  async revoke(id: string, tenant?: string): Promise<string | null> {
    let owner: string | undefined;
    let hash: string | undefined;
    const indexed = await this.redis.hget(this.keys.apiKeyIds(), id);
    if (indexed) [owner, hash] = indexed.split(' ');
    else if (tenant) {
      // A key created before ids were indexed: found among the tenant's own.
      hash = Object.keys(await this.redis.hgetall(this.keys.apiKeys(tenant))).find((h) => apiKeyId(h, true) === id);
      owner = hash ? tenant : undefined;
    }
    if (!owner || !hash || (tenant !== undefined && owner !== tenant)) return null;
    // The key stops authenticating first; the id index goes last, so a revoke that failed
    // half-way can be repeated (it still finds the key by its id).
    await this.redis.hdel(this.keys.apiKeyIndex(), hash);
    await this.redis.multi().hdel(this.keys.apiKeys(owner), hash).hdel(this.keys.apiKeyUsed(owner), id).exec();
    await this.redis.hdel(this.keys.apiKeyIds(), id);
    return owner;
  }
}
