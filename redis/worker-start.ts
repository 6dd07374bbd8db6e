/**
 * Starting a worker of the production platform (production.ts): its BullMQ workers, one per
 * queue shard, sharing the process's places, its registration with the fair dispatcher, and its
 * express lane (express-lane.ts).
 */
import type { Worker } from 'bullmq';
import pLimit from 'p-limit';
import type { Dispatcher } from './dispatch.js';
import { type ExpressLane, type LaneTimings, lazyExpressThread } from './express-lane.js';
import type { Keys } from './keys.js';
import type { ProductionOptions } from './production-options.js';
import { createShardWorkers, EXPRESS_QUEUE, type RunQueue, runsOf } from './queue.js';
import type { RunExecution } from './run-execution.js';

/** What starting workers needs from the platform; `workers` and `lanes` are closed with it. */
export interface WorkerStartContext extends Pick<RunExecution, 'processJob' | 'failStalled'> {
  opts: ProductionOptions;
  keys: Keys;
  shards: number;
  fair: Dispatcher;
  queue: RunQueue;
  workers: Worker[];
  lanes: ExpressLane[];
}

/** Options of a worker: `concurrency` places (default 4); `expressThread`: its express lane in a thread of its own. */
export type StartWorkerOptions = { concurrency?: number; expressThread?: boolean } & LaneTimings;

export function workerStarters(ctx: WorkerStartContext): { startWorker(o?: StartWorkerOptions): Worker; startExpressLane(o?: LaneTimings): Worker } {
  const { opts, keys, shards, fair, queue, processJob, failStalled, workers, lanes } = ctx;

  // A job BullMQ gave up on (stalled more than its limit: its workers kept dying) would leave
  // its runs unended: they fail with WORKER_CRASHED instead.
  const giveUpStalled = (w: Worker): void =>
    void w.on('failed', (job, err) => {
      if (!job || !/stalled more than allowable limit/.test(err.message)) return;
      for (const r of runsOf(job.data)) void failStalled(r.tenant, r.runId).catch(() => undefined);
    });

  /** Only an express lane, in this thread, that registers no places (express-thread.ts uses it). */
  function startExpressLane(o: LaneTimings = {}): Worker {
    const slot = pLimit(1);
    const w = createShardWorkers(
      {
        redisUrl: opts.redisUrl,
        prefix: keys.prefix,
        ...o,
        queueName: EXPRESS_QUEUE,
        concurrency: 1,
        process: (job, keep) => processJob(job, slot, keep, 'express'),
      },
      shards,
      async () => undefined,
    );
    giveUpStalled(w);
    workers.push(w);
    return w;
  }

  /**
   * `concurrency` places, plus the express place that the dispatcher gives only to a run of a
   * tenant with nothing else in flight or ready (lib-fair.lua's pick), so a quiet tenant's
   * request starts at once behind another's backlog: that run goes to the express queue, which
   * the worker's express lane executes. BullMQ takes a job more than the places (a finishing
   * job's successor while it completes).
   */
  function startWorker(o: StartWorkerOptions = {}): Worker {
    const places = o.concurrency ?? 4;
    const slots = pLimit(places);
    // The dispatcher hands BullMQ what the registered workers can execute.
    const id = fair.addWorker(places + 1);
    const timings = { lockDurationMs: o.lockDurationMs, stalledIntervalMs: o.stalledIntervalMs };
    const inProcess = (): ExpressLane => {
      startExpressLane(timings); // stopped and closed with the platform's other workers
      return { stopRuns: () => undefined, close: async () => undefined };
    };
    const { redisUrl, retentionDays, taskBytes, crashLimit, sandbox, env } = opts;
    const thread = o.expressThread
      ? lazyExpressThread(
          { options: { redisUrl, prefix: keys.prefix, retentionDays, taskBytes, crashLimit, sandbox, env }, timings },
          { onRunEnd: opts.onRunEnd, onAlert: opts.onAlert, fallback: inProcess, onError: (err) => process.stderr.write(`flowmeter: ${err.message}\n`) },
          async () => (await Promise.all(queue.express.map((q) => q.getWaitingCount()))).reduce((a, b) => a + b, 0),
        )
      : null;
    lanes.push(thread ?? inProcess());
    const w = createShardWorkers(
      {
        redisUrl,
        prefix: keys.prefix,
        ...timings,
        concurrency: places + 1,
        process: (job, keep) => {
          // Every place taken: the dispatcher may pick express runs from now on.
          if (slots.activeCount + slots.pendingCount + runsOf(job).length >= places) thread?.want();
          return processJob(job, slots, keep);
        },
      },
      shards,
      () => fair.removeWorker(id),
    );
    giveUpStalled(w);
    workers.push(w);
    return w;
  }

  return { startWorker, startExpressLane };
}
