/** `flowmeter scenarios versions|rollback|delete` (SPEC §12). */
import type { Command } from 'commander';
import type { ScenarioVersion } from '../../engine/scenario-store.js';
import { EXIT } from '../errors.js';
import { parseCount } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

function formatVersions(id: string, tenant: string, list: ScenarioVersion[]): string {
  const current = list.length;
  return (
    `versions of ${id} for tenant ${tenant}:\n` +
    list
      .map(
        (v) =>
          `${v.version === current ? '*' : ' '} ${String(v.version).padStart(3)}  ${v.deployedAt}  ${v.hash.slice(0, 12)}  ${v.scenario.nodes.length} nodes${v.rollbackOf !== undefined ? `  (rollback to ${v.rollbackOf})` : ''}`,
      )
      .join('\n') +
    '\n'
  );
}

export function registerLifecycleCommands(scenarios: Command, done: (r: CommandResult) => void): void {
  scenarios
    .command('versions')
    .argument('<id>', 'scenario id')
    .option('--json', 'print an array of { version, deployedAt, hash, rollbackOf?, scenario }')
    .description('list the deployed versions of a scenario (* marks the current one)')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const list = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.scenarios.versions(tenant, id);
      });
      done({ stdout: opts.json ? `${JSON.stringify(list)}\n` : formatVersions(id, tenant, list), exitCode: EXIT.ok });
    });

  scenarios
    .command('rollback')
    .argument('<id>', 'scenario id')
    .requiredOption('--to <n>', 'the version to make current again')
    .description('make an earlier version current, as a new version that copies it (the history only grows)')
    .action(async (id: string, opts: { to: string }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const to = parseCount(opts.to, '--to', 1);
      const r = await withProduction(cmd, (p) => p.scenarios.rollback(tenant, id, to));
      const text = r.changed
        ? `rolled back ${id} for tenant ${tenant}: version ${r.version} is a copy of version ${to} and is now current\n`
        : `${id} for tenant ${tenant} already runs the document of version ${to} (current version ${r.version}); nothing changed\n`;
      done({ stdout: text, exitCode: EXIT.ok });
    });

  scenarios
    .command('delete')
    .argument('<id>', 'scenario id')
    .description('stop a scenario taking triggers and remove it from the list (its runs stay until retention)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const tenant = tenantOf(cmd);
      await withProduction(cmd, (p) => p.scenarios.delete(tenant, id));
      done({ stdout: `deleted ${id} for tenant ${tenant}; its runs stay until retention\n`, exitCode: EXIT.ok });
    });
}
