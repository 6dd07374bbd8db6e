/** `flowmeter runs replay RUN_ID [--wait] [--json]` (SPEC §12). */
import type { Command } from 'commander';
import { planReplay } from '../../engine/replay.js';
import { newRun } from '../../engine/run-record.js';
import { EXIT } from '../errors.js';
import { exitCodeOf, formatRun } from '../format.js';
import { parseCount } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireWorker } from './preflight.js';

export function registerReplayCommand(runs: Command, done: (r: CommandResult) => void): void {
  runs
    .command('replay')
    .argument('<runId>', 'any run whose trigger payload was kept (rejected, failed or other)')
    .description("start a new run of the scenario's current version with the run's trigger payload")
    .option('--wait', 'wait for the new run to end and print its record')
    .option('--timeout <ms>', 'with --wait: give up after this long', '300000')
    .option('--json', 'print JSON')
    .action(async (runId: string, opts: { wait?: boolean; timeout: string; json?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const timeout = parseCount(opts.timeout, '--timeout', 1);
      const result = await withProduction(cmd, async (p): Promise<CommandResult> => {
        const plan = await planReplay(p, tenant, runId);
        if (!opts.wait) {
          const run = await p.trigger(tenant, plan.scenario.id, plan.payload, plan.trigger);
          const text = opts.json
            ? `${JSON.stringify({ runId: run.runId, replayOf: runId, version: run.version ?? null })}\n`
            : `${run.runId} (replay of ${runId})\n`;
          return { stdout: text, exitCode: EXIT.ok };
        }
        await requireWorker(p);
        // Subscribe first, then persist and enqueue: the end of the run cannot be missed.
        const run = newRun(plan.scenario, tenant, plan.trigger);
        const ended = await p.waitFor(
          tenant,
          run.runId,
          async () => {
            await p.runs.create(run, plan.scenario, plan.payload);
            await p.queue.enqueue({ tenant, runId: run.runId, scenarioId: plan.scenario.id });
          },
          timeout,
        );
        return { stdout: opts.json ? `${JSON.stringify(ended)}\n` : formatRun(ended), exitCode: exitCodeOf(ended) };
      });
      done(result);
    });
}
