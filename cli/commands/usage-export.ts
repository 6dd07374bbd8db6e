/** `flowmeter usage export --period YYYY-MM --format csv|cloudevents` (SPEC §11): one line per run. */
import type { Command } from 'commander';
import type { RunSummary } from '../../engine/stores.js';
import { CliError, EXIT } from '../errors.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { requireKnownTenant } from './tenants.js';

/** The most runs listed (the run store's own bound). */
const MAX_RUNS = 10_000;

function csvField(v: string | number | boolean): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function exportCsv(runs: RunSummary[]): string {
  const rows = runs.map((r) => [r.runId, r.scenarioId, r.startedAt ?? '', r.actions, r.billable].map(csvField).join(','));
  return `${['run_id,scenario,started,actions,billable', ...rows].join('\n')}\n`;
}

/** CloudEvents 1.0, structured JSON, one event per line. */
export function exportCloudEvents(tenant: string, runs: RunSummary[]): string {
  return runs
    .map(
      (r) =>
        `${JSON.stringify({
          specversion: '1.0',
          type: 'dev.flowmeter.run.usage',
          source: `/flowmeter/tenants/${tenant}`,
          id: r.runId,
          time: r.startedAt,
          subject: r.scenarioId,
          datacontenttype: 'application/json',
          data: { runId: r.runId, scenarioId: r.scenarioId, started: r.startedAt, actions: r.actions, billable: r.billable, status: r.status },
        })}\n`,
    )
    .join('');
}

export function registerUsageExport(usage: Command, done: (r: CommandResult) => void): void {
  usage
    .command('export')
    .description('one line per run of a period (run id, scenario, started, actions, billable), for an outside billing system')
    .option('--period <YYYY-MM>', 'billing period (required)')
    .option('--format <format>', 'csv or cloudevents', 'csv')
    .action(async (own: { period?: string; format: string }, cmd: Command) => {
      // `usage` has --period and --tenant too: commander may hand them to it.
      const opts = { ...own, period: own.period ?? (cmd.optsWithGlobals() as { period?: string }).period };
      if (opts.period === undefined) throw new CliError('usage export needs --period YYYY-MM');
      if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.period)) throw new CliError(`--period must be YYYY-MM, got ${JSON.stringify(opts.period)}`);
      if (opts.format !== 'csv' && opts.format !== 'cloudevents') throw new CliError(`--format must be csv or cloudevents, got ${JSON.stringify(opts.format)}`);
      const tenant = tenantOf(cmd);
      const runs = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        const u = await p.ledger.usage(tenant, new Date(), opts.period!);
        const [from, to] = [Date.parse(u.period.start), Date.parse(u.period.end)];
        const all = await p.runs.list(tenant, { limit: MAX_RUNS });
        return all.filter((r) => r.startedAt && Date.parse(r.startedAt) >= from && Date.parse(r.startedAt) < to).reverse();
      });
      done({ stdout: opts.format === 'csv' ? exportCsv(runs) : exportCloudEvents(tenant, runs), exitCode: EXIT.ok });
    });
}
