/**
 * Queue shards (SPEC §10): a tenant's runs live on one shard of the run queue, chosen by a
 * stable hash of the tenant, so on a Redis Cluster tenants spread over the primaries while a
 * tenant's queue keys still share one hash slot (one Lua script may touch them all).
 *
 *   shard i's keys carry the hash tag `{<prefix>:q}` (i = 0) or `{<prefix>:q<i>}` (i > 0)
 *
 * Every process of one deployment must use the same shard count (FLOWMETER_QUEUE_SHARDS).
 */
import { createHash } from 'node:crypto';
import { FlowError } from '../core/errors.js';

/** Shards when FLOWMETER_QUEUE_SHARDS is not set. */
export const DEFAULT_QUEUE_SHARDS = 1;
/** The most shards a deployment may have (each shard is one BullMQ queue a worker consumes). */
export const MAX_QUEUE_SHARDS = 64;

/** FLOWMETER_QUEUE_SHARDS, checked: a positive integer up to MAX_QUEUE_SHARDS. */
export function queueShards(env: Record<string, string | undefined> = process.env): number {
  const raw = env.FLOWMETER_QUEUE_SHARDS;
  if (raw === undefined || raw === '') return DEFAULT_QUEUE_SHARDS;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > MAX_QUEUE_SHARDS) {
    throw new FlowError('INVALID_INPUT', `FLOWMETER_QUEUE_SHARDS must be an integer from 1 to ${MAX_QUEUE_SHARDS}, not "${raw}"`);
  }
  return n;
}

/** The shard of a tenant's runs: stable across processes and restarts. */
export function shardOf(tenant: string, shards: number): number {
  if (shards <= 1) return 0;
  return createHash('sha1').update(tenant).digest().readUInt32BE(0) % shards;
}

/** The hash tag (with braces) of a shard's keys, also BullMQ's key prefix for that shard's queue. */
export function shardTag(prefix: string, shard: number): string {
  return shard === 0 ? `{${prefix}:q}` : `{${prefix}:q${shard}}`;
}
