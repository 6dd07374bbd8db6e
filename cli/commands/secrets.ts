/** `flowmeter secrets set|list|delete`: a tenant's stored credentials (SPEC §9; needs --redis). */
import type { Command } from 'commander';
import { errorMessage } from '../../core/errors.js';
import { checkSecret } from '../../services/secrets.js';
import { CliError, EXIT } from '../errors.js';
import { tenantListing } from '../format.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

/** Standard input, without one trailing newline. */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('secrets set: pass the value on standard input or with --value V');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function checked(name: string, value?: string): void {
  try {
    checkSecret(name, value);
  } catch (err) {
    throw new CliError(errorMessage(err), EXIT.invalid);
  }
}

export function registerSecretsCommand(program: Command, done: (r: CommandResult) => void): void {
  const secrets = program.command('secrets').description("a tenant's credentials for ${secret:NAME} (needs --redis and FLOWMETER_SECRETS_KEY)");

  secrets
    .command('set')
    .argument('<name>', 'credential name')
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--value <value>', 'the value (else read from standard input)')
    .description('store a credential, encrypted (the value is never printed)')
    .action(async (name: string, opts: { value?: string }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      checked(name);
      const value = opts.value ?? (await readStdin());
      checked(name, value);
      await withProduction(cmd, (p) => p.secrets.set(tenant, name, value));
      done({ stdout: `set secret ${name} for tenant ${tenant}\n`, exitCode: EXIT.ok });
    });

  secrets
    .command('list')
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--json', 'print JSON')
    .description("names and updatedAt of the tenant's credentials (never values)")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const list = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.secrets.list(tenant);
      });
      const text = tenantListing(tenant, 'secrets', list, (s) => `${s.name.padEnd(32)}  ${s.updatedAt}`, opts.json);
      done({ stdout: text, exitCode: EXIT.ok });
    });

  secrets
    .command('delete')
    .argument('<name>', 'credential name')
    .option('--tenant <tenant>', 'tenant', 'default')
    .description('remove a credential')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const tenant = tenantOf(cmd);
      checked(name);
      const removed = await withProduction(cmd, (p) => p.secrets.delete(tenant, name));
      if (!removed) throw new CliError(`no secret ${name} for tenant ${tenant}`, EXIT.invalid);
      done({ stdout: `deleted secret ${name} for tenant ${tenant}\n`, exitCode: EXIT.ok });
    });
}
