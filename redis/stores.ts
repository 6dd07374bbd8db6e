/** VarStore and KeyStore on Redis (the run store is in redis-run-store.ts). */
import type { VarStore } from '../engine/stores.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';
import type { KeyStore } from '../engine/platform.js';
import { apiKeyHash, newApiKey } from '../services/api-keys.js';

export { RedisRunStore, type RedisRunStoreOptions, type RunEvent } from './run-store.js';


export class RedisVarStore implements VarStore {
  constructor(private readonly redis: FlowRedis, private readonly keys: Keys) {}

  async load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>> {
    const key = this.keys.vars(tenant, scenarioId);
    const names = Object.keys(defaults);
    if (names.length) {
      const pipe = this.redis.pipeline();
      for (const n of names) pipe.hsetnx(key, n, JSON.stringify(defaults[n] ?? null));
      await pipe.exec();
    }
    const h = await this.redis.hgetall(key);
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, JSON.parse(v)]));
  }

  async set(tenant: string, scenarioId: string, name: string, value: unknown): Promise<void> {
    await this.redis.hset(this.keys.vars(tenant, scenarioId), name, JSON.stringify(value ?? null));
  }
}

export class RedisKeyStore implements KeyStore {
  constructor(private readonly redis: FlowRedis, private readonly keys: Keys) {}
  async create(tenant: string): Promise<string> {
    const key = newApiKey();
    await this.redis.multi().hset(this.keys.apiKeyIndex(), apiKeyHash(key), tenant).hset(this.keys.apiKeys(tenant), apiKeyHash(key), new Date().toISOString()).exec();
    return key;
  }
  async resolve(key: string): Promise<string | null> {
    return this.redis.hget(this.keys.apiKeyIndex(), apiKeyHash(key));
  }
}
