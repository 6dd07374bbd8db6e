/** Commands that work on a scenario file alone: validate, schema, run (embedded). */
import type { Command } from 'commander';
import { createEmbedded } from '../../engine/embedded.js';
import { scenarioJsonSchema } from '../../scenario/schema.js';
import { CliError, EXIT } from '../errors.js';
import { exitCodeOf, formatRun } from '../format.js';
import { cliIo, loadScenarioFile, parseCount, readPayload, requireValid } from '../io.js';
import type { CommandResult } from '../main.js';
import { terminalProgress } from '../progress.js';

export function registerLocalCommands(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('validate')
    .description('check a scenario file: exit 0 if valid (warnings on stderr), 2 listing every problem')
    .argument('<file>', 'scenario JSON file')
    .action((file: string) => {
      const result = loadScenarioFile(file);
      const { stderr } = cliIo();
      for (const w of result.warnings) stderr.write(`warning: ${w}\n`);
      if (!result.scenario) {
        for (const p of result.problems) stderr.write(`${p}\n`);
        throw new CliError(`${file}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`);
      }
      done({ stdout: `${file}: valid (${result.scenario.nodes.length} nodes)\n`, exitCode: EXIT.ok });
    });

  program
    .command('schema')
    .description('print the JSON Schema of scenario files (for editors)')
    .action(() => done({ stdout: `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`, exitCode: EXIT.ok }));

  program
    .command('run')
    .description('run a scenario once, in this process, and print its task log')
    .argument('<file>', 'scenario JSON file')
    .option('--input <file>', 'JSON file with the trigger payload')
    .option('--payload <json>', 'the trigger payload as JSON')
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--quota <n>', 'monthly actions of the in-memory tenant (default 500, the free plan)')
    .option('--overage <mode>', 'halt or allow', 'halt')
    .option('--json', 'print the run record as one JSON document')
    .option('--verbose', 'also print the payload and every task input')
    .action(
      async (file: string, opts: { input?: string; payload?: string; tenant: string; quota?: string; overage: string; json?: boolean; verbose?: boolean }) => {
        // Flags first: a wrong flag is reported before the scenario is read.
        const payload = readPayload(opts);
        const monthlyActions = opts.quota === undefined ? undefined : parseCount(opts.quota, '--quota');
        if (opts.overage !== 'halt' && opts.overage !== 'allow') throw new CliError(`--overage must be halt or allow, got ${JSON.stringify(opts.overage)}`);
        const scenario = requireValid(file, loadScenarioFile(file));
        const { stderr } = cliIo();
        const progress = terminalProgress(stderr);
        const engine = createEmbedded({
          onTask: progress.onTask,
          onAlert: (a) =>
            stderr.write(`flowmeter: alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of its ${a.limit} actions for ${a.period}\n`),
        });
        try {
          await engine.ledger.setQuota(opts.tenant, { ...(monthlyActions !== undefined && { monthlyActions }), overage: opts.overage });
          const run = await engine.run(scenario, payload, { tenant: opts.tenant });
          const { pending, ...rest } = run;
          const doc = run.status === 'halted' ? { ...rest, pending } : rest;
          done({ stdout: opts.json ? `${JSON.stringify(doc)}\n` : formatRun(run, { verbose: opts.verbose }), exitCode: exitCodeOf(run) });
        } finally {
          progress.done();
          await engine.close();
        }
      },
    );
}
