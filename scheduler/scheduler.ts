/**
 * The scheduler (SPEC.md §6, `flowmeter scheduler` in §7): fires cron-triggered scenarios.
 *
 * Each tick looks at every tenant's ENABLED cron scenarios and fires the instants their
 * schedule names in (cursor, now], oldest first, where `cursor` is kept per scenario:
 *
 * - a scenario present when the scheduler starts begins at `start − catchUp` (the
 *   scenario's `trigger.catchUp` ms, or `catchUpMs`; default 0: nothing missed is fired);
 * - a scenario that appears later (deployed or enabled while running) begins at the
 *   previous tick, so it never fires its past;
 * - a disabled or removed scenario is forgotten; enabling it again starts afresh.
 *
 * Every instant goes through `platform.fire`, which is idempotent: the run id is derived from
 * (tenant, scenario, instant), the run is persisted only if absent and enqueued under that id.
 * So each instant fires once however many schedulers run, and one that dies half-way through
 * a firing leaves nothing lost: the next scheduler to reach the instant (or catch up on it)
 * completes it. The cursor only moves past an instant once `fire` returned, so a store
 * outage delays firings instead of losing them.
 *
 * The quota is enforced by the engine: while a tenant's quota is exhausted, each firing is
 * recorded as a `rejected` run (QUOTA_EXHAUSTED). The scheduler only logs it.
 *
 * The live ticker is node-cron (every second); both it and the clock can be injected
 * (`ticker`, `now`), and `tick()` is also callable directly: tests step a fake clock and
 * drive the ticks by hand instead of waiting for real time.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { instantsBetween } from '../core/cron.js';
import type { Platform } from '../engine/platform.js';
import type { ScenarioInfo } from '../engine/scenario-store.js';
import type { Scenario } from '../scenario/schema.js';

export interface SchedulerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SchedulerOptions {
  /** The clock (tests inject one). Default: the system clock. */
  now?: () => Date;
  /** Live tick interval in ms (default 1000: every second, through node-cron). */
  tickMs?: number;
  logger?: SchedulerLogger;
  /** Overrides every scenario's `trigger.catchUp` (ms) for the start of this scheduler. */
  catchUpMs?: number;
  /**
   * The live ticker started by `start()`: true (default) for node-cron every `tickMs`, false
   * for none (the caller drives `tick()`), or a {@link Ticker} (tests drive one by hand).
   */
  ticker?: boolean | Ticker;
  /** Most instants fired per scenario per tick (default 1000); the rest follow next tick. */
  maxPerTick?: number;
}

export interface Scheduler {
  /** Fires what was missed within the catch-up window, then ticks until `stop()`. */
  start(): Promise<void>;
  /** Fires everything due now; returns how many firings this scheduler triggered. */
  tick(): Promise<number>;
  /** Stops the ticker and waits for a tick in progress. */
  stop(): Promise<void>;
}

/**
 * Calls `onTick` every `tickMs` until the returned handle is stopped. A live tick is skipped
 * while the previous one runs; each covers everything since the last.
 */
export type Ticker = (onTick: () => void, tickMs: number) => { stop(): void | Promise<void> };

type CronTrigger = Extract<Scenario['trigger'], { type: 'cron' }>;

interface Cursor {
  /** Everything at or before this instant (ms) has been dealt with. */
  last: number;
}

const silent: SchedulerLogger = { info: () => undefined, warn: () => undefined };

const key = (tenant: string, id: string) => `${tenant}\u0000${id}`;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createScheduler(platform: Platform, opts: SchedulerOptions = {}): Scheduler {
  const now = opts.now ?? (() => new Date());
  const tickMs = opts.tickMs ?? 1000;
  const log = opts.logger ?? silent;
  const maxPerTick = opts.maxPerTick ?? 1000;
  if (!Number.isFinite(tickMs) || tickMs <= 0) throw new Error(`tickMs must be a positive number, got ${tickMs}`);
  if (opts.catchUpMs !== undefined && !(Number.isFinite(opts.catchUpMs) && opts.catchUpMs >= 0)) {
    throw new Error(`catchUpMs must be a number >= 0, got ${opts.catchUpMs}`);
  }

  /** When this scheduler started (ms), set by start() or the first tick. */
  let startedAt: number | null = null;
  /** Tenants of the first successful tenants() call: their scenarios may catch up. */
  let initialTenants: Set<string> | null = null;
  /** Tenants whose scenario list was read at least once. */
  const listedTenants = new Set<string>();
  const cursors = new Map<string, Cursor>();
  /** The last error logged per context, so an ongoing failure is logged once. */
  const failing = new Map<string, string>();
  /** Scenarios whose schedule could not be computed, with the trigger that failed. */
  const badSchedules = new Map<string, string>();
  let previousTick: number | null = null;

  let chain: Promise<unknown> = Promise.resolve();
  let busy = false;
  let busySince = 0;
  let stallLogged = false;
  let running: ReturnType<Ticker> | null = null;
  let stopped = false;

  function fail(context: string, fields: object, err: unknown, what: string): void {
    const msg = message(err);
    if (failing.get(context) === msg) return;
    failing.set(context, msg);
    log.warn({ ...fields, err: msg }, `scheduler: ${what} failed; retrying next tick`);
  }

  function ok(context: string, fields: object, what: string): void {
    if (failing.delete(context)) log.info(fields, `scheduler: ${what} works again`);
  }

  function catchUpOf(trigger: CronTrigger): number {
    return opts.catchUpMs ?? trigger.catchUp ?? 0;
  }

  /**
   * Whether the tenant's quota is exhausted (halt mode), for the log only: the engine itself
   * records the run as rejected. Best effort; a failure here never stops a firing.
   */
  async function quotaExhausted(tenant: string): Promise<boolean> {
    try {
      const at = new Date(); // the engine bills by its own (system) clock
      const [quota, usage] = await Promise.all([platform.ledger.getQuota(tenant), platform.ledger.usage(tenant, at)]);
      return quota.overage !== 'allow' && usage.remaining <= 0;
    } catch {
      return false;
    }
  }

  /** Whether a firing of this scenario will be rejected for the quota (logging only). */
  async function willBeRejected(tenant: string, scenarioId: string, tenantExhausted: () => Promise<boolean>): Promise<boolean> {
    if (!(await tenantExhausted())) return false;
    try {
      return (await platform.scenarios.get(tenant, scenarioId))?.billable !== false;
    } catch {
      return false;
    }
  }

  /** Fires the due instants of one scenario; returns the number triggered. */
  async function fireScenario(
    tenant: string,
    info: ScenarioInfo & { trigger: CronTrigger },
    cursor: Cursor,
    to: number,
    quota: () => Promise<boolean>,
  ): Promise<number> {
    const { schedule, timezone = 'UTC' } = info.trigger;
    const fields = { tenant, scenarioId: info.id };
    const scheduleId = `${schedule}\u0000${timezone}`;
    let instants: Date[];
    try {
      instants = instantsBetween(schedule, timezone, new Date(cursor.last), new Date(to), maxPerTick);
      badSchedules.delete(key(tenant, info.id));
    } catch (err) {
      // Not a store failure: it will not get better until the scenario is redeployed.
      if (badSchedules.get(key(tenant, info.id)) !== scheduleId) {
        badSchedules.set(key(tenant, info.id), scheduleId);
        log.warn({ ...fields, schedule, timezone, err: message(err) }, 'scheduler: cannot compute the schedule; the scenario does not fire');
      }
      cursor.last = to;
      return 0;
    }
    let fired = 0;
    for (const instant of instants) {
      const t = instant.getTime();
      const iso = instant.toISOString();
      const context = `fire\u0000${key(tenant, info.id)}`;
      try {
        const exhausted = await willBeRejected(tenant, info.id, quota);
        const { run, created } = await platform.fire(tenant, info.id, info.trigger.input ?? null, { type: 'cron', firedAt: iso, instant: iso }, instant);
        if (created) {
          fired++;
          if (exhausted) {
            log.warn(
              { ...fields, instant: iso, runId: run.runId },
              "scheduler: fired, but the tenant's quota is exhausted: the run is recorded as rejected (QUOTA_EXHAUSTED)",
            );
          } else {
            log.info({ ...fields, instant: iso, runId: run.runId }, 'scheduler: fired');
          }
        }
        ok(context, fields, 'firing');
      } catch (err) {
        fail(context, { ...fields, instant: iso }, err, 'firing');
        // Keep the cursor before this instant: it is tried again next tick.
        return fired;
      }
      cursor.last = t;
    }
    // Fewer than the cap: nothing else is due up to `to`.
    if (instants.length < maxPerTick) cursor.last = to;
    return fired;
  }

  async function tickTenant(tenant: string, to: number, fresh: number): Promise<number> {
    let list: ScenarioInfo[];
    try {
      list = await platform.scenarios.list(tenant);
      ok(`list\u0000${tenant}`, { tenant }, 'listing scenarios');
    } catch (err) {
      fail(`list\u0000${tenant}`, { tenant }, err, 'listing scenarios');
      return 0;
    }
    const initial = initialTenants?.has(tenant) === true && !listedTenants.has(tenant);
    listedTenants.add(tenant);

    const active = new Set<string>();
    let fired = 0;
    let exhausted: Promise<boolean> | null = null;
    const quota = () => (exhausted ??= quotaExhausted(tenant));
    for (const info of list) {
      if (!info.enabled || info.trigger.type !== 'cron') continue;
      const trigger = info.trigger as CronTrigger;
      const k = key(tenant, info.id);
      active.add(k);
      let cursor = cursors.get(k);
      if (!cursor) {
        // Present at start: catch up. Appeared since: start from the previous tick.
        const from = initial ? (startedAt as number) - catchUpOf(trigger) : fresh;
        cursor = { last: Math.min(from, to) };
        cursors.set(k, cursor);
      }
      try {
        fired += await fireScenario(tenant, { ...info, trigger }, cursor, to, quota);
      } catch (err) {
        // fireScenario handles its own failures; this is a last resort so others still fire.
        fail(`scenario\u0000${k}`, { tenant, scenarioId: info.id }, err, 'scheduling');
      }
    }
    // Disabled or removed scenarios are forgotten: enabling again never fires their past.
    for (const k of cursors.keys()) {
      if (k.startsWith(`${tenant}\u0000`) && !active.has(k)) cursors.delete(k);
    }
    return fired;
  }

  async function runTick(): Promise<number> {
    const to = now().getTime();
    if (!Number.isFinite(to)) throw new Error('the scheduler clock returned an invalid Date');
    startedAt ??= to;
    // Scenarios that appear now start from the previous tick (but never before one tick ago,
    // so one enabled during a long outage does not fire what came before it).
    const fresh = Math.max(previousTick ?? to, to - tickMs);
    let tenants: string[];
    try {
      tenants = await platform.scenarios.tenants();
      ok('tenants', {}, 'listing tenants');
    } catch (err) {
      fail('tenants', {}, err, 'listing tenants');
      return 0;
    }
    initialTenants ??= new Set(tenants);
    // A tenant without scenarios any more: forget its cursors.
    const present = new Set(tenants);
    for (const k of cursors.keys()) if (!present.has(k.slice(0, k.indexOf('\u0000')))) cursors.delete(k);
    const counts = await Promise.all(tenants.map((t) => tickTenant(t, to, fresh)));
    previousTick = to;
    return counts.reduce((a, b) => a + b, 0);
  }

  function tick(): Promise<number> {
    const p = chain.then(async () => {
      busy = true;
      busySince = now().getTime();
      try {
        return await runTick();
      } finally {
        busy = false;
        stallLogged = false;
      }
    });
    chain = p.catch(() => undefined);
    return p;
  }

  /** One live tick: skipped while the previous one is still running (e.g. Redis is down). */
  function liveTick(): void {
    if (stopped) return;
    if (busy) {
      if (!stallLogged && now().getTime() - busySince > Math.max(5000, 5 * tickMs)) {
        stallLogged = true;
        log.warn({ sinceMs: now().getTime() - busySince }, 'scheduler: a tick is taking long (is the store reachable?); firings are delayed, not lost');
      }
      return;
    }
    tick().catch((err) => fail('tick', {}, err, 'tick'));
  }

  return {
    async start() {
      if (startedAt !== null && running) return;
      stopped = false;
      startedAt ??= now().getTime();
      // The first tick fires what was missed within the catch-up window, oldest first.
      try {
        await tick();
      } catch (err) {
        fail('tick', {}, err, 'tick');
      }
      if (opts.ticker !== false && !stopped) {
        const ticker = typeof opts.ticker === 'function' ? opts.ticker : nodeCronTicker(log);
        running = ticker(liveTick, tickMs);
      }
    },
    tick,
    async stop() {
      stopped = true;
      const r = running;
      running = null;
      if (r) await r.stop();
      await chain;
    },
  };
}

/** The default ticker: node-cron when `tickMs` is a whole number of seconds dividing a minute, else a timer. */
function nodeCronTicker(log: SchedulerLogger): Ticker {
  return (onTick, tickMs) => {
    const seconds = tickMs / 1000;
    if (Number.isInteger(seconds) && seconds >= 1 && 60 % seconds === 0) {
      const expression = seconds === 1 ? '* * * * * *' : `*/${seconds} * * * * *`;
      const task: ScheduledTask = cron.createTask(expression, onTick, {
        name: 'flowmeter-scheduler',
        // Missed seconds do not matter: each tick covers everything since the last one.
        suppressMissedWarning: true,
        logger: {
          info: () => undefined,
          debug: () => undefined,
          warn: (m) => log.warn({}, `scheduler: node-cron: ${m}`),
          error: (m) => log.warn({}, `scheduler: node-cron: ${message(m)}`),
        },
      });
      void task.start();
      return { stop: async () => void (await task.destroy()) };
    }
    const timer = setInterval(onTick, tickMs);
    return { stop: () => clearInterval(timer) };
  };
}
