/**
 * The scheduler (SPEC.md §6, `flowmeter scheduler` in §7): fires cron-triggered scenarios.
 *
 * It never lists tenants: each tick reads, per shard of the cron index (engine/cron-index.ts,
 * kept by the scenario stores), only the entries that are due, and fires each entry's
 * instants in (from, now], oldest first, where `from` is the entry's cursor (shared by every
 * scheduler, in the store):
 *
 * - an entry no scheduler has handled yet (just enabled) starts at `start − catchUp` when this
 *   scheduler finds it on its first read of the index (the scenario's `trigger.catchUp` ms,
 *   or `catchUpMs`; default 0: nothing missed is fired), else at the previous tick, so a
 *   scenario enabled while running never fires its past;
 * - a scheduler that starts after every scheduler was down (an instant has been due for more
 *   than a few ticks: nobody fired it) fires only what is within `start − catchUp`; one due
 *   for less is fired however it started (a live scheduler was about to fire it);
 * - a disabled or removed scenario leaves the index; enabling or redeploying it starts afresh.
 *
 * Every instant goes through `platform.fire`, which is idempotent: the run id is derived from
 * (tenant, scenario, instant), the run is persisted only if absent and enqueued under that id.
 * So each instant fires once however many schedulers run, and one that dies half-way through
 * a firing leaves nothing lost: the next scheduler to reach the instant (or catch up on it)
 * completes it. The cursor only moves past an instant once `fire` returned (a compare-and-set
 * on the entry as read), so a store outage delays firings instead of losing them.
 *
 * The quota is enforced by the engine: while a tenant's quota is exhausted, each firing is
 * recorded as a `rejected` run (QUOTA_EXHAUSTED). The scheduler only logs it.
 *
 * The live ticker is node-cron (every second); both it and the clock can be injected
 * (`ticker`, `now`), and `tick()` is also callable directly: tests step a fake clock and
 * drive the ticks by hand instead of waiting for real time.
 */
import type { CronEntry } from '../engine/cron-index.js';
import type { Platform } from '../engine/platform.js';
import { failureLog, type SchedulerLogger } from './failure-log.js';
import { entryFiring, entryKey } from './fire-entry.js';
import { nodeCronTicker } from './ticker.js';

export type { SchedulerLogger } from './failure-log.js';

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

/** Due entries read at once per shard. */
const PAGE = 500;

const silent: SchedulerLogger = { info: () => undefined, warn: () => undefined };

export function createScheduler(platform: Platform, opts: SchedulerOptions = {}): Scheduler {
  const now = opts.now ?? (() => new Date());
  const tickMs = opts.tickMs ?? 1000;
  const log = opts.logger ?? silent;
  const maxPerTick = opts.maxPerTick ?? 1000;
  if (!Number.isFinite(tickMs) || tickMs <= 0) throw new Error(`tickMs must be a positive number, got ${tickMs}`);
  if (opts.catchUpMs !== undefined && !(Number.isFinite(opts.catchUpMs) && opts.catchUpMs >= 0)) {
    throw new Error(`catchUpMs must be a number >= 0, got ${opts.catchUpMs}`);
  }
  const index = platform.scenarios.cron;
  /**
   * An instant due for less than this (ms) is one a live scheduler is about to fire: a
   * scheduler that starts meanwhile fires it too (idempotently), whatever its catch-up window.
   */
  const liveMs = Math.max(5000, 5 * tickMs);

  /** When this scheduler started (ms), set by start() or the first tick. */
  let startedAt: number | null = null;
  /** Shards of the index read at least once: fresh entries seen before are "present at start". */
  const readShards = new Set<number>();
  /** Fresh entries of a first read not handled yet (a store failure): still "present at start". */
  const startEntries = new Set<string>();
  let previousTick: number | null = null;
  let prepared = false;

  let chain: Promise<unknown> = Promise.resolve();
  let busy = false;
  let busySince = 0;
  let stallLogged = false;
  let running: ReturnType<Ticker> | null = null;
  let stopped = false;

  const failures = failureLog(log);
  const { fail, ok } = failures;
  const fireEntry = entryFiring(platform, {
    log,
    failures,
    catchUpMs: opts.catchUpMs,
    maxPerTick,
    liveMs,
    startedAt: () => startedAt as number,
  });

  /** Reads one shard's due entries page by page and fires them; returns the number triggered. */
  async function tickShard(shard: number, to: number, fresh: number): Promise<number> {
    const initial = !readShards.has(shard);
    let fired = 0;
    let offset = 0;
    for (;;) {
      let page: CronEntry[];
      try {
        page = await index.due(shard, to, offset, PAGE);
        ok(`due\u0000${shard}`, { shard }, 'reading the cron index');
      } catch (err) {
        fail(`due\u0000${shard}`, { shard }, err, 'reading the cron index');
        return fired;
      }
      readShards.add(shard);
      let left = 0;
      const counts = await Promise.all(
        page.map(async (e) => {
          const k = entryKey(e.tenant, e.scenarioId);
          if (initial && e.cursor === null) startEntries.add(k);
          try {
            const n = await fireEntry(e, to, fresh, startEntries.has(k));
            startEntries.delete(k);
            return n;
          } catch (err) {
            // fireEntry handles firing failures; this is a store failure for this entry only.
            fail(`scenario\u0000${entryKey(e.tenant, e.scenarioId)}`, { tenant: e.tenant, scenarioId: e.scenarioId }, err, 'scheduling');
            left++;
            return 0;
          }
        }),
      );
      fired += counts.reduce((a, b) => a + b, 0);
      if (page.length < PAGE) return fired;
      // Entries moved on left the due range; those that stayed are skipped on the next page.
      offset += left;
    }
  }

  async function runTick(): Promise<number> {
    const to = now().getTime();
    if (!Number.isFinite(to)) throw new Error('the scheduler clock returned an invalid Date');
    startedAt ??= to;
    if (!prepared && index.prepare) {
      try {
        await index.prepare();
        prepared = true;
        ok('prepare', {}, 'building the cron index');
      } catch (err) {
        fail('prepare', {}, err, 'building the cron index');
        return 0;
      }
    }
    // Scenarios that appear now start from the previous tick (but never before one tick ago,
    // so one enabled during a long outage does not fire what came before it).
    const fresh = Math.max(previousTick ?? to, to - tickMs);
    const shards = Array.from({ length: index.shards }, (_, i) => i);
    const counts = await Promise.all(shards.map((shard) => tickShard(shard, to, fresh)));
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
