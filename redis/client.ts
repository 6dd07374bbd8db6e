/**
 * Redis connections and Lua scripts. Each script lives in its own file of redis/lua/ with a
 * header documenting KEYS, ARGV and return codes, and includes the shared Lua it needs
 * (lua-loader.ts). Scripts are defined once per connection (ioredis sends EVALSHA, falling
 * back to EVAL once); their negative return codes map to errors in script-errors.ts.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { FlowError } from '../core/errors.js';
import { loadLua } from './lua-loader.js';
import { checkCluster, clusterOptions, isClusterUrl, parseClusterUrl, safeRedisUrl } from './redis-url.js';

export { safeRedisUrl };

export interface ScriptDef {
  name: string;
  /** The script's file in redis/lua/, without `.lua`; it includes its libraries itself. */
  script: string;
  /** Number of KEYS, or null when it varies (the caller passes it first). */
  keys: number | null;
}

export const SCRIPTS: ScriptDef[] = [
  { name: 'fmLease', script: 'lease', keys: 4 },
  { name: 'fmSettle', script: 'settle', keys: 6 },
  { name: 'fmCheckpoint', script: 'checkpoint', keys: 9 },
  { name: 'fmClaim', script: 'claim', keys: 8 },
  { name: 'fmEnable', script: 'enable', keys: 3 },
  { name: 'fmResume', script: 'resume', keys: 1 },
  { name: 'fmRelease', script: 'release', keys: 1 },
  { name: 'fmSetVars', script: 'setvars', keys: 2 },
  { name: 'fmSecretSet', script: 'secret-set', keys: 1 },
  { name: 'fmCreate', script: 'create', keys: null },
  { name: 'fmAutoResume', script: 'autoresume', keys: 4 },
  { name: 'fmDeploy', script: 'deploy', keys: 3 },
  { name: 'fmCronAdvance', script: 'cron-advance', keys: 2 },
  { name: 'fmCronDue', script: 'cron-due', keys: 2 },
  { name: 'fmDispatch', script: 'dispatch', keys: 6 },
  { name: 'fmSweep', script: 'sweep', keys: 6 },
  { name: 'fmHandoff', script: 'handoff', keys: 3 },
];

const sources = new Map<string, string>();
function source(def: ScriptDef): string {
  let s = sources.get(def.name);
  if (s === undefined) sources.set(def.name, (s = loadLua(def.script)));
  return s;
}

/** The scripts Flowmeter defines on each connection (see SCRIPTS). */
export interface FlowScripts {
  fmCheckpoint(...args: Array<string | number>): Promise<number | Array<number | string>>;
  fmLease(...args: Array<string | number>): Promise<number | number[]>;
  fmSettle(...args: Array<string | number>): Promise<string[]>;
  fmClaim(...args: Array<string | number>): Promise<number | string[]>;
  fmEnable(...args: Array<string | number>): Promise<number>;
  fmResume(...args: Array<string | number>): Promise<number>;
  fmRelease(...args: Array<string | number>): Promise<number>;
  /** setvars.lua: { 1 set | 0 refused, bytes, count }. */
  fmSetVars(...args: Array<string | number>): Promise<[number, number, number]>;
  /** secret-set.lua: 1 stored, 0 refused (too many credentials). */
  fmSecretSet(...args: Array<string | number>): Promise<number>;
  fmAutoResume(...args: Array<string | number>): Promise<string>;
  /** deploy.lua: { created, changed, version }, or a negative code. */
  fmDeploy(...args: Array<string | number>): Promise<[number, number, number] | number>;
  /** dispatch.lua: { job id, wake at (ms), picked ref JSON... }. */
  fmDispatch(...args: Array<string | number>): Promise<Array<string | number>>;
  /** sweep.lua: runs put back. */
  fmSweep(...args: Array<string | number>): Promise<number>;
  /** handoff.lua: the new job id. */
  fmHandoff(...args: Array<string | number>): Promise<string>;
  /** create.lua: the number of keys first. */
  fmCreate(numKeys: number, ...args: Array<string | number>): Promise<number[]>;
  /** cron-advance.lua: 1 when the entry moved on, 0 when it had changed since it was read. */
  fmCronAdvance(...args: Array<string | number>): Promise<number>;
  /** cron-due.lua: member, score, cursor ('' when none) for each due entry. */
  fmCronDue(...args: Array<string | number>): Promise<string[]>;
}

/** One connection to Redis, or to a Redis Cluster (`redis-cluster://`): the commands are the same. */
export type RedisConnection = Redis | Cluster;

/** A connection (single Redis or Cluster) with Flowmeter's scripts defined on it. */
export type FlowRedis = RedisConnection & FlowScripts;

export interface ConnectOptions {
  /** For long-lived processes (workers): retry forever and queue commands while reconnecting. */
  persistent?: boolean;
  /**
   * For servers: reconnect forever, but while Redis is unreachable every command fails at once
   * (no offline queue, 4 s command timeout) and nothing sent before a disconnect is resent after
   * it, so a request answered with an error is never acted on later (SPEC §10).
   */
  failFast?: boolean;
}

export function redisOptions(opts: ConnectOptions = {}): RedisOptions {
  if (opts.failFast) {
    return {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      commandTimeout: 4000,
      connectTimeout: 3000,
      enableReadyCheck: true,
      retryStrategy: (n) => Math.min(200 * n, 2000),
    };
  }
  return opts.persistent
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(200 * n, 2000) }
    : { maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: (n) => (n > 2 ? null : 100 * n) };
}

/**
 * The one factory of connections: `redis://` / `rediss://` (a single Redis) or
 * `redis-cluster://host:port,…` (an ioredis Cluster), with the options of `opts`. Scripts are
 * not defined here (openRedis does); errors are left to the commands that fail.
 */
export function newConnection(url: string, opts: ConnectOptions & { lazyConnect?: boolean } = {}): RedisConnection {
  let conn: RedisConnection;
  if (isClusterUrl(url)) {
    const c = parseClusterUrl(url);
    conn = new Cluster(c.nodes, clusterOptions(c, redisOptions(opts), { lazyConnect: opts.lazyConnect ?? false, failFast: opts.failFast }));
  } else {
    try {
      conn = new Redis(url, { ...(opts.lazyConnect && { lazyConnect: true }), ...redisOptions(opts) });
    } catch (err) {
      throw new FlowError('INVALID_INPUT', `bad Redis URL ${safeRedisUrl(url)}: ${(err as Error).message}`);
    }
  }
  conn.on('error', () => undefined); // reported by the commands that fail
  return conn;
}

/** Opens a connection and defines the scripts on it. */
export function openRedis(url: string, opts: ConnectOptions = {}): FlowRedis {
  const redis = newConnection(url, { ...opts, lazyConnect: true });
  for (const def of SCRIPTS) redis.defineCommand(def.name, { ...(def.keys !== null && { numberOfKeys: def.keys }), lua: source(def) });
  return redis as FlowRedis;
}

/** Connects and pings, failing with one clear line when Redis cannot be reached. */
export async function connectRedis(url: string, opts: ConnectOptions = {}): Promise<FlowRedis> {
  if (isClusterUrl(url)) await checkCluster(parseClusterUrl(url));
  const redis = openRedis(url, opts);
  let lastError: Error | null = null;
  const onError = (err: Error) => (lastError = err);
  redis.on('error', onError);
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      5000,
    );
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
    p.then(
      (v) => {
        clearTimeout(t);
        resolvePromise(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** ioredis' errors for a connection that is down, was lost, or did not answer in time. */
const CONNECTION_ERRORS =
  /enableOfflineQueue|Connection is closed|Command timed out|max retries per request|Reached the max retries|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|connect ETIMEDOUT|Socket closed unexpectedly|Cluster isn't ready|None of startup nodes|Failed to refresh slots cache|CLUSTERDOWN/i;

/** Whether `err` says Redis could not be reached (the one place connection errors are recognised). */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (e.code === 'REDIS_UNAVAILABLE' || e.name === 'MaxRetriesPerRequestError') return true;
  return (typeof e.code === 'string' && CONNECTION_ERRORS.test(e.code)) || (typeof e.message === 'string' && CONNECTION_ERRORS.test(e.message));
}
