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

/**
 * Answers per timezone with the span they hold for, newest first, a few each: every action asks
 * for its period and local date, and every claim for the current and the previous period, so
 * luxon runs about once per timezone per month or day.
 */
class SpanCache<T> {
  private readonly byZone = new Map<string, Array<{ from: number; to: number; value: T }>>();
  get(zone: string, t: number): T | undefined {
    return this.byZone.get(zone)?.find((e) => t >= e.from && t < e.to)?.value;
  }
  set(zone: string, from: number, to: number, value: T): void {
    const list = this.byZone.get(zone) ?? [];
    this.byZone.set(zone, [{ from, to, value }, ...list.slice(0, 3)]);
  }
}
const periodCache = new SpanCache<Period>();
const dateCache = new SpanCache<string>();

/** The period containing `at` in `timezone`. */
export function periodAt(at: Date, timezone: string): Period {
  const hit = periodCache.get(timezone, at.getTime());
  if (hit) return hit;
  const local = DateTime.fromJSDate(at, { zone: timezone });
  if (!local.isValid) throw new Error(`unknown timezone ${JSON.stringify(timezone)}`);
  const start = local.startOf('month');
  const period = periodFromStart(start, timezone);
  periodCache.set(timezone, start.toMillis(), start.plus({ months: 1 }).toMillis(), period);
  return period;
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
  const hit = dateCache.get(timezone, at.getTime());
  if (hit) return hit;
  const day = DateTime.fromJSDate(at, { zone: timezone }).startOf('day');
  const date = day.toFormat('yyyy-MM-dd');
  dateCache.set(timezone, day.toMillis(), day.plus({ days: 1 }).toMillis(), date);
  return date;
}
