/** `flowmeter trigger` and `flowmeter runs list|show|resume`. */
import type { Command } from 'commander';
import type { RunRecord, RunStatus } from '../../core/types.js';
import type { RunSummary } from '../../engine/stores.js';
import { CliError, EXIT } from '../errors.js';
import { exitCodeOf, formatRun } from '../format.js';
import { parseCount, readPayload } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireActionsToResume, requireWorker } from './preflight.js';
import { registerReplayCommand } from './replay.js';
import { requireKnownTenant } from './tenants.js';

const STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'halted', 'rejected'];

function printRun(run: RunRecord, json: boolean | undefined): CommandResult {
  return { stdout: json ? `${JSON.stringify(run)}\n` : formatRun(run), exitCode: exitCodeOf(run) };
}

function formatList(tenant: string, list: RunSummary[]): string {
  if (list.length === 0) return `no runs for tenant ${tenant}\n`;
  return `runs of tenant ${tenant}:\n${list
    .map(
      (r) =>
        `${r.runId}  ${r.scenarioId.padEnd(20)}  ${r.status.padEnd(9)}  ${String(r.actions).padStart(6)} actions  ${r.startedAt ?? '(not started)'}${r.error ? `  ${r.error.code}` : ''}${r.waiting ? `  waiting: ${r.waiting}` : ''}`,
    )
    .join('\n')}\n`;
}

export function registerRunCommands(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('trigger')
    .description('enqueue a run of a stored scenario (needs --redis)')
    .argument('<id>', 'scenario id')
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--payload <json>', 'the trigger payload as JSON')
    .option('--input <file>', 'JSON file with the trigger payload')
    .option('--test', 'a non-billable test run')
    .option('--wait', 'wait for the run to end and print its record')
    .option('--timeout <ms>', 'with --wait: give up after this long', '300000')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { payload?: string; input?: string; test?: boolean; wait?: boolean; timeout: string; json?: boolean }, cmd: Command) => {
      const payload = readPayload(opts);
      const tenant = tenantOf(cmd);
      const timeout = parseCount(opts.timeout, '--timeout', 1);
      const result = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        const trigger = { type: 'manual' as const, ...(opts.test && { test: true }) };
        if (!opts.wait) {
          const run = await p.trigger(tenant, id, payload, trigger);
          return { stdout: opts.json ? `${JSON.stringify({ runId: run.runId, status: run.status })}\n` : `${run.runId}\n`, exitCode: EXIT.ok };
        }
        let runId = '';
        const scenario = await p.scenarios.get(tenant, id);
        if (!scenario) throw new CliError(`no scenario ${JSON.stringify(id)} for tenant ${tenant}`);
        await requireWorker(p);
        // Subscribe first, then persist and enqueue: the end of the run cannot be missed.
        const { newRun } = await import('../../engine/run-record.js');
        const run = newRun(scenario, tenant, trigger);
        runId = run.runId;
        const ended = await p.waitFor(
          tenant,
          runId,
          async () => {
            await p.runs.create(run, scenario, payload);
            await p.queue.enqueue({ tenant, runId, scenarioId: id });
          },
          timeout,
        );
        return printRun(ended, opts.json);
      });
      done(result);
    });

  const runs = program.command('runs').description('inspect and resume runs (needs --redis)').option('--tenant <tenant>', 'tenant', 'default');

  runs
    .command('list')
    .option('--scenario <id>', 'only this scenario')
    .option('--status <status>', `only this status (${STATUSES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print an array of run summaries')
    .action(async (opts: { scenario?: string; status?: string; limit: string; json?: boolean }, cmd: Command) => {
      if (opts.status && !STATUSES.includes(opts.status as RunStatus))
        throw new CliError(`--status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(opts.status)}`);
      const limit = parseCount(opts.limit, '--limit', 1);
      const tenant = tenantOf(cmd);
      const list = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.runs.list(tenant, { scenarioId: opts.scenario, status: opts.status as RunStatus | undefined, limit });
      });
      done({ stdout: opts.json ? `${JSON.stringify(list)}\n` : formatList(tenant, list), exitCode: EXIT.ok });
    });

  runs
    .command('show')
    .argument('<runId>', 'run id')
    .option('--json', 'print the run record')
    .option('--verbose', 'also print the payload and every task input')
    .action(async (runId: string, opts: { json?: boolean; verbose?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const run = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.runs.get(tenant, runId);
      });
      if (!run) throw new CliError(`no run ${JSON.stringify(runId)} for tenant ${tenant}`);
      const { pending, ...rest } = run;
      done({ stdout: opts.json ? `${JSON.stringify(run.status === 'halted' ? run : rest)}\n` : formatRun(run, { verbose: opts.verbose }), exitCode: EXIT.ok });
      void pending;
    });

  runs
    .command('resume')
    .argument('<runId>', 'a halted run')
    .option('--wait', 'wait for the run to end and print its record')
    .option('--json', 'print JSON')
    .action(async (runId: string, opts: { wait?: boolean; json?: boolean }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      const result = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        const run = await p.runs.get(tenant, runId);
        if (!run) throw new CliError(`no run ${JSON.stringify(runId)} for tenant ${tenant}`);
        if (run.status !== 'halted') throw new CliError(`run ${runId} is ${run.status}; only a halted run can be resumed`);
        await requireActionsToResume(p, run);
        if (opts.wait) await requireWorker(p);
        if (!opts.wait) {
          await p.resume(tenant, runId);
          return { stdout: `resumed ${runId} for tenant ${tenant}\n`, exitCode: EXIT.ok };
        }
        return printRun(await p.waitFor(tenant, runId, () => p.resume(tenant, runId)), opts.json);
      });
      done(result);
    });

  registerReplayCommand(runs, done);
}
