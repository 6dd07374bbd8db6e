/** `flowmeter plan set --file PLAN.json` and `plan show` (SPEC §11). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { errorMessage } from '../../core/errors.js';
import { parsePlan, planDocument } from '../../metering/plan.js';
import { CliError, EXIT } from '../errors.js';
import { parseJson } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

export function registerPlanCommands(program: Command, done: (r: CommandResult) => void): void {
  const plan = program.command('plan').description("set and show a tenant's plan (needs --redis)").option('--tenant <tenant>', 'tenant', 'default');
  plan
    .command('set')
    .description("set the plan from a JSON file; its includedActions becomes the quota's monthlyActions")
    .requiredOption('--file <file>', 'the plan document (JSON)')
    .action(async (opts: { file: string }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      let text: string;
      try {
        text = readFileSync(opts.file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read plan file ${opts.file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err)}`);
      }
      let parsed;
      try {
        parsed = parsePlan(parseJson(text, opts.file));
      } catch (err) {
        if (err instanceof CliError) throw err;
        throw new CliError(`${opts.file}: ${errorMessage(err)}`);
      }
      const p = parsed;
      await withProduction(cmd, (prod) => prod.ledger.setPlan(tenant, p));
      done({ stdout: `${JSON.stringify(planDocument(p))}\n`, exitCode: EXIT.ok });
    });
  plan.command('show').action(async (_o: unknown, cmd: Command) => {
    const tenant = tenantOf(cmd);
    const p = await withProduction(cmd, async (prod) => {
      await requireKnownTenant(prod, tenant);
      return prod.ledger.getPlan(tenant);
    });
    if (!p) throw new CliError(`tenant ${tenant} has no plan; set one with plan set --file PLAN.json`);
    done({ stdout: `${JSON.stringify(planDocument(p))}\n`, exitCode: EXIT.ok });
  });
}
