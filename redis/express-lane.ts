/**
 * A worker's express lane (SPEC §10 "Fairness"): the worker's express place executes runs of the
 * express queue (queue.ts EXPRESS_QUEUE), which only a quiet tenant's run reaches while other
 * tenants' backlogs fill every shared place (lib-fair.lua's pick).
 *
 * A backlog keeps the worker's event loop busy: applying loop batches, writing checkpoints,
 * collecting garbage. A run sharing that loop waits behind it at every step (its claim, its
 * Function's answer, its end), so a quiet tenant's 5 ms request took 4x as long behind another
 * tenant's 200-item loops. The lane of `flowmeter worker` and `serve --worker` is therefore a
 * thread of its own (`express-thread.ts`): its own event loop, Redis connections and sandbox
 * host, sharing nothing mutable with the main one. Runs it ends are reported to the main thread
 * (its log and metrics). A lane thread that dies is started again; one that cannot start, is
 * not taking jobs 15 s after its start, or dies 3 times leaves the lane to the main thread
 * (with a line on stderr), so express runs are never stranded.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RunRecord } from '../core/types.js';
import type { Alert } from '../metering/ledger.js';
import type { ProductionOptions } from './production-options.js';
import type { Lane } from './run-execution.js';

/** A running express lane: in this thread or in a thread of its own. */
export interface ExpressLane {
  /** Runs in progress stop at their next checkpoint; none is claimed any more. */
  stopRuns(): void;
  close(): Promise<void>;
}

/** Job timings of the lane's BullMQ workers (as the main worker's). */
export interface LaneTimings {
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

/** What the lane thread is started with: the serialisable part of the production options. */
export interface ExpressThreadData {
  options: Pick<ProductionOptions, 'redisUrl' | 'prefix' | 'retentionDays' | 'taskBytes' | 'crashLimit' | 'sandbox' | 'env'>;
  timings: LaneTimings;
}

/** Messages of the lane thread to the main thread. */
export type LaneMessage =
  | { type: 'ready' }
  | { type: 'end'; run: RunRecord; ms: number }
  | { type: 'alert'; alert: Alert }
  | { type: 'closed' }
  | { type: 'failed'; message: string };

export interface ExpressThreadHooks {
  onRunEnd?: (run: RunRecord, ms: number, lane: Lane) => void;
  onAlert?: (a: Alert) => void;
  /** The thread could not start: the caller runs the lane itself. */
  fallback(err: Error): ExpressLane;
  onError?: (err: Error) => void;
}

/** Time a closing lane thread gets to end, ms (its runs stop at their next checkpoint first). */
const CLOSE_MS = 15_000;
/** The lane thread's young generation, MB. */
const YOUNG_MB = 6;
/** Deaths of a started lane thread after which the main thread takes the lane. */
const MOST_DEATHS = 3;

/** How a lane thread is supervised; the defaults are the worker's (tests shorten the waits). */
export interface LaneThreadTuning {
  /** The thread's module (default: express-thread.js, built). */
  entry?: string;
  /** Time a thread gets to take jobs after its start before the main thread takes the lane, ms (default 15,000). */
  readyMs?: number;
  /** Wait before a thread that died is started again, ms (default 1,000). */
  restartMs?: number;
  /** How often a worker without its thread looks for express jobs waiting, ms (default 2,000). */
  lookMs?: number;
}

/** The lane thread's entry: next to this file when built, else (sources run by vitest) in dist/. */
function threadEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? resolve(dirname(here), '../dist/redis/express-thread.js') : resolve(dirname(here), 'express-thread.js');
}

/** Starts the express lane in a thread of its own (see the file's comment). */
export function startExpressThread(data: ExpressThreadData, hooks: ExpressThreadHooks, tuning: LaneThreadTuning = {}): ExpressLane {
  const { readyMs = 15_000, restartMs = 1000 } = tuning;
  let closing = false;
  let stopping = false;
  let started = false;
  let thread: Worker | null = null;
  let fallback: ExpressLane | null = null;
  let restart: NodeJS.Timeout | null = null;
  let deaths = 0;
  let closed: () => void = () => undefined;

  const spawn = (): void => {
    const entry = tuning.entry ?? threadEntry();
    if (!existsSync(entry)) {
      giveUp(new Error(`the express lane's thread is not built (${entry}): run \`npm run build\``));
      return;
    }
    // A small young generation: the lane holds one run at a time (V8's default would keep 32 MB of semi-spaces).
    const t = new Worker(entry, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } });
    thread = t;
    // A thread that hangs on its way up (Redis unreachable from it, say) must not strand express runs.
    const late = setTimeout(() => {
      thread = null;
      giveUp(new Error(`the express lane thread did not start within ${readyMs / 1000} s`));
      void t.terminate();
    }, readyMs);
    late.unref();
    t.on('message', (m: LaneMessage) => {
      if (m.type === 'end') hooks.onRunEnd?.(m.run, m.ms, 'express');
      else if (m.type === 'alert') hooks.onAlert?.(m.alert);
      else if (m.type === 'ready') {
        clearTimeout(late);
        started = true;
        if (stopping) t.postMessage('stopRuns');
      } else if (m.type === 'closed') closed();
      else if (m.type === 'failed') hooks.onError?.(new Error(`express lane: ${m.message}`));
    });
    t.on('error', (err) => hooks.onError?.(err));
    t.on('exit', () => {
      clearTimeout(late);
      if (thread !== t) return; // replaced by the main thread's lane (late), or closing
      thread = null;
      if (closing) closed();
      // Never started (a load error) or dying again and again: the main thread takes the lane.
      // Else start it again; the jobs it held are redelivered when their locks lapse.
      else if (!started) giveUp(new Error('the express lane thread exited before it was ready'));
      else if (++deaths >= MOST_DEATHS) giveUp(new Error(`the express lane thread died ${deaths} times`));
      else {
        restart = setTimeout(spawn, restartMs);
        restart.unref();
      }
    });
  };

  const giveUp = (err: Error): void => {
    if (fallback || closing) return;
    hooks.onError?.(err);
    fallback = hooks.fallback(err);
    if (stopping) fallback.stopRuns();
  };

  spawn();
  return {
    stopRuns() {
      stopping = true;
      thread?.postMessage('stopRuns');
      fallback?.stopRuns();
    },
    async close() {
      closing = true;
      if (restart) clearTimeout(restart);
      await fallback?.close();
      const t = thread;
      if (!t) return;
      const done = new Promise<void>((r) => (closed = r));
      t.postMessage('close');
      const timer = setTimeout(() => void t.terminate(), CLOSE_MS);
      await done;
      clearTimeout(timer);
      await t.terminate();
    },
  };
}

/**
 * The lane thread of a worker, started when it is needed: when `want()` is called (the worker's
 * places are all taken, so the dispatcher may pick express runs) or when express jobs wait
 * (looked at every `tuning.lookMs`; e.g. another worker's places are full). A worker that never has a
 * backlog does not pay for the thread's heap (about 45 MB: the platform's modules and
 * connections once more). Once started, it stays until the worker closes.
 */
export function lazyExpressThread(
  data: ExpressThreadData,
  hooks: ExpressThreadHooks,
  waiting: () => Promise<number>,
  tuning: LaneThreadTuning = {},
): ExpressLane & { want(): void } {
  let lane: ExpressLane | null = null;
  let stopping = false;
  let closed = false;
  const want = (): void => {
    if (lane || stopping || closed) return;
    lane = startExpressThread(data, hooks, tuning);
    clearInterval(look);
  };
  const look = setInterval(() => {
    waiting()
      .then((n) => n > 0 && want())
      .catch(() => undefined); // Redis away: looked at again
  }, tuning.lookMs ?? 2000);
  look.unref();
  return {
    want,
    stopRuns() {
      stopping = true;
      lane?.stopRuns();
    },
    async close() {
      closed = true;
      clearInterval(look);
      await lane?.close();
    },
  };
}
