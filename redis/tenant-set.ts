/**
 * The set of tenants (`<p>:tenants`) is a global key: on a Redis Cluster it lives in another
 * hash slot than any tenant's keys, so no tenant script or transaction may touch it. Writers
 * add the tenant with a command of its own *before* the tenant's write (a tenant listed with
 * nothing written yet is harmless; data of an unlisted tenant would not be). Idempotent, and
 * sent once per connection and tenant.
 */
import type { RedisConnection } from './client.js';
import type { Keys } from './keys.js';

const listed = new WeakMap<RedisConnection, Set<string>>();

export async function listTenant(redis: RedisConnection, keys: Keys, tenant: string): Promise<void> {
  let set = listed.get(redis);
  if (!set) listed.set(redis, (set = new Set()));
  const member = `${keys.prefix}\u0000${tenant}`;
  if (set.has(member)) return;
  await redis.sadd(keys.tenants(), tenant);
  set.add(member);
}
