/**
 * A worker's execution of queued runs: claiming each run, executing it, giving up runs that
 * keep killing their workers, and spreading a job's runs over the worker's places.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { errorCode, FlowError } from '../core/errors.js';
import type { RunRecord } from '../core/types.js';
import type { AutoResumer } from '../engine/auto-resume.js';
import { FIRST_LEASE } from '../engine/budget.js';
import { type ExecutorDeps, executeRun } from '../engine/executor.js';
import type { Dispatcher } from './dispatch.js';
import type { RedisLedger } from './ledger.js';
import { type RunJob, type RunRef, runsOf } from './queue.js';
import type { RedisRunStore } from './run-store.js';

const ENDED = new Set(['succeeded', 'failed', 'halted', 'rejected']);
/**
 * Errors of the engine's own code (a bug, or stored state it cannot read), as opposed to the
 * infrastructure's (Redis away, ownership lost, the worker stopping), which a retry from the
 * last checkpoint gets past.
 */
const ENGINE_FAULTS = new Set(['RangeError', 'TypeError', 'ReferenceError', 'SyntaxError', 'URIError', 'EvalError']);

/** The lane a run was executed in, when not the worker's main one (express-lane.ts). */
export type Lane = 'express';

/** What {@link createRunExecution} needs from the platform. */
export interface RunExecutionOptions {
  /** The run store: claims, checkpoints, finishes and releases runs. */
  runs: RedisRunStore;
  /** The ledger: tenants' billing periods. */
  ledger: RedisLedger;
  /** The fair dispatcher of the queue shards: told when a run ends, hands off runs. */
  fair: Dispatcher;
  /** The executor's dependencies (created on first use). */
  executorDeps: () => ExecutorDeps;
  /** Auto-resume of runs halted for quota, once created. */
  autoResume: () => AutoResumer | null;
  /** Called when this process has ended a run (logging, metrics); `lane`: an express lane's run. */
  onRunEnd?: (run: RunRecord, ms: number, lane?: Lane) => void;
  /** Crashed executions after which a run fails with WORKER_CRASHED. */
  crashLimit: number;
  /** Whether stopRuns() was called: no run is claimed any more. */
  stopping: () => boolean;
  now?: () => Date;
}

export interface RunExecution {
  /** Executes a run; resolves with whether it still has to be released (see executeOnce). */
  processRun(tenant: string, runId: string, scenarioId?: string, lane?: Lane): Promise<boolean>;
  /** Executes a queue job's runs, at most `slots` of this process's runs at once; `lane`: the express lane's job. */
  processJob(job: RunJob, slots?: LimitFunction, keep?: (data: RunJob) => Promise<void>, lane?: Lane): Promise<void>;
  /** Claims a run of a job BullMQ gave up on, to fail it with WORKER_CRASHED unless it has ended. */
  failStalled(tenant: string, runId: string): Promise<void>;
}

export function createRunExecution(opts: RunExecutionOptions): RunExecution {
  const { runs, ledger, fair, crashLimit } = opts;

  /** The tenant's current billing period and the one before (a run may hold leases in both). */
  async function periodsOf(tenant: string): Promise<{ current: string; previous: string }> {
    const { period: current } = await ledger.periodOf(tenant, opts.now?.() ?? new Date());
    const { period: previous } = await ledger.periodOf(tenant, new Date(Date.parse(`${current}-01T00:00:00Z`) - 86400_000 * 2));
    return { current, previous };
  }

  /** This process's executions, by run (see processRun). */
  const executing = new Map<string, Promise<boolean>>();

  /** Executes one queued run (the worker's job): from its start, its checkpoint, or a resume. */
  async function processRun(tenant: string, runId: string, scenarioId?: string, lane?: Lane): Promise<boolean> {
    // BullMQ redelivers a job whose lock lapsed (Redis away, a blocked event loop), possibly to
    // this very process while its first execution still runs. Both would write with this
    // process's owner token, so the fence could not tell them apart: run them one after the other
    // (the second then finds the run ended, or continues from the first one's checkpoint).
    const key = `${tenant}/${runId}`;
    const exec = (executing.get(key) ?? Promise.resolve(true)).catch(() => true).then(() => executeOnce(tenant, runId, scenarioId, lane));
    executing.set(key, exec);
    try {
      return await exec;
    } finally {
      if (executing.get(key) === exec) executing.delete(key);
    }
  }

  /**
   * Whether the caller still has to release the run (dispatch.ts): it had ended before, is gone,
   * or was given up as crashed. A run this execution ended is released here; one that another
   * worker took over is released by that worker.
   */
  async function executeOnce(tenant: string, runId: string, scenarioId?: string, lane?: Lane): Promise<boolean> {
    const periods = await periodsOf(tenant);
    // Claimed and loaded at once: what a previous owner wrote until the claim fenced it is in.
    if (opts.stopping()) throw new FlowError('WORKER_STOPPING', `the worker is stopping: run ${runId} is left to another worker`);
    let stored;
    try {
      stored = await runs.claim(tenant, runId, periods, scenarioId, FIRST_LEASE, crashLimit);
    } catch (err) {
      if (errorCode(err) === 'NOT_FOUND') return true; // expired, or never created
      throw err;
    }
    if (ENDED.has(stored.run.status)) {
      runs.release(runId);
      return true;
    }
    if (stored.poisoned) return giveUpCrashed(stored.run, stored.crashes);
    const started = performance.now();
    const resumed = Boolean(stored.run.pending); // a resume (or a recovery): it may hold the auto-resume turn
    try {
      const run = await executeRun(stored.scenario, stored.run, opts.executorDeps(), stored.payload, stored);
      opts.onRunEnd?.(run, performance.now() - started, lane);
      // Released at once (its place goes to the next run) while auto-resume looks at its end.
      await Promise.all([
        fair.ended([{ tenant, runId, scenarioId }]),
        opts
          .autoResume()
          ?.ended(run, resumed)
          .catch((err) => process.stderr.write(`flowmeter: auto-resume: ${(err as Error).message}\n`)),
      ]);
      return false;
    } catch (err) {
      if (ENGINE_FAULTS.has((err as Error | null)?.name ?? '')) {
        // Not the infrastructure's doing: from the same checkpoint it fails the same way again.
        // The run stays `live`, so its next claim counts this execution as a crashed one, and
        // at the crash limit it fails WORKER_CRASHED, instead of being retried for ever.
        runs.release(runId);
        throw err;
      }
      // Alive: the next claim must not count this as a crashed execution.
      await runs.giveUp(tenant, runId).catch(() => undefined);
      // Another worker executes the run now: it releases it when it ends.
      if (errorCode(err) === 'RUN_OWNERSHIP_LOST') return false;
      throw err;
    }
  }

  /** Claims a run of a job BullMQ gave up on, to fail it with WORKER_CRASHED unless it has ended. */
  async function failStalled(tenant: string, runId: string): Promise<void> {
    const periods = await periodsOf(tenant);
    const stored = await runs.claim(tenant, runId, periods, undefined, 0, 0);
    if (stored.poisoned) {
      if (!(await giveUpCrashed(stored.run, stored.crashes))) return;
    } else runs.release(runId);
    await fair.ended([{ tenant, runId }]);
  }

  /**
   * Finishes a run that has killed its workers as failed WORKER_CRASHED, without executing it:
   * what it spent up to its last checkpoint stays billed, its lease went back with the claim.
   */
  async function giveUpCrashed(run: RunRecord, crashes: number): Promise<boolean> {
    const at = (opts.now?.() ?? new Date()).toISOString();
    Object.assign(run, {
      status: 'failed',
      pending: null,
      finishedAt: at,
      startedAt: run.startedAt ?? at,
      error: {
        code: 'WORKER_CRASHED',
        message:
          crashes > 0
            ? `the run's execution ended abnormally ${crashes} times (its worker process died, or the engine failed on it); it is not retried again`
            : "the run's job stalled more than its limit (its workers died); it is not retried again",
      },
    });
    try {
      await runs.finish(run, []);
    } catch (err) {
      if (errorCode(err) === 'RUN_OWNERSHIP_LOST') return false;
      throw err;
    }
    opts.onRunEnd?.(run, 0);
    return true;
  }

  /**
   * A job's runs, concurrently within the worker's limit. Runs beyond the worker's free places
   * go back to the queue first as a job of their own, so other workers share a large batch.
   * A run this process is done with is released (its limits count it no more) before the job
   * completes. An infrastructure error of one run fails the job once the others have ended or
   * stopped: BullMQ redelivers it, and each run continues from its checkpoint (ended ones are
   * skipped).
   */
  async function processJob(job: RunJob, slots: LimitFunction = pLimit(Infinity), keep?: (data: RunJob) => Promise<void>, lane?: Lane): Promise<void> {
    let mine = runsOf(job);
    const free = Math.max(1, slots.concurrency - slots.activeCount - slots.pendingCount);
    if (mine.length > free) {
      await fair.handOff(mine.slice(free));
      mine = mine.slice(0, free);
      // The job now carries only the runs kept here: redelivered after this worker dies, it
      // must not hand out runs that other workers execute (their claims would count crashes).
      await keep?.({ runs: mine });
    }
    const one = async (r: RunRef) => {
      if (await processRun(r.tenant, r.runId, r.scenarioId, lane)) await fair.ended([r]);
    };
    const results = await Promise.allSettled(mine.map((r) => slots(() => one(r))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  return { processRun, processJob, failStalled };
}
