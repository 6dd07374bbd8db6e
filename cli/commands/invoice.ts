/** `flowmeter invoice --tenant T [--period YYYY-MM] [--json]` (SPEC §11). */
import type { Command } from 'commander';
import { formatInvoice, invoiceOf } from '../../metering/invoice.js';
import { CliError, EXIT } from '../errors.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

export function registerInvoiceCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('invoice')
    .description("a tenant's invoice for a billing period from its plan (the current period's is a preview; needs --redis)")
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--period <YYYY-MM>', 'billing period (default: the current one)')
    .option('--json', 'print the invoice as JSON')
    .action(async (opts: { period?: string; json?: boolean }, cmd: Command) => {
      if (opts.period && !/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.period)) throw new CliError(`--period must be YYYY-MM, got ${JSON.stringify(opts.period)}`);
      const tenant = tenantOf(cmd);
      const inv = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return invoiceOf(p.ledger, tenant, new Date(), opts.period);
      });
      done({ stdout: opts.json ? `${JSON.stringify(inv)}\n` : formatInvoice(inv), exitCode: EXIT.ok });
    });
}
