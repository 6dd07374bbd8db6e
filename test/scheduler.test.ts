/**
 * The scheduler (SPEC.md §6): cron scenarios fire at their instants, once per instant however
 * many schedulers run, catch up what they missed within `catchUp`, and are rejected while the
 * quota is exhausted. Time is an injected clock the tests step, and ticks are driven by hand
 * (`tick()`, or an injected ticker); only the default node-cron ticker has a test on the real
 * clock (schedulers killed across instants as processes: faults.test.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../cli/errors.js';
import type { RunRecord, RunStatus } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import { createProduction, type Production } from '../redis/production.js';
import { createScheduler, type Scheduler, type SchedulerOptions, type Ticker } from '../scheduler/scheduler.js';
import { runCli } from './helpers/cli.js';
import { waitUntil } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const ENDED: RunStatus[] = ['succeeded', 'failed', 'halted', 'rejected'];
const TENANT = 'acme';
const INPUT = { report: 'daily', n: 7 };

/** Closed after each test, schedulers first. */
const schedulers: Scheduler[] = [];
const platforms: Platform[] = [];
const workers: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await Promise.all(platforms.splice(0).map((p) => p.close()));
  vi.unstubAllEnvs();
});

/** A clock the test moves by hand. */
class Clock {
  t: number;
  constructor(iso: string) {
    this.t = Date.parse(iso);
  }
  now = (): Date => new Date(this.t);
  set(iso: string): void {
    this.t = Date.parse(iso);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A live ticker the test fires by hand. */
class ManualTicker {
  onTick: (() => void) | null = null;
  tickMs = 0;
  stops = 0;
  readonly ticker: Ticker = (onTick, tickMs) => {
    this.onTick = onTick;
    this.tickMs = tickMs;
    return {
      stop: () => {
        this.onTick = null;
        this.stops++;
      },
    };
  };
}

interface LogLine {
  level: 'info' | 'warn';
  obj: Record<string, unknown>;
  msg: string;
}

function recorder(): { lines: LogLine[]; logger: NonNullable<SchedulerOptions['logger']> } {
  const lines: LogLine[] = [];
  return {
    lines,
    logger: {
      info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    },
  };
}

function scheduler(p: Platform, clock: Clock, opts: SchedulerOptions = {}): Scheduler {
  const s = createScheduler(p, { now: clock.now, ticker: false, ...opts });
  schedulers.push(s);
  return s;
}

function embedded(env?: Record<string, string>): Embedded {
  const p = createEmbedded(env ? { env } : {});
  platforms.push(p);
  return p;
}

async function production(prefix?: string): Promise<Production> {
  const p = prefix ? await createProduction({ redisUrl: redisUrl(), prefix }) : await useProduction();
  platforms.push(p);
  return p;
}

function worker(p: Production): void {
  workers.push(p.startWorker({ concurrency: 2 }));
}

/** A cron scenario whose one node passes the trigger's message on. */
function cronScenario(id: string, trigger: Record<string, unknown>) {
  return scenarioOf({ id, trigger: { type: 'cron', input: INPUT, ...trigger }, start: 'echo', nodes: [fn('echo', 'return msg;')] });
}

async function deploy(p: Platform, id: string, trigger: Record<string, unknown>, tenant = TENANT, enabled = true): Promise<void> {
  await p.scenarios.deploy(tenant, cronScenario(id, trigger));
  if (enabled) await p.scenarios.enable(tenant, id, undefined);
}

/** A tenant with no action left and a scenario firing every 5 minutes; a started scheduler logging into `lines`, its clock at 10:00:30. */
async function exhaustedEvery5(p: Platform): Promise<{ lines: LogLine[]; clock: Clock; s: Scheduler }> {
  await p.ledger.setQuota(TENANT, { monthlyActions: 0 });
  await deploy(p, 'every5', { schedule: '*/5 * * * *' });
  const { lines, logger } = recorder();
  const clock = new Clock('2027-01-04T10:00:30Z');
  const s = scheduler(p, clock, { logger });
  await s.start();
  return { lines, clock, s };
}

/** Waits until `count` runs of the scenario exist and have all ended; returns them, oldest instant first. */
async function endedRuns(p: Platform, scenarioId: string, count: number, tenant = TENANT): Promise<RunRecord[]> {
  const list = await waitUntil(
    `${count} runs of ${scenarioId} to end`,
    async () => {
      const l = await p.runs.list(tenant, { scenarioId, limit: 10_000 });
      return l.length === count && l.every((r) => ENDED.includes(r.status)) ? l : false;
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
  const runs = await Promise.all(list.map(async (r) => (await p.runs.get(tenant, r.runId))!));
  return runs.sort((a, b) => String(a.trigger.firedAt).localeCompare(String(b.trigger.firedAt)));
}

async function runCount(p: Platform, scenarioId: string, tenant = TENANT): Promise<number> {
  return (await p.runs.list(tenant, { scenarioId, limit: 10_000 })).length;
}

const firedAts = (runs: RunRecord[]) => runs.map((r) => r.trigger.firedAt);

/** Ticks every `stepMs` from the clock's time up to `untilIso` (inclusive); returns the total fired. */
async function tickUntil(clock: Clock, untilIso: string, stepMs: number, ...ss: Scheduler[]): Promise<number> {
  const until = Date.parse(untilIso);
  let fired = 0;
  while (clock.t < until) {
    clock.t = Math.min(clock.t + stepMs, until);
    const counts = await Promise.all(ss.map((s) => s.tick()));
    fired += counts.reduce((a, b) => a + b, 0);
  }
  return fired;
}

function expectCronRun(run: RunRecord, firedAt: string): void {
  expect(run.status).toBe('succeeded');
  expect(run.trigger).toMatchObject({ type: 'cron', firedAt });
  const trigger = run.tasks[0]!;
  expect(trigger).toMatchObject({ nodeId: '$trigger', seq: 1, type: 'cron' });
  expect(trigger.output).toEqual({ firedAt, payload: INPUT });
  expect(run.outputs).toEqual([{ firedAt, payload: INPUT }]);
}

describe('scheduler (embedded)', () => {
  it('fires a */5 scenario at exactly its instants as the clock advances, with the input as payload', async () => {
    const p = embedded();
    await deploy(p, 'every5', { schedule: '*/5 * * * *' });
    const clock = new Clock('2027-01-04T10:02:30Z');
    const s = scheduler(p, clock);
    await s.start();

    // Tick by tick: nothing before 10:05, the instant itself at exactly 10:05:00.000.
    clock.set('2027-01-04T10:04:59.999Z');
    expect(await s.tick()).toBe(0);
    clock.set('2027-01-04T10:05:00.000Z');
    expect(await s.tick()).toBe(1);
    expect(await s.tick()).toBe(0); // same instant, same tick time: nothing more
    clock.set('2027-01-04T10:05:00.500Z');
    expect(await s.tick()).toBe(0);
    // Then second by second-ish up to 10:21.
    expect(await tickUntil(clock, '2027-01-04T10:21:00Z', 7_000, s)).toBe(3);

    const runs = await endedRuns(p, 'every5', 4);
    expect(firedAts(runs)).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:10:00.000Z', '2027-01-04T10:15:00.000Z', '2027-01-04T10:20:00.000Z']);
    for (const run of runs) expectCronRun(run, run.trigger.firedAt as string);
    expect(runs.map((r) => r.actions)).toEqual([2, 2, 2, 2]);
  });

  it('a large clock jump fires every instant in between once, oldest first', async () => {
    const p = embedded();
    await deploy(p, 'every5', { schedule: '*/5 * * * *' });
    const clock = new Clock('2027-01-04T10:00:00Z');
    const s = scheduler(p, clock);
    await s.start();
    const seen: string[] = [];
    const fire = p.fire.bind(p);
    p.fire = async (tenant, id, payload, info, instant) => {
      seen.push(info.firedAt as string);
      return fire(tenant, id, payload, info, instant);
    };
    clock.set('2027-01-04T10:30:00Z');
    expect(await s.tick()).toBe(6);
    expect(seen).toEqual(['05', '10', '15', '20', '25', '30'].map((m) => `2027-01-04T10:${m}:00.000Z`));
    await endedRuns(p, 'every5', 6);
  });

  it('disabled scenarios do not fire; one enabled later starts from the current tick', async () => {
    const p = embedded();
    await deploy(p, 'on', { schedule: '*/5 * * * *' });
    await deploy(p, 'off', { schedule: '*/5 * * * *' }, TENANT, false);
    await p.scenarios.deploy(TENANT, scenarioOf({ id: 'manual', start: 'echo', nodes: [fn('echo', 'return msg;')] }));
    await p.scenarios.enable(TENANT, 'manual', undefined);
    const clock = new Clock('2027-01-04T10:00:30Z');
    const s = scheduler(p, clock, { catchUpMs: 3_600_000 });
    await s.start(); // catch-up from 09:00:30 for scenarios present at start (09:05 … 10:00)
    expect(await runCount(p, 'on')).toBe(12);
    expect(await runCount(p, 'off')).toBe(0);

    expect(await tickUntil(clock, '2027-01-04T10:12:00Z', 60_000, s)).toBe(2); // on: 10:05, 10:10
    expect(await runCount(p, 'off')).toBe(0);
    expect(await runCount(p, 'manual')).toBe(0);

    // Enabled at 10:12: its past (10:05, 10:10, and the catch-up window) never fires.
    await p.scenarios.enable(TENANT, 'off', undefined);
    clock.set('2027-01-04T10:13:00Z');
    expect(await s.tick()).toBe(0);
    clock.set('2027-01-04T10:15:00Z');
    expect(await s.tick()).toBe(2); // on and off at 10:15

    // Disabled again: it stops; enabled again after 10:20, 10:20 is its past.
    await p.scenarios.disable(TENANT, 'off');
    clock.set('2027-01-04T10:21:00Z');
    expect(await s.tick()).toBe(1);
    await p.scenarios.enable(TENANT, 'off', undefined);
    clock.set('2027-01-04T10:22:00Z');
    expect(await s.tick()).toBe(0);
    clock.set('2027-01-04T10:25:00Z');
    expect(await s.tick()).toBe(2);

    const off = await endedRuns(p, 'off', 2);
    expect(firedAts(off)).toEqual(['2027-01-04T10:15:00.000Z', '2027-01-04T10:25:00.000Z']);
    await endedRuns(p, 'on', 12 + 2 + 1 + 1 + 1);
  });

  it('scenarios of every tenant fire, each in its own timezone', async () => {
    const p = embedded();
    await deploy(p, 'utc9', { schedule: '0 9 * * *' }, 'a');
    await deploy(p, 'oslo9', { schedule: '0 9 * * *', timezone: 'Europe/Oslo' }, 'b');
    const clock = new Clock('2027-01-04T00:00:00Z');
    const s = scheduler(p, clock);
    await s.start();
    expect(await tickUntil(clock, '2027-01-04T12:00:00Z', 15 * 60_000, s)).toBe(2);
    expect(firedAts(await endedRuns(p, 'utc9', 1, 'a'))).toEqual(['2027-01-04T09:00:00.000Z']);
    expect(firedAts(await endedRuns(p, 'oslo9', 1, 'b'))).toEqual(['2027-01-04T08:00:00.000Z']);
  });

  it('with the quota exhausted, firings past FLOWMETER_REJECTED_RUNS a period are counted, not recorded (logged once)', async () => {
    // Before, every firing left a rejected run: a tenant's thousands of cron scenarios firing
    // every minute with no action left filled the store, unbilled.
    const p = embedded({ FLOWMETER_REJECTED_RUNS: '2' });
    const { lines, clock, s } = await exhaustedEvery5(p);
    expect(await tickUntil(clock, '2027-01-04T10:30:30Z', 60_000, s)).toBe(2);
    const runs = await endedRuns(p, 'every5', 2);
    expect(firedAts(runs)).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:10:00.000Z']);
    const notRecorded = lines.filter((l) => l.level === 'warn' && /counted, not recorded/.test(l.msg));
    expect(notRecorded.map((l) => l.obj.instant)).toEqual(['2027-01-04T10:15:00.000Z']);
    // The entry moved on: with actions again, the next instant fires (and none of the skipped ones).
    await p.ledger.setQuota(TENANT, { monthlyActions: 100 });
    clock.set('2027-01-04T10:35:00Z');
    expect(await s.tick()).toBe(1);
    const after = await endedRuns(p, 'every5', 3);
    expect(after[2]).toMatchObject({ status: 'succeeded', trigger: { firedAt: '2027-01-04T10:35:00.000Z' } });
  });

  it("a non-billable cron scenario is not fired once the tenant's non-billable actions reach its quota (logged once)", async () => {
    const p = embedded();
    await p.ledger.setQuota(TENANT, { monthlyActions: 2 });
    await p.scenarios.deploy(
      TENANT,
      scenarioOf({
        id: 'free',
        billable: false,
        trigger: { type: 'cron', schedule: '*/5 * * * *', input: INPUT },
        start: 'echo',
        nodes: [fn('echo', 'return msg;')],
      }),
    );
    await p.scenarios.enable(TENANT, 'free', undefined);
    const { lines, logger } = recorder();
    const clock = new Clock('2027-01-04T10:00:30Z');
    const s = scheduler(p, clock, { logger });
    await s.start();
    expect(await tickUntil(clock, '2027-01-04T10:06:00Z', 60_000, s)).toBe(1);
    const [run] = await endedRuns(p, 'free', 1);
    expect(run).toMatchObject({ status: 'succeeded', billable: false, actions: 2 });
    expect(await tickUntil(clock, '2027-01-04T10:30:30Z', 60_000, s)).toBe(0);
    expect(await runCount(p, 'free')).toBe(1);
    const skipped = lines.filter((l) => l.level === 'warn' && /non-billable firings are not fired/.test(l.msg));
    expect(skipped.map((l) => l.obj.instant)).toEqual(['2027-01-04T10:10:00.000Z']);
  });

  it('DST: America/New_York 30 2 * * * fires once on 2027-03-14, at 07:00Z (03:00 EDT)', async () => {
    const p = embedded();
    await deploy(p, 'ny', { schedule: '30 2 * * *', timezone: 'America/New_York' });
    const clock = new Clock('2027-03-13T12:00:00Z');
    const s = scheduler(p, clock);
    await s.start();
    const fired: string[] = [];
    const fire = p.fire.bind(p);
    p.fire = async (tenant, id, payload, info, instant) => {
      fired.push(`${info.firedAt as string} at ${clock.now().toISOString()}`);
      return fire(tenant, id, payload, info, instant);
    };
    expect(await tickUntil(clock, '2027-03-15T00:00:00Z', 60_000, s)).toBe(1);
    expect(fired).toEqual(['2027-03-14T07:00:00.000Z at 2027-03-14T07:00:00.000Z']);
    const [run] = await endedRuns(p, 'ny', 1);
    expectCronRun(run!, '2027-03-14T07:00:00.000Z');
  });

  it('while the quota is exhausted, firings are recorded as rejected runs (QUOTA_EXHAUSTED) and logged', async () => {
    const p = embedded();
    const { lines, clock, s } = await exhaustedEvery5(p);
    expect(await tickUntil(clock, '2027-01-04T10:10:30Z', 60_000, s)).toBe(2);
    const runs = await endedRuns(p, 'every5', 2);
    for (const run of runs) {
      expect(run).toMatchObject({ status: 'rejected', actions: 0, error: { code: 'QUOTA_EXHAUSTED' }, trigger: { type: 'cron' } });
      expect(run.tasks).toEqual([]);
    }
    expect(firedAts(runs)).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:10:00.000Z']);
    const rejected = lines.filter((l) => l.level === 'warn' && /QUOTA_EXHAUSTED/.test(l.msg));
    expect(rejected.map((l) => l.obj.instant)).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:10:00.000Z']);
    expect(rejected[0]!.obj).toMatchObject({ tenant: TENANT, scenarioId: 'every5', runId: runs[0]!.runId });

    // Raised quota: the next firing runs.
    await p.ledger.setQuota(TENANT, { monthlyActions: 100 });
    clock.set('2027-01-04T10:15:00Z');
    expect(await s.tick()).toBe(1);
    const after = await endedRuns(p, 'every5', 3);
    expectCronRun(after[2]!, '2027-01-04T10:15:00.000Z');
  });

  it('a store failure fails the tick: logged once, retried next tick, no instant lost or doubled', async () => {
    const p = embedded();
    await deploy(p, 'every5', { schedule: '*/5 * * * *' });
    await deploy(p, 'other', { schedule: '*/5 * * * *' }, 'other');
    const { lines, logger } = recorder();
    const clock = new Clock('2027-01-04T10:00:30Z');
    const s = scheduler(p, clock, { logger });
    await s.start();

    // The whole store is down: the cron index cannot be read.
    const due = p.scenarios.cron.due.bind(p.scenarios.cron);
    p.scenarios.cron.due = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    expect(await tickUntil(clock, '2027-01-04T10:11:00Z', 30_000, s)).toBe(0);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual(['scheduler: reading the cron index failed; retrying next tick']);
    p.scenarios.cron.due = due;
    expect(await s.tick()).toBe(4); // 10:05 and 10:10 of both tenants
    expect(lines.filter((l) => /works again/.test(l.msg))).toHaveLength(1);

    // Firing fails for one tenant only: the other still fires; the failing one catches up after.
    const fire = p.fire.bind(p);
    p.fire = async (tenant, id, payload, info, instant) => {
      if (tenant === TENANT) throw new Error("READONLY You can't write against a read only replica.");
      return fire(tenant, id, payload, info, instant);
    };
    expect(await tickUntil(clock, '2027-01-04T10:21:00Z', 30_000, s)).toBe(2); // other: 10:15, 10:20
    expect(lines.filter((l) => /firing failed/.test(l.msg))).toHaveLength(1);
    p.fire = fire;
    expect(await s.tick()).toBe(2); // acme: 10:15, 10:20

    // A firing that dies half-way (the run persisted, the call failed) is completed next tick,
    // once: fire is idempotent per instant.
    let failures = 1;
    p.fire = async (tenant, id, payload, info, instant) => {
      const out = await fire(tenant, id, payload, info, instant);
      if (tenant === TENANT && failures-- > 0) throw new Error('connection lost');
      return out;
    };
    clock.set('2027-01-04T10:25:00Z');
    expect(await s.tick()).toBe(1); // other fired; acme's run was made but the call failed
    clock.set('2027-01-04T10:25:01Z');
    expect(await s.tick()).toBe(0); // acme 10:25 again: already there, not fired twice
    p.fire = fire;

    const acme = await endedRuns(p, 'every5', 5);
    expect(firedAts(acme)).toEqual(['05', '10', '15', '20', '25'].map((m) => `2027-01-04T10:${m}:00.000Z`));
    expect(firedAts(await endedRuns(p, 'other', 5, 'other'))).toEqual(firedAts(acme));
  });

  it('a scenario whose schedule cannot be computed does not stop the others', async () => {
    const p = embedded();
    const bad = cronScenario('bad', { schedule: '*/5 * * * *' });
    bad.trigger = { type: 'cron', schedule: '*/5 * * * *', timezone: 'Mars/Olympus_Mons' }; // would not validate
    await p.scenarios.deploy(TENANT, bad);
    await p.scenarios.enable(TENANT, 'bad', undefined);
    await deploy(p, 'good', { schedule: '*/5 * * * *' });
    const { lines, logger } = recorder();
    const clock = new Clock('2027-01-04T10:00:30Z');
    const s = scheduler(p, clock, { logger });
    await s.start();
    expect(await tickUntil(clock, '2027-01-04T10:11:00Z', 60_000, s)).toBe(2);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(lines.find((l) => l.level === 'warn')!.obj).toMatchObject({ scenarioId: 'bad' });
    await endedRuns(p, 'good', 2);
    expect(await runCount(p, 'bad')).toBe(0);
  });

  it('a scenario present at start whose first handling failed still catches up on the next tick', async () => {
    const p = embedded();
    await deploy(p, 'c15', { schedule: '*/5 * * * *', catchUp: 15 * 60_000 });
    const clock = new Clock('2027-01-04T10:32:00Z');
    const get = p.scenarios.get.bind(p.scenarios);
    let failures = 1;
    p.scenarios.get = async (tenant, id) => {
      if (failures-- > 0) throw new Error('connect ECONNREFUSED');
      return get(tenant, id);
    };
    const s = scheduler(p, clock);
    await s.start(); // the store failed: nothing fired
    expect(await runCount(p, 'c15')).toBe(0);
    clock.set('2027-01-04T10:32:01Z');
    expect(await s.tick()).toBe(3); // 10:20, 10:25, 10:30: the window of its start
  });

  it('catch-up from trigger.catchUp: oldest first, only within the window', async () => {
    const p = embedded();
    await deploy(p, 'c15', { schedule: '*/5 * * * *', catchUp: 15 * 60_000 });
    await deploy(p, 'c0', { schedule: '*/5 * * * *' });
    const clock = new Clock('2027-01-04T10:32:00Z');
    const seen: string[] = [];
    const fire = p.fire.bind(p);
    p.fire = async (tenant, id, payload, info, instant) => {
      seen.push(`${id} ${info.firedAt as string}`);
      return fire(tenant, id, payload, info, instant);
    };
    const s = scheduler(p, clock);
    await s.start();
    expect(seen).toEqual(['20', '25', '30'].map((m) => `c15 2027-01-04T10:${m}:00.000Z`));
    await endedRuns(p, 'c15', 3);
    expect(await runCount(p, 'c0')).toBe(0);
  });

  it('the live ticker: each of its ticks fires what is due on the clock; none after stop', async () => {
    const p = embedded();
    await deploy(p, 'every5', { schedule: '*/5 * * * *' });
    const clock = new Clock('2027-01-04T10:02:30Z');
    const manual = new ManualTicker();
    const s = scheduler(p, clock, { ticker: manual.ticker, tickMs: 2000 });
    await s.start();
    expect(manual.tickMs).toBe(2000);
    const live = manual.onTick!;
    expect(live).toBeTypeOf('function');

    clock.set('2027-01-04T10:05:00Z');
    live();
    // tick() runs after the live tick it queued behind: the live one fired 10:05, nothing is left.
    expect(await s.tick()).toBe(0);
    expect(await runCount(p, 'every5')).toBe(1);
    clock.set('2027-01-04T10:10:01Z');
    live();
    expect(await s.tick()).toBe(0);
    expect(firedAts(await endedRuns(p, 'every5', 2))).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:10:00.000Z']);

    await s.stop();
    expect(manual.stops).toBe(1);
    expect(manual.onTick).toBeNull();
    // A tick of the old ticker arriving after stop fires nothing (stop waits for queued ticks).
    clock.set('2027-01-04T10:20:00Z');
    live();
    await s.stop();
    expect(await runCount(p, 'every5')).toBe(2);
  });

  it('a tick stuck past 5 s of the clock is logged once as delayed, and the live ticks wait for it', async () => {
    const p = embedded();
    await deploy(p, 'every5', { schedule: '*/5 * * * *' });
    const clock = new Clock('2027-01-04T10:02:30Z');
    const manual = new ManualTicker();
    const { lines, logger } = recorder();
    const s = scheduler(p, clock, { ticker: manual.ticker, logger });
    await s.start();
    // The store hangs on the next tick until released (a real embedded store, held back).
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const due = p.scenarios.cron.due.bind(p.scenarios.cron);
    p.scenarios.cron.due = async (...args) => {
      await held;
      return due(...args);
    };
    clock.set('2027-01-04T10:05:00Z');
    const stuck = s.tick();
    await new Promise((r) => setImmediate(r)); // the tick has begun and waits on the store
    clock.advance(4_000);
    manual.onTick!();
    expect(lines.filter((l) => /taking long/.test(l.msg))).toHaveLength(0);
    clock.advance(2_000);
    manual.onTick!();
    manual.onTick!();
    expect(lines.filter((l) => /taking long/.test(l.msg))).toEqual([
      { level: 'warn', obj: { sinceMs: 6_000 }, msg: expect.stringMatching(/firings are delayed, not lost/) },
    ]);
    release();
    expect(await stuck).toBe(1);
    expect(await s.tick()).toBe(0); // the skipped live ticks queued nothing
    expect(firedAts(await endedRuns(p, 'every5', 1))).toEqual(['2027-01-04T10:05:00.000Z']);
  });

  it('Sunday as 7: 0 0 * * 0,7 fires each Sunday once; SAT-SUN and 5-7 their days', async () => {
    const p = embedded();
    await deploy(p, 'sun', { schedule: '0 0 * * 0,7' });
    await deploy(p, 'weekend', { schedule: '0 0 * * SAT-SUN' });
    await deploy(p, 'frisun', { schedule: '0 0 * * 5-7' });
    // Thursday 2026-12-31 noon to Tuesday 2027-01-12, an hour a tick.
    const clock = new Clock('2026-12-31T12:00:00Z');
    const s = scheduler(p, clock);
    await s.start();
    expect(await tickUntil(clock, '2027-01-12T00:00:00Z', 3_600_000, s)).toBe(2 + 4 + 6);
    const day = (iso: string) => iso.slice(0, 10);
    expect(firedAts(await endedRuns(p, 'sun', 2)).map((t) => day(t as string))).toEqual(['2027-01-03', '2027-01-10']);
    expect(firedAts(await endedRuns(p, 'weekend', 4)).map((t) => day(t as string))).toEqual(['2027-01-02', '2027-01-03', '2027-01-09', '2027-01-10']);
    expect(firedAts(await endedRuns(p, 'frisun', 6)).map((t) => day(t as string))).toEqual([
      '2027-01-01',
      '2027-01-02',
      '2027-01-03',
      '2027-01-08',
      '2027-01-09',
      '2027-01-10',
    ]);
  });

  it('the default ticker (node-cron, every second) fires with the real clock', async () => {
    const p = embedded();
    await deploy(p, 'everysec', { schedule: '* * * * * *' });
    const s = createScheduler(p);
    schedulers.push(s);
    const started = Date.now();
    await s.start();
    await waitUntil('two live firings', async () => (await runCount(p, 'everysec')) >= 2, { timeoutMs: 5_000, intervalMs: 50 });
    await s.stop();
    const stoppedAt = Date.now();
    const runs = await p.runs.list(TENANT, { scenarioId: 'everysec' });
    const instants = runs.map((r) => Date.parse(r.trigger.firedAt as string)).sort();
    expect(new Set(instants).size).toBe(instants.length);
    for (const t of instants) {
      expect(t % 1000).toBe(0);
      expect(t).toBeGreaterThan(started);
      expect(t).toBeLessThanOrEqual(stoppedAt);
    }
  });
});

describe('scheduler (production, Redis)', () => {
  it('two schedulers on two instances sharing a prefix fire each instant exactly once', async () => {
    const a = await production();
    const b = await production(a.redisKeys.prefix);
    await deploy(a, 'every5', { schedule: '*/5 * * * *' });
    worker(a);
    const clock = new Clock('2027-01-04T10:02:30Z');
    const sa = scheduler(a, clock);
    const sb = scheduler(b, clock);
    await Promise.all([sa.start(), sb.start()]);
    const counts = { a: 0, b: 0 };
    const until = Date.parse('2027-01-04T10:31:00Z');
    while (clock.t < until) {
      clock.advance(10_000);
      const [na, nb] = await Promise.all([sa.tick(), sb.tick()]);
      counts.a += na;
      counts.b += nb;
    }
    expect(counts.a + counts.b).toBe(6);
    const runs = await endedRuns(a, 'every5', 6);
    expect(firedAts(runs)).toEqual(['05', '10', '15', '20', '25', '30'].map((m) => `2027-01-04T10:${m}:00.000Z`));
    for (const run of runs) expectCronRun(run, run.trigger.firedAt as string);
  });

  it('a scheduler stopped before an instant and a new one started after it: fires once with catchUp, not without', async () => {
    const p = await production();
    await deploy(p, 'caught', { schedule: '*/5 * * * *' });
    await deploy(p, 'missed', { schedule: '*/5 * * * *' }, 'other');
    worker(p);
    const clock = new Clock('2027-01-04T10:02:30Z');
    const first = scheduler(p, clock);
    await first.start();
    expect(await tickUntil(clock, '2027-01-04T10:04:50Z', 20_000, first)).toBe(0);
    await first.stop(); // "killed" before 10:05

    clock.set('2027-01-04T10:06:10Z');
    // The new one catches up 2 minutes: 10:05 is in the window (catchUp applies to every scenario).
    const withCatchUp = scheduler(p, clock, { catchUpMs: 120_000 });
    await withCatchUp.start();
    expect(firedAts(await endedRuns(p, 'caught', 1))).toEqual(['2027-01-04T10:05:00.000Z']);
    expect(firedAts(await endedRuns(p, 'missed', 1, 'other'))).toEqual(['2027-01-04T10:05:00.000Z']);
    await withCatchUp.stop();

    // Another restart with the same window: already fired, not again.
    const again = scheduler(p, clock, { catchUpMs: 120_000 });
    await again.start();
    expect(await again.tick()).toBe(0);
    await again.stop();

    // Killed before 10:10, restarted after it without catch-up: 10:10 never fires.
    clock.set('2027-01-04T10:11:00Z');
    const noCatchUp = scheduler(p, clock);
    await noCatchUp.start();
    expect(await tickUntil(clock, '2027-01-04T10:14:00Z', 30_000, noCatchUp)).toBe(0);
    clock.set('2027-01-04T10:15:00Z');
    expect(await noCatchUp.tick()).toBe(2);
    expect(firedAts(await endedRuns(p, 'caught', 2))).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:15:00.000Z']);
  });

  it('two schedulers both restarted across an instant, starting and ticking concurrently: once', async () => {
    const a = await production();
    const b = await production(a.redisKeys.prefix);
    await deploy(a, 'every5', { schedule: '*/5 * * * *', catchUp: 150_000 });
    worker(a);
    const clock = new Clock('2027-01-04T10:03:00Z');
    const [a1, b1] = [scheduler(a, clock), scheduler(b, clock)];
    await Promise.all([a1.start(), b1.start()]);
    expect(await tickUntil(clock, '2027-01-04T10:04:59Z', 30_000, a1, b1)).toBe(0);
    await Promise.all([a1.stop(), b1.stop()]);

    clock.set('2027-01-04T10:07:00Z');
    const [a2, b2] = [scheduler(a, clock), scheduler(b, clock)];
    await Promise.all([a2.start(), b2.start()]); // both catch up (10:04:30, 10:07]: 10:05
    expect(await tickUntil(clock, '2027-01-04T10:10:00Z', 30_000, a2, b2)).toBe(1); // 10:10
    const runs = await endedRuns(a, 'every5', 2);
    expect(firedAts(runs)).toEqual(['2027-01-04T10:05:00.000Z', '2027-01-04T10:10:00.000Z']);
  });

  it('a scheduler started while another runs takes up the shared cursor: an instant between their ticks is not skipped', async () => {
    const a = await production();
    const b = await production(a.redisKeys.prefix);
    await deploy(a, 'every5', { schedule: '*/5 * * * *' });
    worker(a);
    const clock = new Clock('2027-01-04T10:04:00Z');
    const live = scheduler(a, clock);
    await live.start();
    clock.set('2027-01-04T10:04:59.500Z');
    expect(await live.tick()).toBe(0);
    // B starts (no catch-up) just after 10:05, before A's next tick: A is live (its cursor is
    // recent), so B fires 10:05 from A's cursor instead of starting at its own start.
    clock.set('2027-01-04T10:05:00.400Z');
    const late = scheduler(b, clock);
    await late.start();
    clock.set('2027-01-04T10:05:00.500Z');
    expect(await live.tick()).toBe(0);
    expect(firedAts(await endedRuns(a, 'every5', 1))).toEqual(['2027-01-04T10:05:00.000Z']);
  });

  it('quota exhausted: firings are recorded as rejected runs with QUOTA_EXHAUSTED', async () => {
    const p = await production();
    worker(p);
    const { lines, clock, s } = await exhaustedEvery5(p);
    expect(await tickUntil(clock, '2027-01-04T10:10:30Z', 60_000, s)).toBe(2);
    const runs = await endedRuns(p, 'every5', 2);
    for (const run of runs) expect(run).toMatchObject({ status: 'rejected', actions: 0, error: { code: 'QUOTA_EXHAUSTED' } });
    expect(lines.filter((l) => /QUOTA_EXHAUSTED/.test(l.msg))).toHaveLength(2);
  });
});

describe('flowmeter scheduler', () => {
  it('needs Redis: one line naming what is wrong', async () => {
    const r = await runCli(['scheduler'], { FLOWMETER_REDIS_URL: '' });
    // A CliError: exit 2, one line, and the command never ran (nothing on stdout).
    expect(r).toEqual({ code: EXIT.invalid, stdout: '', stderr: 'flowmeter: scheduler needs Redis: pass --redis URL or set FLOWMETER_REDIS_URL\n' });
  });

  it('rejects a bad --catch-up-ms before connecting', async () => {
    const r = await runCli(['--redis', 'redis://127.0.0.1:1', 'scheduler', '--catch-up-ms', 'soon']);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toMatch(/^flowmeter: --catch-up-ms must be a whole number, got "soon"\n$/);
  });
});
