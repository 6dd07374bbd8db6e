/** `flowmeter usage` and `flowmeter quota set|add|show`. */
import type { Command } from 'commander';
import { formatHistory, usageHistory } from '../../metering/history.js';
import { isValidTimezone } from '../../metering/periods.js';
import type { QuotaPatch, UsageReport } from '../../metering/quota.js';
import { CliError, EXIT } from '../errors.js';
import { cliIo, parseCount } from '../io.js';
import type { CommandResult } from '../main.js';
import { tenantOf, withProduction } from '../production-io.js';
import { noteDefaultTenant, requireKnownTenant } from './tenants.js';
import { registerUsageExport } from './usage-export.js';

export function formatUsage(u: UsageReport): string {
  const lines = [
    `tenant ${u.tenant}, period ${u.period.key} (${u.period.start} to ${u.period.end}, ${u.period.timezone})`,
    `used ${u.used} of ${u.limit}${u.addOns ? ` + ${u.addOns} add-on` : ''} actions, ${u.remaining} remaining${u.overage ? `, ${u.overage} overage` : ''}${u.nonBillable ? `, ${u.nonBillable} non-billable` : ''}`,
    `meters: ${u.meters.runs} runs, ${u.meters.connectorRequests} connector requests, ${u.meters.connectorBytes} connector bytes, ${u.meters.mailsSent} mails sent`,
  ];
  if (u.projection) {
    const p = u.projection;
    lines.push(
      `projection: ${p.projectedUsed} actions by ${u.period.end} at ${p.perDay}/day${p.willExceed ? ` — WARNING: passes the limit of ${u.limit + u.addOns}${p.exceedsOn ? ` around ${p.exceedsOn.slice(0, 10)}` : ''}` : ' (within the limit)'}`,
    );
  }
  for (const [name, c] of Object.entries(u.connections ?? {})) {
    lines.push(
      `connection ${name}: ${c.requests} requests, ${c.bytes} bytes, ${c.errors} errors, last status ${c.lastStatus ?? 'none'}${c.lastAt ? ` at ${c.lastAt}` : ''}`,
    );
  }
  if (u.alerts.length) lines.push(`alerts: ${u.alerts.map((a) => `${Math.round(a.threshold * 100)}% at ${a.at}`).join(', ')}`);
  if (u.byScenario.length) {
    lines.push('', 'scenario                  runs   actions');
    for (const s of u.byScenario) lines.push(`${s.scenarioId.padEnd(24)}  ${String(s.runs).padStart(4)}  ${String(s.actions).padStart(8)}`);
  }
  if (u.byDay.length) {
    lines.push('', 'day          actions');
    const max = Math.max(...u.byDay.map((d) => d.actions));
    for (const d of u.byDay) lines.push(`${d.date}  ${String(d.actions).padStart(7)}  ${'#'.repeat(Math.max(1, Math.round((d.actions / max) * 40)))}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A positive whole number up to `max` (flow-control fields). */
function parsePositive(value: string, flag: string, max: number): number {
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1 || Number(value) > max)
    throw new CliError(`${flag} must be a positive whole number up to ${max}${flag === '--concurrency' ? ' (or none)' : ''}, got ${JSON.stringify(value)}`);
  return Number(value);
}

function parseAlerts(s: string): number[] {
  const parts = s.split(',').map((x) => Number(x.trim()));
  if (parts.some((x) => !Number.isFinite(x) || x <= 0 || x > 10)) throw new CliError(`--alerts must be fractions like 0.5,0.9,1, got ${JSON.stringify(s)}`);
  return parts;
}

/** `--expires ISO`: a date-time with a zone (or a date, UTC midnight) after `now`. */
function parseExpiry(s: string, now: Date): Date {
  const d = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(s) ? new Date(s) : new Date(NaN);
  if (Number.isNaN(d.getTime()))
    throw new CliError(`--expires must be an ISO 8601 date-time with a zone such as 2026-11-30T18:00:00Z, got ${JSON.stringify(s)}`);
  if (d.getTime() <= now.getTime()) throw new CliError(`--expires ${s} is in the past`);
  return d;
}

function parseEmails(s: string): string[] {
  const list = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const bad = list.find((a) => !/^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(a));
  if (list.length === 0 || bad !== undefined)
    throw new CliError(`--notify-email must be comma-separated addresses like a@example.com, got ${JSON.stringify(bad ?? s)}`);
  return list;
}

function parseWebhook(s: string): string {
  let u: URL | null = null;
  try {
    u = new URL(s);
  } catch {
    // reported below
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw new CliError(`--notify-webhook must be an http(s) URL, got ${JSON.stringify(s)}`);
  return s;
}

export function registerUsageCommands(program: Command, done: (r: CommandResult) => void): void {
  const usage = program
    .command('usage')
    .description('the usage report of a tenant for a billing period (needs --redis)')
    .option('--tenant <tenant>', 'tenant', 'default')
    .option('--period <YYYY-MM>', 'billing period (default: the current one)')
    .option('--months <n>', 'one summary per period for the last N periods, newest first')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { period?: string; months?: string; json?: boolean }, cmd: Command) => {
      if (opts.period && !/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.period)) throw new CliError(`--period must be YYYY-MM, got ${JSON.stringify(opts.period)}`);
      const tenant = tenantOf(cmd);
      if (opts.months !== undefined) {
        if (opts.period) throw new CliError('give either --period or --months, not both');
        const months = parseCount(opts.months, '--months', 1);
        if (months > 120) throw new CliError(`--months must be at most 120, got ${months}`);
        const rows = await withProduction(cmd, async (p) => {
          await requireKnownTenant(p, tenant);
          return usageHistory(p.ledger, tenant, new Date(), months);
        });
        return done({ stdout: opts.json ? `${JSON.stringify(rows)}\n` : formatHistory(rows), exitCode: EXIT.ok });
      }
      const report = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        return p.ledger.usage(tenant, new Date(), opts.period);
      });
      done({ stdout: opts.json ? `${JSON.stringify(report)}\n` : formatUsage(report), exitCode: EXIT.ok });
    });

  registerUsageExport(usage, done);

  const quota = program.command('quota').description("set and show a tenant's quota (needs --redis)").option('--tenant <tenant>', 'tenant', 'default');
  quota
    .command('set')
    .option('--monthly <n>', 'monthly actions')
    .option('--overage <mode>', 'halt or allow')
    .option('--timezone <tz>', 'IANA timezone of the billing period')
    .option('--alerts <list>', 'alert thresholds, e.g. 0.5,0.9,1')
    .option('--max-active <n>', 'most scenarios enabled at once (none: no limit)')
    .option('--resume-halted <mode>', 'auto (halted runs resume when actions are available again) or manual')
    .option('--notify-email <list>', 'mail alerts, quota halts and period resets to these addresses (comma-separated)')
    .option('--notify-webhook <url>', 'POST them, signed, to this http(s) URL')
    .option('--concurrency <n>', "most of the tenant's runs executing at once (a positive whole number; none: unlimited)")
    .option('--weight <w>', "the tenant's share of workers when tenants compete (a positive whole number, default 1)")
    .option('--create', 'create the tenant if it does not exist yet')
    .action(
      async (
        opts: {
          monthly?: string;
          overage?: string;
          timezone?: string;
          alerts?: string;
          maxActive?: string;
          resumeHalted?: string;
          notifyEmail?: string;
          notifyWebhook?: string;
          concurrency?: string;
          weight?: string;
          create?: boolean;
        },
        cmd: Command,
      ) => {
        const patch: QuotaPatch = {};
        if (opts.monthly !== undefined) patch.monthlyActions = parseCount(opts.monthly, '--monthly');
        if (opts.overage !== undefined) {
          if (opts.overage !== 'halt' && opts.overage !== 'allow') throw new CliError(`--overage must be halt or allow, got ${JSON.stringify(opts.overage)}`);
          patch.overage = opts.overage;
        }
        if (opts.timezone !== undefined) {
          if (!isValidTimezone(opts.timezone)) throw new CliError(`--timezone: unknown IANA timezone ${JSON.stringify(opts.timezone)}`);
          patch.timezone = opts.timezone;
        }
        if (opts.alerts !== undefined) patch.alerts = parseAlerts(opts.alerts);
        // `none` unsets the limit (the key stays in the patch, with no value).
        if (opts.maxActive !== undefined) patch.maxActiveScenarios = opts.maxActive === 'none' ? undefined : parseCount(opts.maxActive, '--max-active');
        if (opts.resumeHalted !== undefined) {
          if (opts.resumeHalted !== 'auto' && opts.resumeHalted !== 'manual')
            throw new CliError(`--resume-halted must be auto or manual, got ${JSON.stringify(opts.resumeHalted)}`);
          patch.resumeHalted = opts.resumeHalted;
        }
        if (opts.notifyEmail !== undefined) patch.notifyEmails = parseEmails(opts.notifyEmail);
        if (opts.notifyWebhook !== undefined) patch.notifyWebhook = parseWebhook(opts.notifyWebhook);
        if (opts.concurrency !== undefined)
          patch.concurrency = opts.concurrency.trim() === 'none' ? null : parsePositive(opts.concurrency, '--concurrency', 1_000_000);
        if (opts.weight !== undefined) patch.weight = parsePositive(opts.weight, '--weight', 1000);
        if (Object.keys(patch).length === 0)
          throw new CliError(
            'quota set needs at least one of --monthly, --overage, --timezone, --alerts, --max-active, --resume-halted, --notify-email, --notify-webhook, --concurrency, --weight',
          );
        const tenant = tenantOf(cmd);
        noteDefaultTenant(cmd, 'changes the quota of');
        const q = await withProduction(cmd, async (p) => {
          if (!opts.create) await requireKnownTenant(p, tenant, '--create');
          const set = await p.ledger.setQuota(tenant, patch);
          const max = set.maxActiveScenarios;
          if (opts.maxActive !== undefined && max !== undefined) {
            const enabled = (await p.scenarios.list(tenant)).filter((s) => s.enabled).length;
            if (enabled > max)
              cliIo().stderr.write(
                `warning: tenant ${tenant} has ${enabled} scenarios enabled, more than --max-active ${max}: they stay enabled, and no other can be enabled until fewer than ${max} are\n`,
              );
          }
          return set;
        });
        done({ stdout: `${JSON.stringify({ tenant, ...q })}\n`, exitCode: EXIT.ok });
      },
    );
  quota
    .command('add')
    .requiredOption('--actions <n>', 'extra actions for the current period')
    .option('--expires <iso>', 'the add-on stops counting at this instant (ISO 8601)')
    .action(async (opts: { actions: string; expires?: string }, cmd: Command) => {
      const n = parseCount(opts.actions, '--actions', 1);
      const now = new Date();
      const expires = opts.expires === undefined ? undefined : parseExpiry(opts.expires, now);
      const tenant = tenantOf(cmd);
      noteDefaultTenant(cmd, 'adds actions to');
      const report = await withProduction(cmd, async (p) => {
        await requireKnownTenant(p, tenant);
        await p.ledger.addActions(tenant, n, now, { expires });
        return p.ledger.usage(tenant, new Date());
      });
      done({
        stdout: `added ${n} actions to ${tenant} for ${report.period.key}${expires ? ` until ${expires.toISOString()}` : ''}: ${report.remaining} remaining\n`,
        exitCode: EXIT.ok,
      });
    });
  quota.command('show').action(async (_o: unknown, cmd: Command) => {
    const tenant = tenantOf(cmd);
    const q = await withProduction(cmd, async (p) => {
      await requireKnownTenant(p, tenant);
      return p.ledger.getQuota(tenant);
    });
    done({ stdout: `${JSON.stringify({ tenant, ...q })}\n`, exitCode: EXIT.ok });
  });
}
