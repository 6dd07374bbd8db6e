/**
 * Cron firing instants (SPEC.md §6) and `schedule preview` (§7).
 *
 * 2027 calendar facts used below: 2027-01-01 is a Friday, 2027-03-01 a Monday,
 * 2027-10-01 a Friday, 2027-11-01 a Monday.
 * - America/New_York: EST is -05:00, EDT -04:00. Spring forward on the 2nd Sunday of March,
 *   2027-03-14, at 02:00 EST = 07:00Z (02:00-02:59 local does not exist; 03:00 EDT = 07:00Z).
 *   Fall back on the 1st Sunday of November, 2027-11-07, at 02:00 EDT = 06:00Z
 *   (01:00-01:59 local happens twice: 05:00-05:59Z as EDT, 06:00-06:59Z as EST).
 * - Europe/Oslo: CET is +01:00, CEST +02:00. Spring forward on the last Sunday of March,
 *   2027-03-28, at 01:00Z (02:00-02:59 local does not exist; 03:00 CEST = 01:00Z).
 *   Fall back on the last Sunday of October, 2027-10-31, at 01:00Z (02:00-02:59 local happens
 *   twice: 00:00-00:59Z as CEST, 01:00-01:59Z as CET).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../cli/errors.js';
import { instantsBetween, nextInstants } from '../core/cron.js';
import { validateScenario } from '../scenario/validate.js';
import { type CliRun, runCli } from './helpers/cli.js';

const NY = 'America/New_York';
const OSLO = 'Europe/Oslo';

const next = (schedule: string, tz: string, from: string, count: number) => nextInstants(schedule, tz, new Date(from), count).map((d) => d.toISOString());
const between = (schedule: string, tz: string, from: string, to: string, cap?: number) =>
  instantsBetween(schedule, tz, new Date(from), new Date(to), cap).map((d) => d.toISOString());

describe('nextInstants: spring forward (nonexistent local times)', () => {
  it('daily 02:30 in New York fires at 03:00 EDT on 2027-03-14', () => {
    // 03-13 02:30 EST = 07:30Z; 03-14 02:30 does not exist -> end of the gap, 03:00 EDT = 07:00Z;
    // 03-15 02:30 EDT = 06:30Z.
    expect(next('30 2 * * *', NY, '2027-03-13T00:00:00Z', 3)).toEqual(['2027-03-13T07:30:00.000Z', '2027-03-14T07:00:00.000Z', '2027-03-15T06:30:00.000Z']);
  });

  it('daily 02:30 in Oslo fires at 03:00 CEST on 2027-03-28', () => {
    // 03-27 02:30 CET = 01:30Z; 03-28 02:30 does not exist -> 03:00 CEST = 01:00Z;
    // 03-29 02:30 CEST = 00:30Z.
    expect(next('30 2 * * *', OSLO, '2027-03-27T00:00:00Z', 3)).toEqual(['2027-03-27T01:30:00.000Z', '2027-03-28T01:00:00.000Z', '2027-03-29T00:30:00.000Z']);
  });

  it('daily 01:30 is unaffected by the spring-forward gap', () => {
    // New York: 01:30 EST = 06:30Z on 03-14, 01:30 EDT = 05:30Z on 03-15.
    expect(next('30 1 * * *', NY, '2027-03-14T00:00:00Z', 2)).toEqual(['2027-03-14T06:30:00.000Z', '2027-03-15T05:30:00.000Z']);
    // Oslo: 01:30 CET = 00:30Z on 03-28, 01:30 CEST = 23:30Z on 03-28 (for 03-29 local).
    expect(next('30 1 * * *', OSLO, '2027-03-28T00:00:00Z', 2)).toEqual(['2027-03-28T00:30:00.000Z', '2027-03-28T23:30:00.000Z']);
  });

  it('hourly: 02:00 and 03:00 collapse into one firing at the end of the gap', () => {
    // New York from 05:30Z (00:30 EST): 01:00 EST = 06:00Z; 02:00 (gap) -> 07:00Z and 03:00 EDT = 07:00Z,
    // one firing; 04:00 EDT = 08:00Z.
    expect(next('0 * * * *', NY, '2027-03-14T05:30:00Z', 3)).toEqual(['2027-03-14T06:00:00.000Z', '2027-03-14T07:00:00.000Z', '2027-03-14T08:00:00.000Z']);
    // Oslo from 00:30Z (01:30 CET): 02:00 (gap) and 03:00 CEST both -> 01:00Z; 04:00 CEST = 02:00Z.
    expect(next('0 * * * *', OSLO, '2027-03-28T00:30:00Z', 2)).toEqual(['2027-03-28T01:00:00.000Z', '2027-03-28T02:00:00.000Z']);
  });

  it('every 30 minutes across the gap', () => {
    // From 06:15Z (01:15 EST): 01:30 EST = 06:30Z; 02:00, 02:30 (gap) and 03:00 EDT -> 07:00Z once;
    // 03:30 EDT = 07:30Z.
    expect(next('*/30 * * * *', NY, '2027-03-14T06:15:00Z', 3)).toEqual(['2027-03-14T06:30:00.000Z', '2027-03-14T07:00:00.000Z', '2027-03-14T07:30:00.000Z']);
  });

  it('*/15 2 * * *: the four skipped times collapse into one firing', () => {
    // New York 03-14: 02:00, 02:15, 02:30, 02:45 all -> 07:00Z once; 03-15 02:00 EDT = 06:00Z, 02:15 = 06:15Z.
    expect(next('*/15 2 * * *', NY, '2027-03-13T12:00:00Z', 3)).toEqual(['2027-03-14T07:00:00.000Z', '2027-03-15T06:00:00.000Z', '2027-03-15T06:15:00.000Z']);
    // Oslo 03-28: all four -> 01:00Z; 03-29 02:00 CEST = 00:00Z, 02:15 = 00:15Z.
    expect(next('*/15 2 * * *', OSLO, '2027-03-27T12:00:00Z', 3)).toEqual(['2027-03-28T01:00:00.000Z', '2027-03-29T00:00:00.000Z', '2027-03-29T00:15:00.000Z']);
  });
});

describe('nextInstants: fall back (repeated local times)', () => {
  it('daily 01:30 in New York fires once on 2027-11-07, at the EDT occurrence', () => {
    // 11-06 01:30 EDT = 05:30Z; 11-07 01:30 happens at 05:30Z (EDT) and 06:30Z (EST): first, 05:30Z;
    // 11-08 01:30 EST = 06:30Z.
    expect(next('30 1 * * *', NY, '2027-11-06T00:00:00Z', 3)).toEqual(['2027-11-06T05:30:00.000Z', '2027-11-07T05:30:00.000Z', '2027-11-08T06:30:00.000Z']);
  });

  it('daily 02:30 in Oslo fires once on 2027-10-31, at the CEST occurrence', () => {
    // 10-30 02:30 CEST = 00:30Z; 10-31 02:30 happens at 00:30Z (CEST) and 01:30Z (CET): 00:30Z;
    // 11-01 02:30 CET = 01:30Z.
    expect(next('30 2 * * *', OSLO, '2027-10-30T00:00:00Z', 3)).toEqual(['2027-10-30T00:30:00.000Z', '2027-10-31T00:30:00.000Z', '2027-11-01T01:30:00.000Z']);
  });

  it('daily 01:30 in Oslo and 02:30 in New York are not repeated times', () => {
    // Oslo 10-31 01:30 CEST = 23:30Z on 10-30; 11-01 01:30 CET = 00:30Z.
    expect(next('30 1 * * *', OSLO, '2027-10-30T12:00:00Z', 2)).toEqual(['2027-10-30T23:30:00.000Z', '2027-11-01T00:30:00.000Z']);
    // New York 11-07 02:30 EST = 07:30Z (02:00 onwards happens once).
    expect(next('30 2 * * *', NY, '2027-11-07T00:00:00Z', 1)).toEqual(['2027-11-07T07:30:00.000Z']);
  });

  it('hourly: the second pass of the repeated hour does not fire', () => {
    // New York from 04:30Z (00:30 EDT): 01:00 EDT = 05:00Z; 01:00 EST = 06:00Z is the same local
    // time again: skipped; 02:00 EST = 07:00Z; 03:00 EST = 08:00Z.
    expect(next('0 * * * *', NY, '2027-11-07T04:30:00Z', 3)).toEqual(['2027-11-07T05:00:00.000Z', '2027-11-07T07:00:00.000Z', '2027-11-07T08:00:00.000Z']);
    // Oslo from 23:30Z on 10-30 (01:30 CEST): 02:00 CEST = 00:00Z; 02:00 CET = 01:00Z skipped;
    // 03:00 CET = 02:00Z; 04:00 CET = 03:00Z.
    expect(next('0 * * * *', OSLO, '2027-10-30T23:30:00Z', 3)).toEqual(['2027-10-31T00:00:00.000Z', '2027-10-31T02:00:00.000Z', '2027-10-31T03:00:00.000Z']);
  });

  it('every 30 minutes: 01:00 and 01:30 fire once each', () => {
    // From 04:45Z (00:45 EDT): 01:00 EDT = 05:00Z, 01:30 EDT = 05:30Z; 06:00Z and 06:30Z (EST) are
    // repeats; 02:00 EST = 07:00Z, 02:30 EST = 07:30Z.
    expect(next('*/30 * * * *', NY, '2027-11-07T04:45:00Z', 4)).toEqual([
      '2027-11-07T05:00:00.000Z',
      '2027-11-07T05:30:00.000Z',
      '2027-11-07T07:00:00.000Z',
      '2027-11-07T07:30:00.000Z',
    ]);
    // Starting inside the second pass (06:10Z = 01:10 EST): 01:30 already fired at 05:30Z,
    // so the next firing is 02:00 EST = 07:00Z.
    expect(next('*/30 * * * *', NY, '2027-11-07T06:10:00Z', 1)).toEqual(['2027-11-07T07:00:00.000Z']);
  });

  it('*/15 2 * * * in Oslo fires only in the first pass of 02:xx', () => {
    // 10-31 02:00-02:45 CEST = 00:00Z-00:45Z; the CET pass (01:00Z-01:45Z) is skipped;
    // 11-01 02:00 CET = 01:00Z.
    expect(next('*/15 2 * * *', OSLO, '2027-10-30T12:00:00Z', 5)).toEqual([
      '2027-10-31T00:00:00.000Z',
      '2027-10-31T00:15:00.000Z',
      '2027-10-31T00:30:00.000Z',
      '2027-10-31T00:45:00.000Z',
      '2027-11-01T01:00:00.000Z',
    ]);
  });

  it('every second through the repeated hour skips exactly one hour', () => {
    // From 00:00Z on 10-31 (02:00:00 CEST), 5400 seconds of local time 02:00:01..03:30:00:
    // 02:00:01-02:59:59 CEST = 00:00:01Z-00:59:59Z, then 03:00:00 CET = 02:00:00Z (not 01:00:00Z).
    const out = next('* * * * * *', OSLO, '2027-10-31T00:00:00Z', 5400);
    expect(out[0]).toBe('2027-10-31T00:00:01.000Z');
    expect(out[3598]).toBe('2027-10-31T00:59:59.000Z');
    expect(out[3599]).toBe('2027-10-31T02:00:00.000Z');
    expect(out[5399]).toBe('2027-10-31T02:30:00.000Z');
  });
});

describe('nextInstants: fields and calendar', () => {
  it('6-field expressions have seconds first', () => {
    // Every 20 s, UTC: strictly after 00:00:00 -> 00:00:20, 00:00:40, 00:01:00.
    expect(next('*/20 * * * * *', 'UTC', '2027-01-01T00:00:00Z', 3)).toEqual([
      '2027-01-01T00:00:20.000Z',
      '2027-01-01T00:00:40.000Z',
      '2027-01-01T00:01:00.000Z',
    ]);
    // 02:15:30 daily in New York: on 03-14 it does not exist -> 03:00:00 EDT = 07:00:00Z;
    // on 03-15 02:15:30 EDT = 06:15:30Z.
    expect(next('30 15 2 * * *', NY, '2027-03-13T12:00:00Z', 2)).toEqual(['2027-03-14T07:00:00.000Z', '2027-03-15T06:15:30.000Z']);
  });

  it('is strictly after from, milliseconds included', () => {
    // 09:00 UTC daily, from exactly 09:00 on 01-01 -> the next day.
    expect(next('0 9 * * *', 'UTC', '2027-01-01T09:00:00Z', 1)).toEqual(['2027-01-02T09:00:00.000Z']);
    // From 00:00:20.5 -> 00:00:40, not 00:00:20.
    expect(next('*/20 * * * * *', 'UTC', '2027-01-01T00:00:20.500Z', 1)).toEqual(['2027-01-01T00:00:40.000Z']);
    expect(nextInstants('0 9 * * *', 'UTC', new Date('2027-01-01T00:00:00Z'), 0)).toEqual([]);
  });

  it('UTC has no transitions', () => {
    // 30 2 * * * in UTC on the New York / Oslo DST days: plain 02:30Z every day.
    expect(next('30 2 * * *', 'UTC', '2027-03-13T12:00:00Z', 2)).toEqual(['2027-03-14T02:30:00.000Z', '2027-03-15T02:30:00.000Z']);
    expect(next('0 * * * *', 'UTC', '2027-10-31T00:30:00Z', 3)).toEqual(['2027-10-31T01:00:00.000Z', '2027-10-31T02:00:00.000Z', '2027-10-31T03:00:00.000Z']);
  });

  it('month ends: day 31 skips shorter months; L is the last day', () => {
    // From 01-31 00:00 (excluded): Feb and Apr have no 31st -> 03-31, 05-31, 07-31.
    expect(next('0 0 31 * *', 'UTC', '2027-01-31T00:00:00Z', 3)).toEqual(['2027-03-31T00:00:00.000Z', '2027-05-31T00:00:00.000Z', '2027-07-31T00:00:00.000Z']);
    // Last day at 12:00: 2028-01-31, 2028-02-29 (leap year), 2028-03-31.
    expect(next('0 12 L * *', 'UTC', '2028-01-15T00:00:00Z', 3)).toEqual(['2028-01-31T12:00:00.000Z', '2028-02-29T12:00:00.000Z', '2028-03-31T12:00:00.000Z']);
    // Month end in a timezone: 23:30 on the last day in Oslo; 2027-03-31 is CEST -> 21:30Z,
    // 2027-04-30 CEST -> 21:30Z.
    expect(next('30 23 L * *', OSLO, '2027-03-01T00:00:00Z', 2)).toEqual(['2027-03-31T21:30:00.000Z', '2027-04-30T21:30:00.000Z']);
  });

  it('leap day: 0 0 29 2 * fires every fourth year, and not in 2100', () => {
    expect(next('0 0 29 2 *', 'UTC', '2027-01-01T00:00:00Z', 3)).toEqual(['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z', '2036-02-29T00:00:00.000Z']);
    // 2100 is not a leap year (divisible by 100, not by 400): 2096 -> 2104.
    expect(next('0 0 29 2 *', 'UTC', '2096-03-01T00:00:00Z', 1)).toEqual(['2104-02-29T00:00:00.000Z']);
    // In New York, Feb is EST: 00:00 local = 05:00Z.
    expect(next('0 0 29 2 *', NY, '2027-01-01T00:00:00Z', 1)).toEqual(['2028-02-29T05:00:00.000Z']);
  });

  it('day of week', () => {
    // Weekdays at 08:00 in New York from 2027-03-12 (a Friday) 00:00Z: Fri 03-12 08:00 EST = 13:00Z,
    // then Mon 03-15 08:00 EDT = 12:00Z (the weekend, with the transition, is skipped), Tue 03-16 12:00Z.
    expect(next('0 8 * * 1-5', NY, '2027-03-12T00:00:00Z', 3)).toEqual(['2027-03-12T13:00:00.000Z', '2027-03-15T12:00:00.000Z', '2027-03-16T12:00:00.000Z']);
    // Sunday is 0 or 7 (or SUN): Sundays after Fri 2027-01-01 are 01-03, 01-10.
    for (const sun of ['0', '7', 'SUN']) {
      expect(next(`0 0 * * ${sun}`, 'UTC', '2027-01-01T00:00:00Z', 2)).toEqual(['2027-01-03T00:00:00.000Z', '2027-01-10T00:00:00.000Z']);
    }
    // Second Monday: January 2027 Mondays are 4, 11 -> 01-11; February's are 1, 8 -> 02-08.
    expect(next('0 9 * * 1#2', 'UTC', '2027-01-01T00:00:00Z', 2)).toEqual(['2027-01-11T09:00:00.000Z', '2027-02-08T09:00:00.000Z']);
    // Last Friday: Jan 29, Feb 26 2027.
    expect(next('0 0 * * 5L', 'UTC', '2027-01-01T00:00:00Z', 2)).toEqual(['2027-01-29T00:00:00.000Z', '2027-02-26T00:00:00.000Z']);
    // Both day fields restricted: the 13th OR a Friday (classic cron). After Fri 01-01 00:00:
    // Fri 01-08, Wed 01-13, Fri 01-15.
    expect(next('0 0 13 * 5', 'UTC', '2027-01-01T00:00:00Z', 3)).toEqual(['2027-01-08T00:00:00.000Z', '2027-01-13T00:00:00.000Z', '2027-01-15T00:00:00.000Z']);
  });

  it('is strictly increasing for every minute over a month (bench: cron phase times it)', () => {
    // October 15 to November 15 2027 in New York: 31 days = 44640 minutes, minus the 60 minutes
    // of the repeated 01:xx hour on 11-07 = 44580 firings.
    const out = instantsBetween('*/1 * * * *', NY, new Date('2027-10-15T00:00:00Z'), new Date('2027-11-15T00:00:00Z'));
    expect(out.length).toBe(44580);
    for (let i = 1; i < out.length; i++) expect(out[i].getTime() > out[i - 1].getTime()).toBe(true);
  });
});

describe('instantsBetween: catch-up windows (from, to]', () => {
  it('excludes from, includes to', () => {
    // Hourly in New York over the fall-back night: (04:00Z, 08:00Z] -> 05:00Z (01:00 EDT),
    // 07:00Z (02:00 EST), 08:00Z (03:00 EST); 06:00Z is the repeated 01:00.
    expect(between('0 * * * *', NY, '2027-11-07T04:00:00Z', '2027-11-07T08:00:00Z')).toEqual([
      '2027-11-07T05:00:00.000Z',
      '2027-11-07T07:00:00.000Z',
      '2027-11-07T08:00:00.000Z',
    ]);
  });

  it('a skipped local time is caught up once', () => {
    // The whole 2027-03-14 UTC day: */15 2 * * * in New York fires once, at 07:00Z.
    expect(between('*/15 2 * * *', NY, '2027-03-14T00:00:00Z', '2027-03-15T00:00:00Z')).toEqual(['2027-03-14T07:00:00.000Z']);
    // A window ending exactly at the end of the gap includes it; one ending just before does not.
    expect(between('30 2 * * *', OSLO, '2027-03-28T00:00:00Z', '2027-03-28T01:00:00Z')).toEqual(['2027-03-28T01:00:00.000Z']);
    expect(between('30 2 * * *', OSLO, '2027-03-28T00:00:00Z', '2027-03-28T00:59:59Z')).toEqual([]);
  });

  it('a window inside the second pass of a repeated hour is empty', () => {
    // (06:00Z, 06:59Z] is 01:00-01:59 EST, all already fired in the EDT pass.
    expect(between('*/30 * * * *', NY, '2027-11-07T06:00:00Z', '2027-11-07T06:59:00Z')).toEqual([]);
  });

  it('returns at most cap, the earliest', () => {
    // Every minute in UTC over (00:00, 01:00]: 60 instants, 00:01..01:00; cap 3 -> the first three.
    const all = between('* * * * *', 'UTC', '2027-01-01T00:00:00Z', '2027-01-01T01:00:00Z');
    expect(all.length).toBe(60);
    expect(all[0]).toBe('2027-01-01T00:01:00.000Z');
    expect(all[59]).toBe('2027-01-01T01:00:00.000Z');
    expect(between('* * * * *', 'UTC', '2027-01-01T00:00:00Z', '2027-01-01T01:00:00Z', 3)).toEqual([
      '2027-01-01T00:01:00.000Z',
      '2027-01-01T00:02:00.000Z',
      '2027-01-01T00:03:00.000Z',
    ]);
  });

  it('an empty or reversed window gives nothing', () => {
    expect(between('* * * * *', 'UTC', '2027-01-01T00:00:00Z', '2027-01-01T00:00:00Z')).toEqual([]);
    expect(between('* * * * *', 'UTC', '2027-01-01T01:00:00Z', '2027-01-01T00:00:00Z')).toEqual([]);
    // A sparse schedule with no firing in the window.
    expect(between('0 0 29 2 *', 'UTC', '2027-01-01T00:00:00Z', '2027-12-31T00:00:00Z')).toEqual([]);
  });
});

describe('invalid input', () => {
  const from = new Date('2027-01-01T00:00:00Z');
  const oneLineError = (fn: () => unknown, re: RegExp) => {
    let message = '';
    try {
      fn();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(re);
    expect(message).not.toContain('\n');
  };

  it('rejects bad expressions with a one-line message naming the expression', () => {
    oneLineError(() => nextInstants('0 0 * *', 'UTC', from, 1), /invalid cron expression "0 0 \* \*": .*5 or 6 fields, got 4/);
    oneLineError(() => nextInstants('0 0 0 * * * *', 'UTC', from, 1), /5 or 6 fields, got 7/);
    oneLineError(() => nextInstants('', 'UTC', from, 1), /5 or 6 fields, got 0/);
    oneLineError(() => nextInstants('@daily', 'UTC', from, 1), /5 or 6 fields, got 1/);
    oneLineError(() => nextInstants('61 * * * *', 'UTC', from, 1), /invalid cron expression "61 \* \* \* \*": .*61/);
    oneLineError(() => nextInstants('x * * * *', 'UTC', from, 1), /invalid cron expression "x \* \* \* \*"/);
    oneLineError(() => nextInstants('0 0 30 2 *', 'UTC', from, 1), /invalid cron expression "0 0 30 2 \*"/);
    oneLineError(() => instantsBetween('5-1 * * * *', 'UTC', from, from), /invalid cron expression "5-1 \* \* \* \*"/);
  });

  it('rejects unknown timezones', () => {
    oneLineError(() => nextInstants('0 0 * * *', 'Mars/Olympus', from, 1), /unknown IANA timezone "Mars\/Olympus"/);
    oneLineError(() => instantsBetween('0 0 * * *', '', from, from), /unknown IANA timezone ""/);
  });

  it('rejects bad dates and counts', () => {
    oneLineError(() => nextInstants('0 0 * * *', 'UTC', new Date('nope'), 1), /from must be a valid Date/);
    oneLineError(() => instantsBetween('0 0 * * *', 'UTC', from, new Date(NaN)), /to must be a valid Date/);
    oneLineError(() => nextInstants('0 0 * * *', 'UTC', from, -1), /count must be/);
    oneLineError(() => nextInstants('0 0 * * *', 'UTC', from, 1.5), /count must be/);
    oneLineError(() => instantsBetween('0 0 * * *', 'UTC', from, from, -1), /cap must be/);
  });
});

describe('Sunday as 7 (standard cron)', () => {
  // 2027-01-01 is a Friday: Sat 01-02, Sun 01-03, Fri 01-08, Sat 01-09, Sun 01-10.
  const days = (schedule: string, from: string, count: number) =>
    next(schedule, 'UTC', from, count).map((iso) => `${iso.slice(0, 10)} ${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][new Date(iso).getUTCDay()]}`);

  it('0 0 * * 0,7 fires every Sunday once, not twice', () => {
    expect(days('0 0 * * 0,7', '2027-01-01T00:00:00Z', 3)).toEqual(['2027-01-03 Sun', '2027-01-10 Sun', '2027-01-17 Sun']);
    expect(between('0 0 * * 0,7', 'UTC', '2027-01-01T00:00:00Z', '2027-01-31T00:00:00Z')).toEqual(
      between('0 0 * * 0', 'UTC', '2027-01-01T00:00:00Z', '2027-01-31T00:00:00Z'),
    );
    expect(days('0 0 * * 7', '2027-01-01T00:00:00Z', 2)).toEqual(['2027-01-03 Sun', '2027-01-10 Sun']);
    expect(days('0 0 * * SUN,7', '2027-01-01T00:00:00Z', 2)).toEqual(['2027-01-03 Sun', '2027-01-10 Sun']);
  });

  it('0 0 * * SAT-SUN fires Saturday and Sunday', () => {
    expect(days('0 0 * * SAT-SUN', '2027-01-01T00:00:00Z', 4)).toEqual(['2027-01-02 Sat', '2027-01-03 Sun', '2027-01-09 Sat', '2027-01-10 Sun']);
    expect(days('0 0 * * sat-sun', '2027-01-01T00:00:00Z', 2)).toEqual(['2027-01-02 Sat', '2027-01-03 Sun']);
  });

  it('0 0 * * 5-7 fires Friday, Saturday and Sunday', () => {
    expect(days('0 0 * * 5-7', '2026-12-31T12:00:00Z', 4)).toEqual(['2027-01-01 Fri', '2027-01-02 Sat', '2027-01-03 Sun', '2027-01-08 Fri']);
    expect(days('0 0 * * FRI-SUN', '2026-12-31T12:00:00Z', 3)).toEqual(['2027-01-01 Fri', '2027-01-02 Sat', '2027-01-03 Sun']);
  });

  it('validation accepts them, and still refuses a day past 7 or a backwards range', () => {
    const doc = (schedule: string) => ({
      id: 'wk',
      start: 'a',
      trigger: { type: 'cron', schedule },
      nodes: [{ id: 'a', type: 'function', code: 'return msg;' }],
    });
    for (const schedule of ['0 0 * * 0,7', '0 0 * * SAT-SUN', '0 0 * * 5-7', '0 0 * * 7', '0 0 0 * * 0,7']) {
      expect(validateScenario(doc(schedule)).problems, schedule).toEqual([]);
    }
    for (const schedule of ['0 0 * * 8', '0 0 * * 6-5']) {
      const problems = validateScenario(doc(schedule)).problems;
      expect(problems, schedule).toHaveLength(1);
      expect(problems[0]).toMatch(/^trigger\.schedule: /);
      expect(() => nextInstants(schedule, 'UTC', new Date('2027-01-01T00:00:00Z'), 1), schedule).toThrow(/invalid cron expression/);
    }
  });
});

describe('schedule preview (command)', () => {
  let dir: string;
  const scenario = (trigger: unknown) => ({ id: 'nightly', trigger, start: 'a', nodes: [{ id: 'a', type: 'function', code: 'return msg;' }] });
  const file = (name: string, doc: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(doc));
    return path;
  };

  const preview = (args: string[]): Promise<CliRun> => runCli(['schedule', 'preview', ...args]);

  /** A failing preview: its exit code and its one-line error (the last line on stderr). */
  async function failure(args: string[]): Promise<{ code: number; message: string }> {
    const r = await preview(args);
    if (r.code === 0) throw new Error('expected the command to fail');
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    expect(last.startsWith('flowmeter: '), r.stderr).toBe(true);
    expect(r.stdout).toBe('');
    return { code: r.code, message: last.slice('flowmeter: '.length) };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowmeter-schedule-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the next N instants with the timezone offset, one per line', async () => {
    const f = file('ny.json', scenario({ type: 'cron', schedule: '30 2 * * *', timezone: NY }));
    // 03-14 02:30 does not exist -> 03:00 EDT; then 02:30 EDT.
    const r = await preview([f, '--from', '2027-03-13T12:00:00Z', '--count', '3']);
    expect(r).toEqual({ stdout: '2027-03-14T03:00:00-04:00\n2027-03-15T02:30:00-04:00\n2027-03-16T02:30:00-04:00\n', stderr: '', code: 0 });
  });

  it('shows the offset change across fall back', async () => {
    const f = file('oslo.json', scenario({ type: 'cron', schedule: '0 * * * *', timezone: OSLO }));
    // From 23:30Z on 10-30 (01:30 CEST): 02:00 CEST, (02:00 CET skipped), 03:00 CET, 04:00 CET.
    const r = await preview([f, '--from', '2027-10-30T23:30:00Z', '--count', '3']);
    expect(r.stdout).toBe('2027-10-31T02:00:00+02:00\n2027-10-31T03:00:00+01:00\n2027-10-31T04:00:00+01:00\n');
  });

  it('defaults: UTC timezone, 10 instants, from now', async () => {
    const f = file('utc.json', scenario({ type: 'cron', schedule: '0 0 1 * *' }));
    const r = await preview([f, '--from', '2027-01-15T00:00:00Z']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('2027-02-01T00:00:00+00:00');
    expect(lines[9]).toBe('2027-11-01T00:00:00+00:00');

    const now = Date.now();
    const fromNow = (await preview([f, '--count', '1'])).stdout.trim();
    expect(Date.parse(fromNow)).toBeGreaterThan(now);
    expect(Date.parse(fromNow) - now).toBeLessThanOrEqual(32 * 24 * 3600 * 1000);
  });

  it("agrees with the scheduler's instants for Sunday as 7 (0,7, SAT-SUN, 5-7)", async () => {
    for (const schedule of ['0 0 * * 0,7', '0 0 * * SAT-SUN', '0 0 * * 5-7']) {
      const f = file('weekend.json', scenario({ type: 'cron', schedule, timezone: OSLO }));
      const r = await preview([f, '--from', '2027-01-01T00:00:00Z', '--count', '6']);
      expect(r.code, r.stderr).toBe(0);
      const printed = r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => new Date(l).toISOString());
      // What the scheduler fires in the same window (it walks instantsBetween).
      const fired = between(schedule, OSLO, '2027-01-01T00:00:00Z', '2027-03-01T00:00:00Z').slice(0, 6);
      expect(printed, schedule).toEqual(fired);
      expect(new Set(printed).size).toBe(6);
    }
  });

  it('reads --from without an offset in the scenario timezone', async () => {
    const f = file('ny-hourly.json', scenario({ type: 'cron', schedule: '0 * * * *', timezone: NY }));
    // 2027-03-14T00:30 local (EST) -> next 01:00 EST, then 03:00 EDT (02:00 is skipped).
    const r = await preview([f, '--from', '2027-03-14T00:30', '--count', '2']);
    expect(r.stdout).toBe('2027-03-14T01:00:00-05:00\n2027-03-14T03:00:00-04:00\n');
  });

  it('fails with one line on a bad --from, --count, a non-cron trigger or an invalid scenario', async () => {
    const f = file('cron.json', scenario({ type: 'cron', schedule: '0 0 * * *' }));
    const bad = await failure([f, '--from', 'yesterday']);
    expect(bad.code).toBe(EXIT.invalid); // a CliError
    expect(bad.message).toMatch(/^--from must be an ISO 8601 date-time.*"yesterday"$/);

    expect((await failure([f, '--count', 'ten'])).message).toMatch(/^--count must be a whole number/);
    expect((await failure([f, '--count', '0'])).message).toMatch(/^--count must be at least 1/);

    const manual = file('manual.json', scenario({ type: 'manual' }));
    const m = await failure([manual]);
    expect(m.code).toBe(EXIT.invalid); // a CliError
    expect(m.message).toMatch(/manual trigger; schedule preview needs a cron trigger$/);

    const invalid = file('invalid.json', scenario({ type: 'cron', schedule: '0 0 * *' }));
    const i = await failure([invalid]);
    expect(i.code).toBe(EXIT.invalid); // a CliError
    expect(i.message).toMatch(/invalid\.json: 1 problem/);

    for (const e of [bad, m, i]) expect(e.message).not.toContain('\n');
  });
});
