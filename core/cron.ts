/**
 * Which instants a cron trigger fires at (SPEC.md §6). Pure: no clock, no I/O.
 *
 * Cron fields name wall-clock times in the trigger's IANA timezone. Each matching local
 * time maps to ONE instant:
 * - a local time that happens once → that instant;
 * - a local time that does not exist (skipped when clocks go forward) → the first instant
 *   after the gap (the transition itself); several such times collapse into one firing;
 * - a local time that happens twice (clocks go back) → its first occurrence only; the
 *   second pass of the repeated hour fires nothing.
 *
 * Equivalently, local time `w` fires at `min{ u : wall(u) >= w }`, a non-decreasing function
 * of `w`, so walking matching wall-clock times in order and dropping repeats gives the
 * firing instants in strictly increasing order.
 *
 * cron-parser only parses the expression (same options as `engine/validate.ts`); the walk is
 * our own, over local calendar days, because cron-parser's own DST handling differs from
 * the rules above (it moves a skipped 02:30 to 03:30, fires every skipped `*\/15 2` time,
 * and fires the repeated hour twice for `0 * * * *`) and because it is too slow for
 * minute-level schedules over a month.
 */
import { CronExpressionParser } from 'cron-parser';
import { IANAZone } from 'luxon';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Days in 400 Gregorian years: the calendar (and so any cron match) repeats with this period. */
const GREGORIAN_CYCLE_DAYS = 146_097;
/** Latest instant searched (ISO 8601 years have four digits). */
const MAX_WALL = Date.UTC(9999, 11, 31, 23, 59, 59);
/** Most instants one call returns. */
export const MAX_INSTANTS = 1_000_000;

/** A parsed cron expression, as sets over local calendar fields. */
interface CronSpec {
  seconds: number[];
  minutes: number[];
  hours: number[];
  months: boolean[]; // index 1..12
  dom: boolean[]; // index 1..31
  domLast: boolean; // `L`: last day of the month
  domWildcard: boolean;
  dow: boolean[]; // index 0..6, Sunday 0
  dowLast: boolean[]; // `5L`: the last Friday of the month, index 0..6
  dowNth: number; // `1#2`: the second Monday; 0 when none
  dowWildcard: boolean;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** A day-of-week token as a number; `SUN` ending a range is 7 (so `SAT-SUN` is Saturday to Sunday). */
function dayNumber(token: string, rangeEnd: boolean): number | null {
  if (/^\d+$/.test(token)) return Number(token);
  const i = DAY_NAMES.indexOf(token);
  if (i < 0) return null;
  return i === 0 && rangeEnd ? 7 : i;
}

/**
 * The days (0-6) a day-of-week field of numbers, names, ranges and stepped ranges names, or
 * null for any other field (`*`, `?`, `L`, `#`, `H`, or an invalid one: left to the parser).
 */
function expandDayOfWeek(field: string): number[] | null {
  const days = new Set<number>();
  for (const item of field.toLowerCase().split(',')) {
    const m = /^([a-z]{3}|\d+)(?:-([a-z]{3}|\d+))?(?:\/(\d+))?$/.exec(item);
    if (!m || (m[3] !== undefined && m[2] === undefined)) return null;
    const from = dayNumber(m[1]!, false);
    const to = m[2] === undefined ? from : dayNumber(m[2], true);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    if (from === null || to === null || from > to || to > 7 || step < 1) return null;
    for (let d = from; d <= to; d += step) days.add(d % 7);
  }
  return [...days].sort((a, b) => a - b);
}

/**
 * The expression with 7 (or `SUN` ending a range) read as Sunday, as in standard cron:
 * `0 0 * * 0,7` → `0 0 * * 0`, `SAT-SUN` → `0,6`, `5-7` → `0,5,6`. The parser alone refuses the
 * first two (a duplicate 0; a range 6-0). Used by everything that parses a schedule.
 */
export function normalizeCron(schedule: string): string {
  if (typeof schedule !== 'string') return schedule;
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) return schedule;
  const days = expandDayOfWeek(fields[fields.length - 1]!);
  if (!days) return schedule;
  fields[fields.length - 1] = days.join(',');
  return fields.join(' ');
}

function parseSpec(schedule: string): CronSpec {
  if (typeof schedule !== 'string') throw new Error('invalid cron expression: must be a string');
  const text = schedule.trim();
  const fields = text === '' ? 0 : text.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    throw new Error(`invalid cron expression ${JSON.stringify(schedule)}: a cron expression has 5 or 6 fields, got ${fields}`);
  }
  let f;
  try {
    // Same options as validation; hashSeed keeps `H` fields stable between calls and processes.
    f = CronExpressionParser.parse(normalizeCron(text), { tz: 'UTC', strict: false, hashSeed: text }).fields;
  } catch (err) {
    throw new Error(`invalid cron expression ${JSON.stringify(schedule)}: ${oneLine((err as Error).message)}`);
  }
  const nums = (vs: ReadonlyArray<number | string>) => [...new Set(vs.filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);
  const months: boolean[] = new Array(13).fill(false);
  for (const m of nums(f.month.values)) months[m] = true;
  const dom: boolean[] = new Array(32).fill(false);
  for (const d of nums(f.dayOfMonth.values)) dom[d] = true;
  const dow: boolean[] = new Array(7).fill(false);
  const dowLast: boolean[] = new Array(7).fill(false);
  for (const v of f.dayOfWeek.values as ReadonlyArray<number | string>) {
    if (typeof v === 'number') dow[v % 7] = true;
  }
  if (f.dayOfWeek.hasLastChar) {
    // As cron-parser: with an `L` anywhere in the field, each listed weekday also matches
    // its last occurrence in the month (`5L` is kept as the string "5L").
    for (const v of f.dayOfWeek.values as ReadonlyArray<number | string>) {
      const d = parseInt(String(v).charAt(0), 10);
      if (!Number.isNaN(d)) dowLast[d % 7] = true;
    }
  }
  return {
    seconds: nums(f.second.values),
    minutes: nums(f.minute.values),
    hours: nums(f.hour.values),
    months,
    dom,
    domLast: f.dayOfMonth.hasLastChar,
    domWildcard: f.dayOfMonth.isWildcard,
    dow,
    dowLast,
    dowNth: f.dayOfWeek.nthDay,
    dowWildcard: f.dayOfWeek.isWildcard,
  };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** cron-parser's day rule: dom OR dow when both are restricted, else whichever is. */
function dayMatches(spec: CronSpec, day: number, weekday: number, monthDays: number): boolean {
  const domMatch = spec.dom[day] || (spec.domLast && day === monthDays);
  const dowMatch = (spec.dow[weekday] && (spec.dowNth <= 0 || Math.ceil(day / 7) === spec.dowNth)) || (spec.dowLast[weekday] && day + 7 > monthDays);
  if (!spec.domWildcard && !spec.dowWildcard) return domMatch || dowMatch;
  if (spec.dowWildcard) return domMatch;
  return dowMatch;
}

function zoneOf(timezone: string): IANAZone {
  if (typeof timezone !== 'string' || !IANAZone.isValidZone(timezone)) {
    throw new Error(`unknown IANA timezone ${JSON.stringify(timezone)}`);
  }
  return IANAZone.create(timezone);
}

/** The zone's UTC offset at an instant, in ms. */
function offsetAt(zone: IANAZone, t: number): number {
  return Math.round(zone.offset(t) * MINUTE);
}

/** A stretch of time with one UTC offset: from `start` (inclusive) to the next segment's start. */
interface Segment {
  start: number;
  offset: number;
}

/**
 * The offsets in force around one local day: instants from 27 h before its local midnight
 * to 27 h after its end (offsets are within ±15 h), sampled every 3 h, each change located
 * to the millisecond by bisection. Assumes no two transitions within 3 h of each other.
 */
function segmentsAround(zone: IANAZone, dayWall: number): Segment[] {
  const first = dayWall - 27 * HOUR;
  const last = dayWall + DAY + 27 * HOUR;
  let prevT = first;
  let prevO = offsetAt(zone, first);
  const segments: Segment[] = [{ start: -Infinity, offset: prevO }];
  for (let t = first + 3 * HOUR; t <= last; t += 3 * HOUR) {
    const o = offsetAt(zone, t);
    if (o !== prevO) {
      // Smallest instant in (prevT, t] whose offset is no longer prevO.
      let lo = prevT;
      let hi = t;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(zone, mid) === prevO) lo = mid;
        else hi = mid;
      }
      segments.push({ start: hi, offset: o });
    }
    prevT = t;
    prevO = o;
  }
  return segments;
}

/**
 * The instant a local wall-clock time (as UTC-labelled ms) fires at: the first instant
 * whose local time is that wall time, or, in a gap, the end of the gap.
 */
function instantOfWall(segments: Segment[], w: number): number {
  for (let j = 0; j < segments.length; j++) {
    const u = w - segments[j].offset;
    const end = j + 1 < segments.length ? segments[j + 1].start : Infinity;
    if (u >= segments[j].start && u < end) return u; // earliest occurrence: segments are in time order
  }
  for (let j = 1; j < segments.length; j++) {
    const t = segments[j].start;
    if (w >= t + segments[j - 1].offset && w < t + segments[j].offset) return t;
  }
  /* c8 ignore next */
  throw new Error(`internal error: local time ${new Date(w).toISOString().slice(0, 19)} has no instant`);
}

/**
 * Walks the firing instants strictly after `from`, in increasing order, calling `visit` for
 * each until it returns false. Throws if the expression never fires.
 */
function walk(spec: CronSpec, zone: IANAZone, from: number, visit: (instant: number) => boolean): void {
  // Local times at or before from's own local time fire at or before from (see above).
  const startWall = from + offsetAt(zone, from);
  let dayWall = Math.floor(startWall / DAY) * DAY;
  const d0 = new Date(dayWall);
  let year = d0.getUTCFullYear();
  let month = d0.getUTCMonth() + 1;
  let day = d0.getUTCDate();
  let weekday = d0.getUTCDay();
  let monthDays = daysInMonth(year, month);
  let last = from;
  let daysWithoutMatch = 0;
  let matchedAny = false;

  const nextDay = () => {
    dayWall += DAY;
    weekday = (weekday + 1) % 7;
    if (++day > monthDays) {
      day = 1;
      if (++month > 12) {
        month = 1;
        year++;
      }
      monthDays = daysInMonth(year, month);
    }
  };

  while (dayWall <= MAX_WALL) {
    if (!spec.months[month]) {
      // Skip the rest of the month at once.
      const skip = monthDays - day + 1;
      for (let i = 0; i < skip; i++) nextDay();
      daysWithoutMatch += skip;
      if (daysWithoutMatch > GREGORIAN_CYCLE_DAYS) break;
      continue;
    }
    if (!dayMatches(spec, day, weekday, monthDays)) {
      nextDay();
      if (++daysWithoutMatch > GREGORIAN_CYCLE_DAYS) break;
      continue;
    }
    daysWithoutMatch = 0;
    matchedAny = true;
    let segments: Segment[] | null = null;
    for (const h of spec.hours) {
      const hourWall = dayWall + h * HOUR;
      if (hourWall + HOUR <= startWall) continue;
      for (const m of spec.minutes) {
        const minuteWall = hourWall + m * MINUTE;
        if (minuteWall + MINUTE <= startWall) continue;
        for (const s of spec.seconds) {
          const w = minuteWall + s * 1000;
          if (w <= startWall) continue;
          segments ??= segmentsAround(zone, dayWall);
          const u = segments.length === 1 ? w - segments[0].offset : instantOfWall(segments, w);
          if (u > last) {
            last = u;
            if (!visit(u)) return;
          }
        }
      }
    }
    nextDay();
  }
  if (!matchedAny && dayWall <= MAX_WALL) throw new Error('invalid cron expression: it never fires (no matching day)');
}

function checkDate(d: Date, name: string): number {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new Error(`${name} must be a valid Date`);
  return d.getTime();
}

/**
 * The first `count` instants strictly after `from` at which `schedule` (5- or 6-field cron,
 * local to `timezone`) fires. Fewer only if the schedule ends before year 10000.
 */
export function nextInstants(schedule: string, timezone: string, from: Date, count: number): Date[] {
  const spec = parseSpec(schedule);
  const zone = zoneOf(timezone);
  const start = checkDate(from, 'from');
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`count must be a whole number >= 0, got ${count}`);
  if (count > MAX_INSTANTS) throw new Error(`count must be at most ${MAX_INSTANTS}, got ${count}`);
  const out: Date[] = [];
  if (count === 0) return out;
  walk(spec, zone, start, (u) => {
    out.push(new Date(u));
    return out.length < count;
  });
  return out;
}

/**
 * The instants in (from, to] at which `schedule` fires, in increasing order — what a
 * scheduler that was down from `from` to `to` missed. At most `cap` (default
 * {@link MAX_INSTANTS}) are returned: the earliest ones; call again from the last one
 * returned for the rest.
 */
export function instantsBetween(schedule: string, timezone: string, from: Date, to: Date, cap: number = MAX_INSTANTS): Date[] {
  const spec = parseSpec(schedule);
  const zone = zoneOf(timezone);
  const start = checkDate(from, 'from');
  const end = checkDate(to, 'to');
  if (!Number.isSafeInteger(cap) || cap < 0) throw new Error(`cap must be a whole number >= 0, got ${cap}`);
  const out: Date[] = [];
  if (cap === 0 || end <= start) return out;
  walk(spec, zone, start, (u) => {
    if (u > end) return false;
    out.push(new Date(u));
    return out.length < cap;
  });
  return out;
}
