/**
 * Redis URLs: passwords hidden for messages, and Redis Cluster URLs
 * (`redis-cluster://[user:password@]host:port[,host:port…]`): parsing, the ioredis Cluster
 * options, and the check made before a process connects (every node listed answers and
 * reports cluster_state:ok). The connection factory is client.ts's newConnection.
 */
import { type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { FlowError } from '../core/errors.js';

/** Hides a password in a Redis URL for messages. */
export function safeRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
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

/**
 * The Cluster options of a connection whose single-Redis options would be `node` (see
 * ConnectOptions in client.ts): the per-node options follow them.
 */
export function clusterOptions(c: ClusterUrl, node: RedisOptions, opts: { lazyConnect: boolean; failFast?: boolean }): ClusterOptions {
  const { lazyConnect } = opts;
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
 * Before a Cluster connects: every node of the URL must answer, and say `cluster_state:ok`
 * (ioredis would otherwise retry silently). One line naming the node and what is wrong.
 */
export async function checkCluster(c: ClusterUrl): Promise<void> {
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
          throw new FlowError('INVALID_INPUT', `Redis at ${name} is not a Redis Cluster node (cluster support disabled); use redis://${name}`);
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
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
