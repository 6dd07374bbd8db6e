/**
 * Redis connections and Lua scripts. Each script lives in its own `.lua` file with a header
 * documenting KEYS, ARGV and return codes; scripts are defined once per connection (ioredis
 * sends EVALSHA, falling back to EVAL once), and negative return codes map to typed errors here.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { FlowError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/package-root.js';


export interface ScriptDef {
  name: string;
  /** Path of the .lua file from the package root. */
  file: string;
  /** Library files prepended to it (shared Lua functions). */
  libs?: string[];
  /** Number of KEYS, or null when it varies (the caller passes it first). */
  keys: number | null;
}

export const SCRIPTS: ScriptDef[] = [
  { name: 'fmLease', file: 'redis/lua/lease.lua', libs: ['redis/lua/lib-lease.lua'], keys: 4 },
  { name: 'fmSettle', file: 'redis/lua/settle.lua', libs: ['redis/lua/lib-settle.lua'], keys: 6 },
  { name: 'fmCheckpoint', file: 'redis/lua/checkpoint.lua', libs: ['redis/lua/lib-settle.lua'], keys: 9 },
  { name: 'fmClaim', file: 'redis/lua/claim.lua', libs: ['redis/lua/lib-lease.lua'], keys: 8 },
  { name: 'fmEnable', file: 'redis/lua/enable.lua', keys: 3 },
  { name: 'fmResume', file: 'redis/lua/resume.lua', keys: 1 },
  { name: 'fmCreate', file: 'redis/lua/create.lua', keys: null },
  { name: 'fmAutoResume', file: 'redis/lua/autoresume.lua', libs: ['redis/lua/lib-lease.lua'], keys: 4 },
];

const sources = new Map<string, string>();
function source(def: ScriptDef): string {
  let s = sources.get(def.name);
  if (!s) {
    s = [...(def.libs ?? []), def.file].map((f) => readFileSync(resolve(PACKAGE_ROOT, f), 'utf8')).join('\n');
    sources.set(def.name, s);
  }
  return s;
}

/** A Redis client with Flowmeter's scripts defined on it. */
export type FlowRedis = Redis & {
  fmCheckpoint(...args: Array<string | number>): Promise<number | Array<number | string>>;
  fmLease(...args: Array<string | number>): Promise<number | number[]>;
  fmSettle(...args: Array<string | number>): Promise<string[]>;
  fmClaim(...args: Array<string | number>): Promise<number | string[]>;
  fmEnable(...args: Array<string | number>): Promise<number>;
  fmResume(...args: Array<string | number>): Promise<number>;
  fmAutoResume(...args: Array<string | number>): Promise<string>;
  /** create.lua: the number of keys first. */
  fmCreate(numKeys: number, ...args: Array<string | number>): Promise<number[]>;
};

/** Script return codes below 0, mapped to errors in one place. */
export function scriptError(script: string, code: number): FlowError {
  switch (code) {
    case -1:
      return script === 'fmEnable'
        ? new FlowError('MAX_ACTIVE_SCENARIOS', 'the tenant already has its maxActiveScenarios enabled')
        : new FlowError('QUOTA_EXHAUSTED', 'quota exhausted');
    case -2:
      return new FlowError('RUN_OWNERSHIP_LOST', 'another worker has taken over this run');
    case -3:
      return new FlowError('NOT_FOUND', script === 'fmEnable' ? 'no such scenario' : 'no such run');
    case -4:
      return new FlowError('RUN_NOT_HALTED', 'only a halted run can be resumed');
    default:
      return new FlowError('INTERNAL', `${script} returned ${code}`);
  }
}

export interface ConnectOptions {
  /** For long-lived processes (workers): retry forever and queue commands while reconnecting. */
  persistent?: boolean;
}

/** Hides a password in a Redis URL for messages. */
export function safeRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

export function redisOptions(opts: ConnectOptions = {}): RedisOptions {
  return opts.persistent
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(200 * n, 2000) }
    : { maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: (n) => (n > 2 ? null : 100 * n) };
}

/** Opens a connection and defines the scripts on it. */
export function openRedis(url: string, opts: ConnectOptions = {}): FlowRedis {
  let redis: Redis;
  try {
    redis = new Redis(url, { lazyConnect: true, ...redisOptions(opts) });
  } catch (err) {
    throw new FlowError('INVALID_INPUT', `bad Redis URL ${safeRedisUrl(url)}: ${(err as Error).message}`);
  }
  redis.on('error', () => undefined); // reported by the commands that fail
  for (const def of SCRIPTS) redis.defineCommand(def.name, { ...(def.keys !== null && { numberOfKeys: def.keys }), lua: source(def) });
  return redis as FlowRedis;
}

/** Connects and pings, failing with one clear line when Redis cannot be reached. */
export async function connectRedis(url: string, opts: ConnectOptions = {}): Promise<FlowRedis> {
  const redis = openRedis(url, opts);
  let lastError: Error | null = null;
  const onError = (err: Error) => (lastError = err);
  redis.on('error', onError);
  try {
    await withTimeout(redis.connect().then(() => redis.ping()), 5000);
    redis.off('error', onError);
  } catch (err) {
    redis.disconnect();
    const cause = (lastError as Error | null) ?? (err as Error);
    const why = (cause as NodeJS.ErrnoException).code ?? (cause.message || String(cause));
    throw new FlowError('REDIS_UNAVAILABLE', `cannot reach Redis at ${safeRedisUrl(url)}: ${why}`);
  }
  return redis;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolvePromise(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
