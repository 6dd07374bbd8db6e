/** `schedule preview FILE [--from ISO] [--count N]`: the next firing instants of a cron scenario (§7). */
import type { Command } from 'commander';
import { DateTime } from 'luxon';
import { nextInstants } from '../../core/cron.js';
import { CliError, EXIT } from '../errors.js';
import { loadScenarioFile, parseCount, requireValid } from '../io.js';
import type { CommandResult } from '../main.js';

/** Most instants one preview prints. */
const MAX_COUNT = 100_000;

/**
 * An instant as ISO 8601 with the numeric offset `timezone` has then, e.g.
 * `2027-03-14T03:00:00-04:00` (`+00:00` for UTC, so every line has the same shape).
 */
export function formatInstant(instant: Date, timezone: string): string {
  const dt = DateTime.fromJSDate(instant, { zone: timezone });
  if (!dt.isValid) throw new CliError(`cannot format ${instant.toISOString()} in timezone ${JSON.stringify(timezone)}`);
  return dt.toFormat(dt.millisecond ? "yyyy-MM-dd'T'HH:mm:ss.SSSZZ" : "yyyy-MM-dd'T'HH:mm:ssZZ");
}

/** `--from`: an ISO 8601 date or date-time; without an offset it is local to `timezone`. */
export function parseFrom(value: string, timezone: string): Date {
  const dt = DateTime.fromISO(value.trim(), { zone: timezone });
  if (!dt.isValid) {
    throw new CliError(`--from must be an ISO 8601 date-time such as 2027-03-14T00:00:00Z, got ${JSON.stringify(value)}`);
  }
  return dt.toJSDate();
}

export function registerScheduleCommands(program: Command, done: (r: CommandResult) => void): void {
  const schedule = program.command('schedule').description('inspect cron schedules');

  schedule
    .command('preview')
    .description('print the next N firing instants of a cron scenario, ISO 8601 with offset, one per line')
    .argument('<file>', 'scenario JSON file')
    .option('--from <iso>', 'list instants strictly after this date-time (default now; without an offset: in the scenario timezone)')
    .option('--count <n>', 'how many instants', '10')
    .action((file: string, opts: { from?: string; count: string }) => {
      const count = parseCount(opts.count, '--count', 1);
      if (count > MAX_COUNT) throw new CliError(`--count must be at most ${MAX_COUNT}, got ${count}`);
      const scenario = requireValid(file, loadScenarioFile(file));
      const trigger = scenario.trigger;
      if (trigger.type !== 'cron') {
        throw new CliError(`${file}: scenario ${JSON.stringify(scenario.id)} has a ${trigger.type} trigger; schedule preview needs a cron trigger`);
      }
      const timezone = trigger.timezone ?? 'UTC';
      const from = opts.from === undefined ? new Date() : parseFrom(opts.from, timezone);
      let instants: Date[];
      try {
        instants = nextInstants(trigger.schedule, timezone, from, count);
      } catch (err) {
        throw new CliError(`${file}: trigger: ${(err as Error).message}`);
      }
      done({ stdout: instants.map((d) => `${formatInstant(d, timezone)}\n`).join(''), exitCode: EXIT.ok });
    });
}
