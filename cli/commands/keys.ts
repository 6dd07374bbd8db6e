/** `flowmeter keys create|list|revoke`: API keys for the HTTP API (SPEC §8, §9). */
import type { Command } from 'commander';
import { apiKeyId, KEY_ID_RE } from '../../services/api-keys.js';
import { CliError, EXIT } from '../errors.js';
import { tenantListing } from '../format.js';
import { cliIo } from '../io.js';
import type { CommandResult } from '../main.js';
import { type GlobalOpts, tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

function needRedis(cmd: Command, what: string): void {
  if (!((cmd.optsWithGlobals() as GlobalOpts).redis ?? cliIo().env.FLOWMETER_REDIS_URL)) {
    throw new CliError(`${what} needs Redis: pass --redis URL or set FLOWMETER_REDIS_URL (embedded, in-memory keys would not outlive this command)`);
  }
}

export function registerKeysCommand(program: Command, done: (r: CommandResult) => void): void {
  const keys = program.command('keys').description('API keys for the HTTP API (needs --redis)');

  keys
    .command('create')
    .description('print `ID KEY`: a new API key for the tenant (stored only as a hash; shown once)')
    .option('--tenant <tenant>', 'tenant', 'default')
    .action(async (_opts: unknown, cmd: Command) => {
      const tenant = tenantOf(cmd);
      needRedis(cmd, 'keys create');
      const key = await withProduction(cmd, (p) => p.keys.create(tenant));
      done({ stdout: `${apiKeyId(key)} ${key}\n`, exitCode: EXIT.ok });
    });

  keys
    .command('list')
    .description("the tenant's keys: id, created, last used (never the key)")
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      needRedis(cmd, 'keys list');
      const list = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.keys.list(tenant);
      });
      const text = tenantListing(tenant, 'keys', list, (k) => `${k.id}  created ${k.createdAt}  last used ${k.lastUsedAt ?? 'never'}`, opts.json);
      done({ stdout: text, exitCode: EXIT.ok });
    });

  keys
    .command('revoke')
    .argument('<id>', 'key id (as `keys list` shows it)')
    .option('--tenant <tenant>', 'tenant (needed only for keys created before ids were indexed)')
    .description('revoke a key: requests with it get 401 at once')
    .action(async (id: string, opts: { tenant?: string }, cmd: Command) => {
      if (!KEY_ID_RE.test(id)) throw new CliError(`a key id is 16 hex digits (see keys list), got ${JSON.stringify(id.slice(0, 40))}`);
      needRedis(cmd, 'keys revoke');
      const tenant = opts.tenant === undefined ? undefined : tenantOf(cmd);
      const owner = await withProduction(cmd, (p) => p.keys.revoke(id, tenant));
      if (!owner) throw new CliError(`no key ${id}${tenant ? ` for tenant ${tenant}` : ''}`);
      done({ stdout: `revoked key ${id} of tenant ${owner}\n`, exitCode: EXIT.ok });
    });
}
