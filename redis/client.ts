/**
 * Redis connections and Lua scripts. Each script lives in its own file of redis/lua/ with a
 * header documenting KEYS, ARGV and return codes, and includes the shared Lua it needs
 * (lua-loader.ts). Scripts are defined once per connection (ioredis sends EVALSHA, falling
 * back to EVAL once); their negative return codes map to errors in script-errors.ts.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { FlowError } from '../core/errors.js';
import { loadLua } from './lua-loader.js';

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
  { name: 'fmCreate', script: 'create', keys: null },
  { name: 'fmAutoResume', script: 'autoresume', keys: 4 },
  { name: 'fmDeploy', script: 'deploy', keys: 2 },
  { name: 'fmCronAdvance', script: 'cron-advance', keys: 2 },
  { name: 'fmCronDue', script: 'cron-due', keys: 2 },
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
  fmAutoResume(...args: Array<string | number>): Promise<string>;
  /** deploy.lua: { created, changed, version }. */
  fmDeploy(...args: Array<string | number>): Promise<[number, number, number]>;
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

/** Hides a password in a Redis URL for messages. */
export function safeRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
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

/** The scheme of a Redis Cluster URL: `redis-cluster://[user:password@]host:port[,host:port…]`. */
export const CLUSTER_SCHEME = 'redis-cluster';

/** A Redis Cluster URL taken apart. */
export interface ClusterUrl {
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
}

/** Whether `url` names a Redis Cluster (`redis-cluster://…`). */
export function isClusterUrl(url: string): boolean {
  return url.toLowerCase().startsWith(`${CLUSTER_SCHEME}://`);
}

/** Parses `redis-cluster://[user:password@]host:port[,host:port…]`; INVALID_INPUT naming what is wrong. */
export function parseClusterUrl(url: string): ClusterUrl {
  const bad = (why: string) =>
    new FlowError('INVALID_INPUT', `bad Redis Cluster URL ${safeRedisUrl(url)}: ${why}; write ${CLUSTER_SCHEME}://host:port,host:port`);
  let rest = url.slice(CLUSTER_SCHEME.length + 3).replace(/\/+$/, '');
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : '') || undefined;
    password = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth) || undefined;
  }
  if (rest === '') throw bad('it names no node');
  const nodes = rest.split(',').map((hp) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(hp.trim());
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) throw bad(`${JSON.stringify(hp)} is not host:port`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
  return { nodes, username, password };
}

/** The Cluster options for `opts` (see ConnectOptions): the per-node options follow redisOptions. */
function clusterOptions(c: ClusterUrl, opts: ConnectOptions, lazyConnect: boolean): ClusterOptions {
  const node = redisOptions(opts);
  const auth = { ...(c.username && { username: c.username }), ...(c.password && { password: c.password }) };
  const retry = node.retryStrategy as (n: number) => number | null;
  return {
    lazyConnect,
    enableReadyCheck: true,
    // Fail-fast: a command for a node that is not connected fails at once (the cluster's own
    // offline queue is off); the nodes' own queues stay on (they connect lazily on first use).
    enableOfflineQueue: !opts.failFast,
    clusterRetryStrategy: (n) => retry(n),
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...auth,
      maxRetriesPerRequest: node.maxRetriesPerRequest,
      ...(node.connectTimeout !== undefined && { connectTimeout: node.connectTimeout }),
      ...(node.commandTimeout !== undefined && { commandTimeout: node.commandTimeout }),
      ...(node.autoResendUnfulfilledCommands !== undefined && { autoResendUnfulfilledCommands: node.autoResendUnfulfilledCommands }),
    },
  };
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
    conn = new Cluster(c.nodes, clusterOptions(c, opts, opts.lazyConnect ?? false));
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

/**
 * Before a Cluster connects: every node of the URL must answer, and say `cluster_state:ok`
 * (ioredis would otherwise retry silently). One line naming the node and what is wrong.
 */
async function checkCluster(c: ClusterUrl): Promise<void> {
  await Promise.all(
    c.nodes.map(async ({ host, port }) => {
      const name = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const r = new Redis({
        host,
        port,
        username: c.username,
        password: c.password,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        connectTimeout: 3000,
        retryStrategy: () => null,
      });
      let lastError: Error | null = null;
      r.on('error', (err: Error) => (lastError = err));
      let info: string;
      try {
        info = String(
          await withTimeout(
            r.connect().then(() => r.cluster('INFO')),
            4000,
          ),
        );
      } catch (err) {
        const cause = (lastError as Error | null) ?? (err as Error);
        const why = (cause as NodeJS.ErrnoException).code ?? (cause.message || String(cause)).split('\n')[0];
        if (/cluster support disabled/i.test(String(why)))
          throw new FlowError('REDIS_UNAVAILABLE', `Redis at ${name} is not a Redis Cluster node (cluster support disabled); use redis://${name}`);
        throw new FlowError('REDIS_UNAVAILABLE', `cannot reach Redis Cluster node ${name}: ${why}`);
      } finally {
        r.disconnect();
      }
      const state = /^cluster_state:(\w+)/m.exec(info)?.[1] ?? 'unknown';
      if (state !== 'ok') {
        const slots = /^cluster_slots_assigned:(\d+)/m.exec(info)?.[1];
        throw new FlowError(
          'REDIS_UNAVAILABLE',
          `Redis Cluster node ${name} reports cluster_state:${state}, not ok (${slots ?? '?'} of 16384 slots assigned): the cluster cannot serve every key`,
        );
      }
    }),
  );
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
