/**
 * `flowmeter runs tail [--tenant T] [--scenario ID]`: task events as they happen, one line
 * each, until Ctrl-C (needs Redis: runs executed by workers publish their events there).
 *
 *   12:00:01.234  run_3f2a…  #3  each[1]   ok       1 act   0.4 ms
 *   12:00:01.240  run_3f2a…  run succeeded  9 actions
 */
import type { Command } from 'commander';
import type { TaskRecord } from '../../core/types.js';
import type { RunEvent } from '../../engine/platform.js';
import { CliError, EXIT } from '../errors.js';
import { cliIo } from '../io.js';
import type { CommandResult } from '../main.js';
import { openProduction, tenantOf } from '../production-io.js';

const COLORS: Record<string, string> = { ok: '32', succeeded: '32', dropped: '2', error: '31', failed: '31', halted: '33', rejected: '33' };

function paint(text: string, status: string, tty: boolean): string {
  const c = COLORS[status];
  return tty && c ? `\u001b[${c}m${text}\u001b[0m` : text;
}

function clock(d: Date): string {
  return d.toISOString().slice(11, 23);
}

function durationMs(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0);
}

/** One line for one task: time, run id, seq, node[iteration], status, actions, duration ms, error code. */
export function formatTaskLine(runId: string, t: TaskRecord, tty = false): string {
  const node = t.iteration !== undefined ? `${t.nodeId}[${t.iteration}]` : t.nodeId;
  const at = Number.isNaN(Date.parse(t.startedAt)) ? new Date() : new Date(t.startedAt);
  const cols = [
    clock(at),
    runId,
    `#${t.seq}`.padStart(4),
    node.padEnd(20),
    paint(t.status.padEnd(7), t.status, tty),
    `${t.actions} act`,
    `${durationMs(t.durationMs).padStart(7)} ms`,
  ];
  if (t.error) cols.push(paint(t.error.code, 'error', tty));
  return cols.join('  ');
}

/** The lines of one event (a run event prints the run's end). */
export function formatEventLines(e: RunEvent, tty = false): string[] {
  if (e.type === 'tasks') return e.tasks.map((t) => formatTaskLine(e.runId, t, tty));
  return [`${clock(new Date())}  ${e.runId}  ${paint(`run ${e.status}`, e.status, tty)}  ${e.actions} action${e.actions === 1 ? '' : 's'}  (${e.scenarioId})`];
}

/**
 * Adds `tail` to the existing `runs` command (or to `runsCommand`, or a new `runs` command when
 * there is none). Without `done`, the command returns once closed and the process exits by itself.
 */
export function registerTailCommand(program: Command, runsCommand?: Command, done?: (r: CommandResult) => void): void {
  let runs = runsCommand ?? program.commands.find((c) => c.name() === 'runs');
  if (!runs) runs = program.command('runs').description('inspect runs (needs --redis)').option('--tenant <tenant>', 'tenant', 'default');

  runs
    .command('tail')
    .description('print task events as they happen, one line each, until Ctrl-C (needs --redis)')
    .option('--tenant <tenant>', 'tenant (default: default)')
    .option('--scenario <id>', 'only this scenario')
    .action(async (opts: { scenario?: string }, cmd: Command) => {
      const tenant = tenantOf(cmd);
      if (opts.scenario !== undefined && !/^[a-z0-9_-]{1,64}$/.test(opts.scenario))
        throw new CliError(`--scenario must be a scenario id, got ${JSON.stringify(opts.scenario)}`);
      const p = await openProduction(cmd, { persistent: true });
      const { stdout, stderr } = cliIo();
      const tty = stdout.isTTY === true;
      let stop: () => void = () => undefined;
      try {
        stop = await p.subscribe(tenant, (e) => {
          if (opts.scenario && e.scenarioId !== opts.scenario) return;
          const lines = formatEventLines(e, tty);
          if (lines.length) stdout.write(`${lines.join('\n')}\n`);
        });
        stderr.write(`tailing tenant ${tenant}${opts.scenario ? `, scenario ${opts.scenario}` : ''}; Ctrl-C to stop\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
      } finally {
        stop();
        await p.close();
      }
      if (done) done({ stdout: '', exitCode: EXIT.ok });
      else process.exitCode = EXIT.ok;
    });
}
