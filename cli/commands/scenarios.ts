/** `flowmeter scenarios deploy|list|enable|disable|versions|rollback|delete`. */
import type { Command } from 'commander';
import { errorMessage } from '../../core/errors.js';
import { assertEnvAllowed, parseTenantEnv } from '../../services/tenant-env.js';
import { CliError, EXIT } from '../errors.js';
import { loadScenarioFile, requireValid } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { registerLifecycleCommands } from './scenario-lifecycle.js';

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
      try {
        assertEnvAllowed(scenario, parseTenantEnv(process.env));
      } catch (err) {
        throw new CliError(`${file}: ${errorMessage(err)}`, EXIT.invalid);
      }
      const out = await withProduction(cmd, async (p) => {
        const { created, changed, version } = await p.scenarios.deploy(tenant, scenario);
        if (opts.enable) await p.scenarios.enable(tenant, scenario.id, (await p.ledger.getQuota(tenant)).maxActiveScenarios);
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
      const list = await withProduction(cmd, (p) => p.scenarios.list(tenant));
      const text = opts.json
        ? `${JSON.stringify(list)}\n`
        : list.length === 0
          ? `no scenarios for tenant ${tenant}\n`
          : `${list
              .map((s) =>
                `${s.enabled ? 'enabled ' : 'disabled'}  ${s.id.padEnd(24)}  ${s.trigger.type.padEnd(8)}  ${s.nodes} nodes  ${s.name ?? ''}`.trimEnd(),
              )
              .join('\n')}\n`;
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
          if (verb === 'enable') await p.scenarios.enable(tenant, id, (await p.ledger.getQuota(tenant)).maxActiveScenarios);
          else await p.scenarios.disable(tenant, id);
        });
        done({ stdout: `${verb}d ${id}\n`, exitCode: EXIT.ok });
      });
  }

  registerLifecycleCommands(scenarios, done);
}
