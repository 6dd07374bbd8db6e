/** `flowmeter scenarios deploy|list|enable|disable|versions|rollback|delete`. */
import type { Command } from 'commander';
import { errorMessage } from '../../core/errors.js';
import { refNames } from '../../core/redact.js';
import type { Production } from '../../redis/production.js';
import { cronBudgetWarning } from '../../scenario/estimate.js';
import type { Scenario } from '../../scenario/schema.js';
import { assertEnvAllowed, parseTenantEnv } from '../../services/tenant-env.js';
import { CliError, EXIT } from '../errors.js';
import { tenantListing } from '../format.js';
import { cliIo, loadScenarioFile, requireValid } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { registerLifecycleCommands } from './scenario-lifecycle.js';
import { requireKnownTenant } from './tenants.js';

/**
 * Warnings for the `${secret:NAME}` the tenant has not stored and the `${env:NAME}` not set in
 * this process: both are read by the worker that runs the scenario, not here, so an env
 * variable may well be set there.
 */
async function referenceWarnings(p: Production, tenant: string, scenario: Scenario, env: Record<string, string | undefined>): Promise<string[]> {
  const out: string[] = [];
  const secrets = [...refNames(scenario, 'secret')].sort();
  if (secrets.length) {
    const stored = new Set((await p.secrets.list(tenant)).map((s) => s.name));
    for (const name of secrets.filter((n) => !stored.has(n)))
      out.push(
        `warning: \${secret:${name}} is not stored for tenant ${tenant}; runs fail with SECRET_MISSING until \`flowmeter secrets set ${name} --tenant ${tenant}\``,
      );
  }
  for (const name of [...refNames(scenario, 'env')].sort().filter((n) => env[n] === undefined))
    out.push(`warning: \${env:${name}} is not set here; the worker reads it from its own environment when the scenario runs, so set ${name} there`);
  return out;
}

/** Enabling a cron scenario whose firings would pass the actions left: a warning on stderr. */
async function warnCronBudget(p: Production, tenant: string, id: string): Promise<void> {
  const scenario = await p.scenarios.get(tenant, id);
  if (scenario?.trigger.type !== 'cron') return;
  const now = new Date();
  const warning = cronBudgetWarning(scenario, await p.ledger.usage(tenant, now), now);
  if (warning) cliIo().stderr.write(`warning: ${warning}\n`);
}

export function registerScenarioCommands(program: Command, done: (r: CommandResult) => void): void {
  const scenarios = program.command('scenarios').description('manage stored scenarios (needs --redis)').option('--tenant <tenant>', 'tenant', 'default');

  scenarios
    .command('deploy')
    .argument('<file>', 'scenario JSON file')
    .option('--enable', 'also enable it (webhooks and cron fire only for enabled scenarios)')
    .description('validate and store a scenario (replacing one with the same id)')
    .action(async (file: string, opts: { enable?: boolean }, cmd: Command) => {
      const scenario = requireValid(file, loadScenarioFile(file));
      const tenant = tenantOf(cmd);
      const { env, stderr } = cliIo();
      try {
        assertEnvAllowed(scenario, parseTenantEnv(env));
      } catch (err) {
        throw new CliError(`${file}: ${errorMessage(err)}`, EXIT.invalid);
      }
      const out = await withProduction(cmd, async (p) => {
        const { created, changed, version } = await p.scenarios.deploy(tenant, scenario);
        for (const line of await referenceWarnings(p, tenant, scenario, env)) stderr.write(`${line}\n`);
        if (opts.enable) {
          await p.scenarios.enable(tenant, scenario.id, (await p.ledger.getQuota(tenant)).maxActiveScenarios);
          await warnCronBudget(p, tenant, scenario.id);
        }
        const enabled = await p.scenarios.isEnabled(tenant, scenario.id);
        const what = !changed
          ? `unchanged ${scenario.id} (still version ${version})`
          : `${created ? 'deployed' : 'updated'} ${scenario.id} as version ${version}`;
        return `${what} for tenant ${tenant} (${enabled ? 'enabled' : `disabled; \`flowmeter scenarios enable ${scenario.id}\` to enable`})\n`;
      });
      done({ stdout: out, exitCode: EXIT.ok });
    });

  scenarios
    .command('list')
    .option('--json', 'print JSON')
    .description("list the tenant's scenarios")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const list = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.scenarios.list(tenant);
      });
      const text = tenantListing(
        tenant,
        'scenarios',
        list,
        (s) => `${s.enabled ? 'enabled ' : 'disabled'}  ${s.id.padEnd(24)}  ${s.trigger.type.padEnd(8)}  ${s.nodes} nodes  ${s.name ?? ''}`.trimEnd(),
        opts.json,
      );
      done({ stdout: text, exitCode: EXIT.ok });
    });

  for (const verb of ['enable', 'disable'] as const) {
    scenarios
      .command(verb)
      .argument('<id>', 'scenario id')
      .description(`${verb} a scenario${verb === 'enable' ? ' (refused past maxActiveScenarios)' : ''}`)
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const tenant = tenantOf(cmd);
        await withProduction(cmd, async (p) => {
          await requireKnownTenant(p, tenant);
          if (verb === 'disable') return p.scenarios.disable(tenant, id);
          await p.scenarios.enable(tenant, id, (await p.ledger.getQuota(tenant)).maxActiveScenarios);
          await warnCronBudget(p, tenant, id);
        });
        done({ stdout: `${verb}d ${id} for tenant ${tenant}\n`, exitCode: EXIT.ok });
      });
  }

  registerLifecycleCommands(scenarios, done);
}
