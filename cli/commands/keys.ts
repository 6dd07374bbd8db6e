/** `flowmeter keys create --tenant T`: a new API key for the tenant (SPEC §8). */
import type { Command } from 'commander';
import { tenantOf, withProduction, type GlobalOpts } from '../production-io.js';
import type { CommandResult } from '../main.js';
import { CliError, EXIT } from '../errors.js';
import { cliIo } from '../io.js';

export function registerKeysCommand(program: Command, done: (r: CommandResult) => void): void {
  const keys = program.command('keys').description('API keys for the HTTP API (needs --redis)');

  keys
    .command('create')
    .description('print a new API key for the tenant (stored only as a hash; shown once)')
    .option('--tenant <tenant>', 'tenant', 'default')
    .action(async (_opts: unknown, cmd: Command) => {
      const tenant = tenantOf(cmd);
      if (!((cmd.optsWithGlobals() as GlobalOpts).redis ?? cliIo().env.FLOWMETER_REDIS_URL)) {
        throw new CliError('keys create needs Redis: pass --redis URL or set FLOWMETER_REDIS_URL (an embedded, in-memory key would not outlive this command)');
      }
      const key = await withProduction(cmd, (p) => p.keys.create(tenant));
      done({ stdout: `${key}\n`, exitCode: EXIT.ok });
    });
}
