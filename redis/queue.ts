/**
 * The queue adapter: one BullMQ queue per queue shard (redis/shards.ts); a job carries one run,
 * or a batch of runs the fair dispatcher (dispatch.ts) started together. The worker executes each run whole inside the job, checkpointing as
 * it goes (a job per node would cost a queue round trip per action). A job redelivered after a
 * crash continues each of its runs from its last checkpoint.
 */
import { type Job, Queue, Worker } from 'bullmq';
import { newConnection, type RedisConnection } from './client.js';
import { shardTag } from './shards.js';

export const QUEUE_NAME = 'runs';
/**
 * The queue of runs that took an express place (lib-fair.lua's pick): a quiet tenant's run
 * while other tenants' backlogs fill every shared place. Only workers' express lanes consume
 * it (express-lane.ts), so such a run never waits behind the event loop those backlogs keep busy.
 */
export const EXPRESS_QUEUE = 'express';

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

/** BullMQ's key prefix of queue shard `shard`: its hash tag, so the shard's keys share a slot. */
export function queuePrefix(prefix: string, shard = 0): string {
  return shardTag(prefix, shard);
}

/** The BullMQ queues of every shard. Runs reach them only through the fair dispatcher (dispatch.ts). */
export class RunQueue {
  /** One BullMQ queue per shard (redis/shards.ts). */
  readonly queues: Queue<RunJob>[];
  /** Each shard's express queue (EXPRESS_QUEUE). */
  readonly express: Queue<RunJob>[];
  private readonly connection: RedisConnection;

  /** `failFast`: adding a job fails at once while Redis is unreachable, never later (servers). */
  constructor(redisUrl: string, prefix: string, opts: { failFast?: boolean; shards?: number } = {}) {
    this.connection = newConnection(redisUrl, { persistent: true, failFast: opts.failFast });
    const queues = (name: string) =>
      Array.from({ length: opts.shards ?? 1 }, (_, i) => {
        const q = new Queue<RunJob>(name, { connection: this.connection, prefix: queuePrefix(prefix, i) });
        q.on('error', () => undefined);
        return q;
      });
    this.queues = queues(QUEUE_NAME);
    this.express = queues(EXPRESS_QUEUE);
  }

  /** Set by the platform: the fair dispatcher (dispatch.ts) that runs reach BullMQ through. */
  fair: { push(refs: RunRef[]): Promise<void>; depth(): Promise<number> } | null = null;

  /** Queues a persisted run (its ready list; the dispatcher moves it into BullMQ in its turn). */
  async enqueue(ref: RunRef): Promise<void> {
    await this.dispatcher().push([ref]);
  }

  /** Queues persisted runs at once. */
  async enqueueBatch(refs: RunRef[]): Promise<void> {
    if (refs.length === 1) return this.enqueue(refs[0]!);
    await this.dispatcher().push(refs);
  }

  /** Runs queued or started and not ended, over every shard. */
  depth(): Promise<number> {
    return this.dispatcher().depth();
  }

  private dispatcher(): NonNullable<RunQueue['fair']> {
    if (!this.fair) throw new Error('RunQueue: no dispatcher attached');
    return this.fair;
  }

  /** Shard 0's queue (every worker consumes every shard: its worker count is theirs). */
  get queue(): Queue<RunJob> {
    return this.queues[0]!;
  }

  /** Adds dispatched runs as one job of the shard under `jobId` (a job already there is kept). */
  async add(shard: number, jobId: string, runs: RunRef[]): Promise<void> {
    const data: RunJob = runs.length === 1 ? runs[0]! : { runs };
    await this.queues[shard]!.add(runs.length === 1 ? 'start' : 'batch', data, { ...JOB_OPTIONS, jobId });
  }

  /** Adds a run that took an express place as a job of the shard's express queue. */
  async addExpress(shard: number, jobId: string, run: RunRef): Promise<void> {
    await this.express[shard]!.add('start', run, { ...JOB_OPTIONS, jobId });
  }

  /** Jobs waiting, active or delayed, over every shard (express queues included). */
  async jobs(): Promise<number> {
    const counts = await Promise.all([...this.queues, ...this.express].map((q) => q.getJobCounts('wait', 'active', 'delayed', 'prioritized')));
    return counts.flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues, ...this.express].map((q) => q.close()));
    this.connection.disconnect();
  }
}

export interface WorkerOptions {
  redisUrl: string;
  prefix: string;
  /** The queue shard this worker consumes (default 0). */
  shard?: number;
  /** The queue it consumes in that shard (default QUEUE_NAME; EXPRESS_QUEUE for an express lane). */
  queueName?: string;
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
  const worker = new Worker<RunJob>(
    opts.queueName ?? QUEUE_NAME,
    (job: Job<RunJob>) => opts.process(job.data, async (data) => void (await job.updateData(data))),
    {
      connection,
      prefix: queuePrefix(opts.prefix, opts.shard ?? 0),
      concurrency: opts.concurrency ?? 4,
      lockDuration: opts.lockDurationMs ?? 10_000,
      stalledInterval: opts.stalledIntervalMs ?? 5_000,
      // A run whose worker died is picked up again and continues from its checkpoint. Poison runs
      // are given up per run by claim.lua (WORKER_CRASHED after CRASH_LIMIT crashed executions, on
      // the 3rd delivery); the job's own bound is a backstop above that (a job that kills its
      // workers before any claim), and the runs of a job BullMQ gives up on fail as WORKER_CRASHED.
      maxStalledCount: MAX_STALLED,
      autorun: true,
    },
  );
  openWorkers++;
  worker.on('closed', () => {
    openWorkers--;
    connection.disconnect();
  });
  return worker;
}

/**
 * One BullMQ worker per queue shard. The caller gets the first shard's Worker, which speaks
 * for them all: the others' `error` and `failed` events are emitted on it, and closing it
 * closes them all (after `beforeClose`).
 */
export function createShardWorkers(opts: Omit<WorkerOptions, 'shard'>, shards: number, beforeClose: () => Promise<void>): Worker<RunJob> {
  const ws = Array.from({ length: shards }, (_, shard) => createWorker({ ...opts, shard }));
  const w = ws[0]!;
  for (const other of ws.slice(1)) {
    other.on('error', (err) => w.emit('error', err));
    other.on('failed', (job, err, prev) => w.emit('failed', job, err, prev));
  }
  const closeFirst = w.close.bind(w);
  w.close = async (force?: boolean) => {
    await beforeClose();
    await Promise.all([closeFirst(force), ...ws.slice(1).map((x) => x.close(force))]);
  };
  return w;
}
