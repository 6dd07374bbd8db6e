/**
 * The queue adapter: a BullMQ job carries one run, or a batch of runs triggered together
 * (see trigger-batch.ts). The worker executes each run whole inside the job, checkpointing as
 * it goes (a job per node would cost a queue round trip per action). A job redelivered after a
 * crash continues each of its runs from its last checkpoint.
 */
import { randomUUID } from 'node:crypto';
import { type Job, Queue, Worker } from 'bullmq';
import { newConnection, type RedisConnection } from './client.js';
import { shardTag } from './shards.js';

export const QUEUE_NAME = 'runs';

/** A run to execute. */
export interface RunRef {
  tenant: string;
  runId: string;
  /** Lets the worker load the scenario's variables with the run, in one round trip. */
  scenarioId?: string;
}

/** A job's data: one run, or a batch of them. */
export type RunJob = RunRef | { runs: RunRef[] };

/** The runs of a job. */
export function runsOf(job: RunJob): RunRef[] {
  return 'runs' in job ? job.runs : [job];
}

const JOB_OPTIONS = {
  removeOnComplete: true,
  removeOnFail: 1000,
  // Infrastructure failures (Redis away mid-run) retry from the last checkpoint.
  attempts: 1000,
  backoff: { type: 'fixed' as const, delay: 1000 },
};

/** BullMQ's key prefix: one hash tag, so the queue's keys share a slot in Redis Cluster. */
export function queuePrefix(prefix: string): string {
  return shardTag(prefix, 0);
}

export class RunQueue {
  readonly queue: Queue<RunJob>;
  private readonly connection: RedisConnection;

  /** `failFast`: adding a job fails at once while Redis is unreachable, never later (servers). */
  constructor(redisUrl: string, prefix: string, opts: { failFast?: boolean } = {}) {
    this.connection = newConnection(redisUrl, { persistent: true, failFast: opts.failFast });
    this.queue = new Queue<RunJob>(QUEUE_NAME, { connection: this.connection, prefix: queuePrefix(prefix) });
    this.queue.on('error', () => undefined);
  }

  /** Enqueues a run that is already persisted. `resume` jobs get an id of their own. */
  async enqueue(job: RunRef, kind: 'start' | 'resume' = 'start'): Promise<void> {
    await this.queue.add(kind, job, { ...JOB_OPTIONS, jobId: kind === 'start' ? job.runId : `${job.runId}-r${Date.now()}` });
  }

  /** Enqueues persisted runs as one job (a single run as its own job, under its run id). */
  async enqueueBatch(runs: RunRef[]): Promise<void> {
    if (runs.length === 1) return this.enqueue(runs[0]!);
    await this.queue.add('batch', { runs }, { ...JOB_OPTIONS, jobId: `batch-${randomUUID()}` });
  }

  async depth(): Promise<number> {
    const counts = await this.queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.connection.disconnect();
  }
}

export interface WorkerOptions {
  redisUrl: string;
  prefix: string;
  /** Jobs taken at once (default 4); the caller bounds the runs executed at once. */
  concurrency?: number;
  /** How long a worker's lock on a job lasts without renewal, ms (default 10000). */
  lockDurationMs?: number;
  /** How often stalled jobs (of dead workers) are looked for, ms (default 5000). */
  stalledIntervalMs?: number;
  /** `keep` replaces the job's data (a batch that handed some of its runs on keeps the rest). */
  process: (job: RunJob, keep: (data: RunJob) => Promise<void>) => Promise<void>;
}

/** Stalls (deaths of its worker) after which BullMQ fails a job: above claim.lua's 2 crashes per run. */
export const MAX_STALLED = 5;

let openWorkers = 0;
/** How many workers of this process are not closed yet (a test guard checks it is 0). */
export function openWorkerCount(): number {
  return openWorkers;
}

export function createWorker(opts: WorkerOptions): Worker<RunJob> {
  const connection = newConnection(opts.redisUrl, { persistent: true });
  const worker = new Worker<RunJob>(QUEUE_NAME, (job: Job<RunJob>) => opts.process(job.data, async (data) => void (await job.updateData(data))), {
    connection,
    prefix: queuePrefix(opts.prefix),
    concurrency: opts.concurrency ?? 4,
    lockDuration: opts.lockDurationMs ?? 10_000,
    stalledInterval: opts.stalledIntervalMs ?? 5_000,
    // A run whose worker died is picked up again and continues from its checkpoint. Poison runs
    // are given up per run by claim.lua (WORKER_CRASHED after CRASH_LIMIT crashed executions, on
    // the 3rd delivery); the job's own bound is a backstop above that (a job that kills its
    // workers before any claim), and the runs of a job BullMQ gives up on fail as WORKER_CRASHED.
    maxStalledCount: MAX_STALLED,
    autorun: true,
  });
  openWorkers++;
  worker.on('closed', () => {
    openWorkers--;
    connection.disconnect();
  });
  return worker;
}
