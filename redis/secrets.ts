/** The credential store on Redis: one hash per tenant, name → sealed value and updatedAt (SPEC §9). */

import { checkSecret, MAX_SECRETS, type SecretBox, type SecretInfo, type SecretStore, tooManySecrets } from '../services/secrets.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

interface Stored {
  v: string;
  updatedAt: string;
}

export class RedisSecretStore implements SecretStore {
  /** `box` is asked for on each set and read: a missing or bad key fails those, not the server. */
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly box: () => SecretBox,
  ) {}

  async set(tenant: string, name: string, value: string): Promise<void> {
    checkSecret(name, value);
    const stored: Stored = { v: this.box().seal(tenant, name, value), updatedAt: new Date().toISOString() };
    if ((await this.redis.fmSecretSet(this.keys.secrets(tenant), name, JSON.stringify(stored), MAX_SECRETS)) !== 1) throw tooManySecrets(tenant, name);
  }

  async list(tenant: string): Promise<SecretInfo[]> {
    const h = await this.redis.hgetall(this.keys.secrets(tenant));
    return Object.entries(h)
      .map(([name, json]) => ({ name, updatedAt: (JSON.parse(json) as Stored).updatedAt }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async delete(tenant: string, name: string): Promise<boolean> {
    checkSecret(name);
    return (await this.redis.hdel(this.keys.secrets(tenant), name)) === 1;
  }

  async read(tenant: string, names: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (names.length === 0) return out;
    const values = await this.redis.hmget(this.keys.secrets(tenant), ...names);
    names.forEach((n, i) => {
      const json = values[i];
      if (json) out.set(n, this.box().open(tenant, n, (JSON.parse(json) as Stored).v));
    });
    return out;
  }
}
