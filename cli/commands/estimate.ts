/** `flowmeter estimate FILE [--items N] [--month YYYY-MM] [--json]`: the action range of one run, and per month (§7). */
import type { Command } from 'commander';
import { type Observed, observedCost } from '../../engine/observed.js';
import { type Estimate, estimateScenario, isMonth, MAX_FIRINGS } from '../../scenario/estimate.js';
import { CliError, EXIT } from '../errors.js';
import { cliIo, loadScenarioFile, parseCount, requireValid } from '../io.js';
import type { CommandResult } from '../main.js';
import { type GlobalOpts, tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function choices(path: string[]): string {
  return path.length === 0 ? 'every run takes the same nodes' : path.join('; ');
}

/** The readable form: each figure with what it rests on. */
export function formatEstimate(scenarioId: string, e: Estimate, schedule?: string, observed?: Observed): string {
  const lines: string[] = [];
  const { min, max } = e.perRun;
  lines.push(`${scenarioId}: ${min === max ? plural(min, 'action') : `${min} to ${max} actions`} per run (trigger included)`);
  lines.push(`  fewest, ${min}: ${choices(e.minPath)}`);
  lines.push(`  most, ${max}: ${choices(e.maxPath)}`);
  if (!e.succeeded) lines.push('  every run ends with an uncaught failure');
  else if (e.succeeded.min !== min || e.succeeded.max !== max) {
    lines.push(`  runs that succeed: ${e.succeeded.min} to ${e.succeeded.max} actions`);
  }
  if (e.perMonth) {
    const m = e.perMonth;
    lines.push(
      `per month: ${m.min} to ${m.max} actions — ${m.capped ? 'about ' : ''}${plural(m.firings, 'firing')} of ${JSON.stringify(schedule ?? '')} in ${m.month} (${m.timezone}${m.capped ? `; extrapolated from the first ${MAX_FIRINGS}` : ''}) × ${min} to ${max}`,
    );
  }
  if (observed) {
    lines.push(
      observed.meanActions === null
        ? `observed: no runs of ${scenarioId} since ${observed.since.slice(0, 10)}`
        : `observed: ${observed.meanActions} actions per run on average over ${plural(observed.runs, 'run')} since ${observed.since.slice(0, 10)} (${observed.minActions} to ${observed.maxActions})`,
    );
  }
  // The per-month assumption is the line above; the others follow.
  const notes = e.assumptions.filter((a) => !a.startsWith('per month:'));
  if (notes.length) {
    lines.push('assumptions:');
    for (const a of notes) lines.push(`  - ${a}`);
  }
  return `${lines.join('\n')}\n`;
}

export function registerEstimateCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('estimate')
    .description('the fewest and most actions one run can cost (loops taken at N items), and per month for cron scenarios')
    .argument('<file>', 'scenario JSON file')
    .option('--items <n>', 'items each loop is taken at (default 10)')
    .option('--month <YYYY-MM>', "cron scenarios: the calendar month whose firings are counted (default: the current month in the trigger's timezone)")
    .option('--json', 'print { perRun: { min, max }, perMonth: { firings, min, max } } as JSON')
    .option('--tenant <tenant>', 'with --redis: the tenant whose past runs are averaged', 'default')
    .action(async (file: string, opts: { items?: string; month?: string; json?: boolean }, cmd: Command) => {
      const items = opts.items === undefined ? undefined : parseCount(opts.items, '--items');
      if (opts.month !== undefined && !isMonth(opts.month)) throw new CliError(`--month must be YYYY-MM, got ${JSON.stringify(opts.month)}`);
      const scenario = requireValid(file, loadScenarioFile(file));
      const e = estimateScenario(scenario, { items, month: opts.month });
      for (const w of e.warnings) cliIo().stderr.write(`warning: ${w}\n`);
      // In production mode, what past runs of this scenario actually cost.
      const production = (cmd.optsWithGlobals() as GlobalOpts).redis ?? cliIo().env.FLOWMETER_REDIS_URL;
      const observed = production
        ? await withProduction(cmd, async (p) => {
            await requireKnownTenant(p, tenantOf(cmd));
            return observedCost(p.runs, tenantOf(cmd), scenario.id, new Date());
          })
        : undefined;
      if (opts.json) {
        const doc = {
          perRun: e.perRun,
          ...(e.perMonth && { perMonth: e.perMonth }),
          items: e.items,
          succeeded: e.succeeded,
          minPath: e.minPath,
          maxPath: e.maxPath,
          assumptions: e.assumptions,
          warnings: e.warnings,
          ...(observed && { observed }),
        };
        done({ stdout: `${JSON.stringify(doc)}\n`, exitCode: EXIT.ok });
        return;
      }
      const schedule = scenario.trigger.type === 'cron' ? scenario.trigger.schedule : undefined;
      done({ stdout: formatEstimate(scenario.id, e, schedule, observed), exitCode: EXIT.ok });
    });
}
