/** Refusing unknown tenants: a typo in `--tenant` must not read or create a fresh tenant. */

import type { Command } from 'commander';
import { didYouMean } from '../../core/suggest.js';
import type { Production } from '../../redis/production.js';
import { CliError, EXIT } from '../errors.js';
import { cliIo } from '../io.js';

/** A tenant is known when it has data (scenarios, runs), a quota, API keys or secrets; `default` always is. */
async function isKnown(p: Production, tenant: string): Promise<boolean> {
  if (tenant === 'default') return true;
  const k = p.redisKeys;
  const [member, own] = await Promise.all([p.redis.sismember(k.tenants(), tenant), p.redis.exists(k.quota(tenant), k.apiKeys(tenant), k.secrets(tenant))]);
  return member === 1 || own > 0;
}

/**
 * Throws NOT_FOUND (exit 2) for an unknown tenant, with the closest known one as a
 * suggestion; `create` names the flag that would create it, for commands that write.
 */
export async function requireKnownTenant(p: Production, tenant: string, create?: string): Promise<void> {
  if (await isKnown(p, tenant)) return;
  const hint = didYouMean(tenant, await p.redis.smembers(p.redisKeys.tenants()));
  throw new CliError(`no tenant ${JSON.stringify(tenant)}${hint}${create ? ` (pass ${create} to create it)` : ''}`, EXIT.invalid);
}

/** Whether `--tenant` was given on the command line (on the command or a parent), not defaulted. */
export function tenantGiven(cmd: Command): boolean {
  for (let c: Command | null = cmd; c; c = c.parent) if (c.getOptionValueSource('tenant') === 'cli') return true;
  return false;
}

/** For commands that change a tenant: a note on stderr when the tenant is `default` only because no --tenant was given. */
export function noteDefaultTenant(cmd: Command, what: string): void {
  if (!tenantGiven(cmd)) cliIo().stderr.write(`note: no --tenant given, so this ${what} tenant default\n`);
}
