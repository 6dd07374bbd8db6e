/** Opening production mode from the command line: --redis URL / FLOWMETER_REDIS_URL. */
import type { Command } from 'commander';
import { errorCode, errorMessage, exitCodeOf } from '../core/errors.js';
import { safeRedisUrl } from '../redis/client.js';
import { createProduction, type Production, type ProductionOptions } from '../redis/production.js';
import { isClusterUrl, parseClusterUrl } from '../redis/redis-url.js';
import { CliError } from './errors.js';
import { cliIo } from './io.js';

export interface GlobalOpts {
  redis?: string;
  prefix?: string;
}

export function redisUrlOf(cmd: Command): string {
  const url = (cmd.optsWithGlobals() as GlobalOpts).redis ?? cliIo().env.FLOWMETER_REDIS_URL;
  if (!url) throw new CliError(`${cmd.name()} needs Redis: pass --redis URL or set FLOWMETER_REDIS_URL`);
  // ioredis takes anything else for a Unix socket path, and then says only ENOENT.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme && !/^(rediss?|redis-cluster)$/i.test(scheme))
    throw new CliError(
      `--redis ${JSON.stringify(safeRedisUrl(url))} is not a redis:// or redis-cluster:// URL (a ${scheme}:// URL); write redis://host:6379, rediss://host:6380 or redis-cluster://host:7000,host:7001`,
    );
  if (isClusterUrl(url)) {
    try {
      parseClusterUrl(url);
    } catch (err) {
      throw new CliError(errorMessage(err));
    }
  }
  return url;
}

/** Opens production mode, or fails with one line naming what is wrong. */
export async function openProduction(cmd: Command, opts: Partial<ProductionOptions> = {}): Promise<Production> {
  const g = cmd.optsWithGlobals() as GlobalOpts;
  const { env } = cliIo();
  const retentionDays = positive(env.FLOWMETER_RETENTION_DAYS, 'FLOWMETER_RETENTION_DAYS');
  const taskBytes = positive(env.FLOWMETER_TASK_BYTES, 'FLOWMETER_TASK_BYTES');
  try {
    return await createProduction({ redisUrl: redisUrlOf(cmd), prefix: g.prefix ?? env.FLOWMETER_PREFIX ?? 'fm', retentionDays, taskBytes, ...opts });
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(errorMessage(err), exitCodeOf(errorCode(err)));
  }
}

/** Runs `fn` with production mode open, closing it afterwards; store errors become one line. */
export async function withProduction<T>(cmd: Command, fn: (p: Production) => Promise<T>, opts: Partial<ProductionOptions> = {}): Promise<T> {
  const p = await openProduction(cmd, opts);
  try {
    return await fn(p);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(errorMessage(err), exitCodeOf(errorCode(err)));
  } finally {
    await p.close();
  }
}

/** A positive number from the environment, or undefined when unset. */
function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

export function tenantOf(cmd: Command): string {
  const t = (cmd.optsWithGlobals() as { tenant?: string }).tenant ?? 'default';
  if (!/^[a-z0-9_-]{1,64}$/.test(t)) throw new CliError(`--tenant must be 1-64 of a-z 0-9 - _, got ${JSON.stringify(t)}`);
  return t;
}
