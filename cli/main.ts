/** `flowmeter <command>`: the command line of SPEC.md §7, as a function (`bin/flowmeter.js` calls it). */
import { Command, CommanderError } from 'commander';
import { errorCode, exitCodeOf } from '../core/errors.js';
import { registerDevCommand } from './commands/dev.js';
import { registerEstimateCommand } from './commands/estimate.js';
import { registerInvoiceCommand } from './commands/invoice.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerLocalCommands } from './commands/local.js';
import { registerPlanCommands } from './commands/plan.js';
import { registerRunCommands } from './commands/runs.js';
import { registerScenarioCommands } from './commands/scenarios.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { registerSchedulerCommand } from './commands/scheduler.js';
import { registerSecretsCommand } from './commands/secrets.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTailCommand } from './commands/tail.js';
import { registerUsageCommands } from './commands/usage.js';
import { registerWorkerCommand } from './commands/worker.js';
import { CliError, EXIT } from './errors.js';
import { type CliIo, processIo, withCliIo } from './io.js';

export interface CommandResult {
  stdout: string;
  exitCode: number;
}

export function buildProgram(done: (r: CommandResult) => void): Command {
  const program = new Command('flowmeter')
    .description('Flowmeter: workflow execution with built-in metering')
    .version('0.1.0')
    .option('--redis <url>', 'Redis URL: production store and queue (or FLOWMETER_REDIS_URL); redis-cluster://host:port,host:port for a Redis Cluster')
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
  registerSecretsCommand(program, done);
  registerPlanCommands(program, done);
  registerInvoiceCommand(program, done);
  return program;
}

/**
 * Runs `flowmeter ARGS` (the arguments after the program name) and resolves to its exit code
 * (SPEC.md §7). Output goes to `io` (default: the process's streams and environment), so
 * tests run the command line in process; `bin/flowmeter.js` sets the process exit code.
 * Never rejects: a failure is one line on `io.stderr` and a non-zero code.
 */
export async function main(args: string[], io: Partial<CliIo> = {}): Promise<number> {
  const full: CliIo = { ...processIo(), ...io };
  // The process's own streams need no AsyncLocalStorage (cliIo() falls back to them): entering
  // one turns promise hooks on for the whole process, which cost a worker ~4% of its CPU.
  if (Object.keys(io).length === 0) return runCli(args, full);
  return withCliIo(full, () => runCli(args, full));
}

async function runCli(args: string[], io: CliIo): Promise<number> {
  let result: CommandResult | null = null;
  const program = buildProgram((r) => (result = r));
  program.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: () => undefined });
  const fail = (message: string, code: number): number => {
    io.stderr.write(`flowmeter: ${message}\n`);
    return code;
  };
  try {
    await program.parseAsync(args, { from: 'user' });
    const r = result as CommandResult | null;
    if (!r) return EXIT.ok;
    if (r.stdout) io.stdout.write(r.stdout);
    return r.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return fail(err.message.replace(/^error: /, '').split('\n')[0]!, EXIT.invalid);
    }
    if (err instanceof CliError) return fail(err.message, err.exitCode);
    // A FlowError exits as the registry says (INVALID_INPUT 2, ...); anything else 1.
    return fail((err as Error)?.message ?? String(err), exitCodeOf(errorCode(err)));
  }
}
