/**
 * Billing periods: a calendar month in the tenant's timezone. `2026-11` runs from local
 * midnight on 1 November to local midnight on 1 December.
 */
import { DateTime } from 'luxon';

export interface Period {
  /** `YYYY-MM` */
  key: string;
  /** ISO 8601 with the zone's offset. */
  start: string;
  end: string;
  timezone: string;
}

export function isValidTimezone(tz: string): boolean {
  return DateTime.local().setZone(tz).isValid;
}

/** The period containing `at` in `timezone`. */
export function periodAt(at: Date, timezone: string): Period {
  const local = DateTime.fromJSDate(at, { zone: timezone });
  if (!local.isValid) throw new Error(`unknown timezone ${JSON.stringify(timezone)}`);
  return periodFromStart(local.startOf('month'), timezone);
}

/** The period named `YYYY-MM` in `timezone`. */
export function periodByKey(key: string, timezone: string): Period {
  const m = /^(\d{4})-(\d{2})$/.exec(key);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 12) throw new Error(`period must be YYYY-MM, got ${JSON.stringify(key)}`);
  const start = DateTime.fromObject({ year: Number(m[1]), month: Number(m[2]), day: 1 }, { zone: timezone });
  if (!start.isValid) throw new Error(`unknown timezone ${JSON.stringify(timezone)}`);
  return periodFromStart(start, timezone);
}

function periodFromStart(start: DateTime, timezone: string): Period {
  return {
    key: start.toFormat('yyyy-MM'),
    start: start.toISO({ suppressMilliseconds: true })!,
    end: start.plus({ months: 1 }).toISO({ suppressMilliseconds: true })!,
    timezone,
  };
}

/** The tenant-local calendar date (`YYYY-MM-DD`) of an instant. */
export function localDate(at: Date, timezone: string): string {
  return DateTime.fromJSDate(at, { zone: timezone }).toFormat('yyyy-MM-dd');
}

/** Milliseconds until the period containing `at` ends. */
export function msUntilPeriodEnd(at: Date, timezone: string): number {
  return Date.parse(periodAt(at, timezone).end) - at.getTime();
}
