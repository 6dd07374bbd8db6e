/** `flowmeter <command>`: the command line of SPEC.md §7. */
import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './errors.js';
import { registerLocalCommands } from './commands/local.js';
import { registerEstimateCommand } from './commands/estimate.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerScenarioCommands } from './commands/scenarios.js';
import { registerRunCommands } from './commands/runs.js';
import { registerUsageCommands } from './commands/usage.js';
import { registerSchedulerCommand } from './commands/scheduler.js';
import { registerServeCommand } from './commands/serve.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerTailCommand } from './commands/tail.js';
import { registerDevCommand } from './commands/dev.js';
import { registerPlanCommands } from './commands/plan.js';
import { registerInvoiceCommand } from './commands/invoice.js';

export interface CommandResult {
  stdout: string;
  exitCode: number;
}

export function buildProgram(done: (r: CommandResult) => void): Command {
  const program = new Command('flowmeter')
    .description('Flowmeter: workflow execution with built-in metering')
    .version('0.1.0')
    .option('--redis <url>', 'Redis URL: production store and queue (or FLOWMETER_REDIS_URL)')
    .option('--prefix <prefix>', 'Redis key prefix (or FLOWMETER_PREFIX; default fm)')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeErr: () => undefined });
  registerLocalCommands(program, done);
  registerEstimateCommand(program, done);
  registerScheduleCommands(program, done);
  registerWorkerCommand(program, done);
  registerScenarioCommands(program, done);
  registerRunCommands(program, done);
  registerUsageCommands(program, done);
  registerSchedulerCommand(program, done);
  registerServeCommand(program, done);
  registerKeysCommand(program, done);
  registerTailCommand(program, undefined, done);
  registerDevCommand(program, done);
  registerPlanCommands(program, done);
  registerInvoiceCommand(program, done);
  return program;
}

function finish(stdout: string, exitCode: number): void {
  process.exitCode = exitCode;
  if (stdout) process.stdout.write(stdout);
  // Leave once stdout has drained, whatever handles (sockets, isolates) are still open.
  process.stdout.write('', () => setTimeout(() => process.exit(exitCode), 0).unref());
}

async function main(argv: string[]): Promise<void> {
  let result: CommandResult | null = null;
  const program = buildProgram((r) => (result = r));
  try {
    await program.parseAsync(argv);
    const r = result as CommandResult | null;
    if (r) finish(r.stdout, r.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return finish('', EXIT.ok);
      }
      process.stderr.write(`flowmeter: ${err.message.replace(/^error: /, '').split('\n')[0]}\n`);
      return finish('', EXIT.invalid);
    }
    if (err instanceof CliError) {
      process.stderr.write(`flowmeter: ${err.message}\n`);
      return finish('', err.exitCode);
    }
    process.stderr.write(`flowmeter: ${(err as Error)?.message ?? String(err)}\n`);
    return finish('', EXIT.failed);
  }
}

await main(process.argv);
