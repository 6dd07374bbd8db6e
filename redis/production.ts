/**
 * Production mode: the same executor and nodes, with state in Redis and runs on BullMQ.
 */
import type { Worker } from 'bullmq';
import pLimit, { type LimitFunction } from 'p-limit';
import { errorCode, FlowError } from '../core/errors.js';
import type { RunRecord, TriggerInfo } from '../core/types.js';
import { AutoResumer, startSweeps } from '../engine/auto-resume.js';
import { FIRST_LEASE } from '../engine/budget.js';
import { type ExecutorDeps, executeRun } from '../engine/executor.js';
import { type Platform, rejectedBytesLimit, type TriggerOptions } from '../engine/platform.js';
import { firingRunId, newRun } from '../engine/run-record.js';
import { waitForEnd } from '../engine/wait.js';
import type { LedgerOptions } from '../metering/ledger.js';
import type { NodeServices } from '../nodes/define.js';
import { policedFetch } from '../services/egress.js';
import { createMailSender } from '../services/mailer.js';
import { Notifier } from '../services/notifier.js';
import { createSandboxPool, type SandboxPoolOptions } from '../services/sandbox-pool.js';
import { lazySecretBox } from '../services/secrets.js';
import { parseTenantEnv, tenantEnvReader } from '../services/tenant-env.js';
import { connectRedis, type FlowRedis } from './client.js';
import { Dispatcher } from './dispatch.js';
import { createEventSubscription } from './event-subscription.js';
import { RedisHaltedRuns } from './halted-runs.js';
import { Keys } from './keys.js';
import { RedisLedger } from './ledger.js';
import { RedisNotificationStore } from './notifications.js';
import { createShardWorkers, type RunJob, RunQueue, type RunRef, runsOf } from './queue.js';
import { RedisRejectedPayloads } from './rejected-payloads.js';
import { CRASH_LIMIT } from './run-store.js';
import { RedisScenarioStore } from './scenario-store.js';
import { RedisSecretStore } from './secrets.js';
import { queueShards } from './shards.js';
import { RedisKeyStore, RedisRunStore, RedisVarStore } from './stores.js';
import { TriggerBatcher } from './trigger-batch.js';

export interface ProductionOptions extends LedgerOptions {
  redisUrl: string;
  /** Key prefix (default `fm`); tests use a unique one each. */
  prefix?: string;
  /** Days ended runs are kept (default 30). */
  retentionDays?: number;
  env?: Record<string, string | undefined>;
  services?: Partial<NodeServices>;
  /** The Function sandbox's host processes of this process (size default min(2, CPUs)). */
  sandbox?: SandboxPoolOptions;
  now?: () => Date;
  taskBytes?: number;
  /** Long-lived process (worker, server): reconnect forever instead of failing fast. */
  persistent?: boolean;
  /**
   * Servers: while Redis is unreachable commands fail at once (REDIS_UNAVAILABLE in the API) and
   * are never replayed after a reconnect; see ConnectOptions.failFast. Workers leave it off.
   */
  failFast?: boolean;
  /** Called when a worker of this process has ended a run (logging, metrics). */
  onRunEnd?: (run: RunRecord, ms: number) => void;
  /** Crashed executions after which a run fails with WORKER_CRASHED (default 2, SPEC §10). */
  crashLimit?: number;
  /** Waits between notification webhook attempts, ms (tests: short ones). */
  notifyRetryDelaysMs?: number[];
}

const ENDED = new Set(['succeeded', 'failed', 'halted', 'rejected']);

export interface ProductionExtras {
  redis: FlowRedis;
  redisKeys: Keys;
  runs: RedisRunStore;
  queue: RunQueue;
  readonly deps: ExecutorDeps;
  /** Executes a run; resolves with whether it still has to be released (see executeOnce). */
  processRun(tenant: string, runId: string, scenarioId?: string): Promise<boolean>;
  /** The fair dispatcher of the queue shards (dispatch.ts). */
  dispatcher: Dispatcher;
  /** Executes a queue job's runs, at most `slots` of this process's runs at once. */
  processJob(job: RunJob, slots?: LimitFunction, keep?: (data: RunJob) => Promise<void>): Promise<void>;
  startWorker(o?: { concurrency?: number; lockDurationMs?: number; stalledIntervalMs?: number }): Worker;
  /**
   * Stops executing: runs in progress checkpoint after their current wave and are given back
   * (their jobs fail and are retried, so another worker continues them from there); no run is
   * claimed any more. Then `close()` the platform.
   */
  stopRuns(): void;
  /** Auto-resume of runs halted for quota (engine/auto-resume.ts). */
  readonly autoResume: AutoResumer;
}

export type Production = Platform & ProductionExtras;

export async function createProduction(opts: ProductionOptions): Promise<Platform & ProductionExtras> {
  const redis: FlowRedis = await connectRedis(opts.redisUrl, { persistent: opts.persistent, failFast: opts.failFast });
  const env = opts.env ?? process.env;
  const keys = new Keys(opts.prefix ?? 'fm', queueShards(env));
  const tenantEnv = parseTenantEnv(env);
  // Connectors reach only public addresses, and what FLOWMETER_EGRESS_ALLOW opens (SPEC §9).
  const egressFetch = policedFetch({ allow: env.FLOWMETER_EGRESS_ALLOW });
  let autoResume: AutoResumer | null = null;
  let dispatcher: Dispatcher | null = null;
  let notifier: Notifier | null = null;
  const ledger = new RedisLedger(redis, keys, {
    ...opts,
    onAllowanceRaised: async (t, at) => {
      dispatcher?.forget(t); // the quota changed: its concurrency and weight too, maybe
      await opts.onAllowanceRaised?.(t, at);
      await autoResume?.kick(t);
    },
    onAlert: (a) => {
      // Only the process whose settlement recorded the alert (HSETNX in lib-settle.lua) is here.
      opts.onAlert?.(a);
      notifier?.notify(a.tenant, 'quota.alert', new Date(a.at), { threshold: a.threshold, used: a.used, limit: a.limit }, a.period);
    },
  });
  const notifications = new RedisNotificationStore(redis, keys);
  const runs = new RedisRunStore(redis, keys, {
    retentionDays: opts.retentionDays,
    onAlerts: (t, p, th, at) => ledger.alerted(t, p, th, at),
    waiting: (items) => dispatcher?.waiting(items) ?? Promise.resolve([]),
  });
  const vars = new RedisVarStore(redis, keys);
  const secrets = new RedisSecretStore(redis, keys, lazySecretBox(env));
  const rejected = new RedisRejectedPayloads(redis, keys, rejectedBytesLimit(env));
  const scenarios = new RedisScenarioStore(redis, keys);
  const shards = queueShards(env);
  const queue = new RunQueue(opts.redisUrl, keys.prefix, { failFast: opts.failFast, shards });
  const fair = (dispatcher = new Dispatcher({
    redis,
    keys,
    queue,
    shards,
    tenantLimits: async (t) => {
      const q = await ledger.getQuota(t);
      return { concurrency: q.concurrency ?? undefined, weight: q.weight };
    },
    scenarioLimits: async (t, id) => {
      const sc = await scenarios.get(t, id);
      return sc && { concurrency: sc.concurrency, throttle: sc.throttle };
    },
    onError: (err) => process.stderr.write(`flowmeter: dispatch: ${(err as Error).message}\n`),
  }));
  queue.fair = fair;
  let sandbox: ReturnType<typeof createSandboxPool> | null = null;
  let mail: ReturnType<typeof createMailSender> | null = null;
  const services = (): NodeServices => {
    sandbox ??= createSandboxPool(opts.sandbox);
    mail ??= createMailSender(env.FLOWMETER_SMTP_URL);
    return { sandbox, mail, env: tenantEnvReader(env, tenantEnv), fetch: egressFetch, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), ...opts.services };
  };
  let deps: ExecutorDeps | null = null;
  // The task log lives in Redis: a worker does not keep it in memory.
  const executorDeps = (): ExecutorDeps =>
    (deps ??= {
      meter: ledger,
      runs,
      vars,
      services: services(),
      secrets: (t, names) => secrets.read(t, names),
      now: opts.now,
      taskBytes: opts.taskBytes,
      keepTasks: false,
      stopping: () => stopping,
    });
  const workers: Worker[] = [];

  const events = createEventSubscription(opts.redisUrl, keys, { failFast: opts.failFast });
  const { subscribe } = events;

  /** Set by stopRuns(): runs stop at their next checkpoint, new ones are not claimed. */
  let stopping = false;
  const crashLimit = opts.crashLimit ?? CRASH_LIMIT;

  /** The tenant's current billing period and the one before (a run may hold leases in both). */
  async function periodsOf(tenant: string): Promise<{ current: string; previous: string }> {
    const { period: current } = await ledger.periodOf(tenant, opts.now?.() ?? new Date());
    const { period: previous } = await ledger.periodOf(tenant, new Date(Date.parse(`${current}-01T00:00:00Z`) - 86400_000 * 2));
    return { current, previous };
  }

  /** This process's executions, by run (see processRun). */
  const executing = new Map<string, Promise<boolean>>();

  /** Executes one queued run (the worker's job): from its start, its checkpoint, or a resume. */
  async function processRun(tenant: string, runId: string, scenarioId?: string): Promise<boolean> {
    // BullMQ redelivers a job whose lock lapsed (Redis away, a blocked event loop), possibly to
    // this very process while its first execution still runs. Both would write with this
    // process's owner token, so the fence could not tell them apart: run them one after the other
    // (the second then finds the run ended, or continues from the first one's checkpoint).
    const key = `${tenant}/${runId}`;
    const exec = (executing.get(key) ?? Promise.resolve(true)).catch(() => true).then(() => executeOnce(tenant, runId, scenarioId));
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
  async function executeOnce(tenant: string, runId: string, scenarioId?: string): Promise<boolean> {
    const periods = await periodsOf(tenant);
    // Claimed and loaded at once: what a previous owner wrote until the claim fenced it is in.
    if (stopping) throw new FlowError('WORKER_STOPPING', `the worker is stopping: run ${runId} is left to another worker`);
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
      const run = await executeRun(stored.scenario, stored.run, executorDeps(), stored.payload, stored);
      opts.onRunEnd?.(run, performance.now() - started);
      // Released at once (its place goes to the next run) while auto-resume looks at its end.
      await Promise.all([
        fair.ended([{ tenant, runId, scenarioId }]),
        autoResume?.ended(run, resumed).catch((err) => process.stderr.write(`flowmeter: auto-resume: ${(err as Error).message}\n`)),
      ]);
      return false;
    } catch (err) {
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
            ? `the run's execution killed ${crashes} worker processes; it is not retried again`
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
  async function processJob(job: RunJob, slots: LimitFunction = pLimit(Infinity), keep?: (data: RunJob) => Promise<void>): Promise<void> {
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
      if (await processRun(r.tenant, r.runId, r.scenarioId)) await fair.ended([r]);
    };
    const results = await Promise.allSettled(mine.map((r) => slots(() => one(r))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  let sweep: NodeJS.Timeout | null = null;

  const batcher = new TriggerBatcher({
    getScenario: (tenant, id) => scenarios.get(tenant, id),
    createMany: (items) => runs.createMany(items),
    enqueue: (refs) => queue.enqueueBatch(refs),
    getRun: (tenant, runId) => runs.get(tenant, runId),
  });

  const platform: Production = {
    mode: 'redis' as const,
    redis,
    redisKeys: keys,
    ledger,
    runs,
    vars,
    scenarios,
    queue,
    tenantEnv,
    secrets,
    rejected,
    keys: new RedisKeyStore(redis, keys),
    queueDepth: () => fair.depth(),
    dispatcher: fair,
    get deps() {
      return executorDeps();
    },
    processRun,
    processJob,
    get autoResume() {
      return autoResume!;
    },
    get notifier() {
      return notifier!;
    },
    notifications,

    /**
     * Persists a new run of a stored scenario, then enqueues it (never the other way round),
     * in one job with the other runs triggered in the same turn of the event loop.
     */
    trigger(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo, o: TriggerOptions = {}): Promise<RunRecord> {
      return batcher.trigger(tenant, scenarioId, payload, trigger, o.idempotencyKey);
    },

    async idempotentRun(tenant: string, idempotencyKey: string): Promise<string | null> {
      return redis.get(keys.idempotency(tenant, idempotencyKey));
    },

    async fire(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo, instant: Date) {
      const scenario = await scenarios.get(tenant, scenarioId);
      if (!scenario) throw new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(scenarioId)} for tenant ${tenant}`);
      const run = newRun(scenario, tenant, trigger, firingRunId(tenant, scenarioId, instant));
      const created = await runs.create(run, scenario, payload);
      // Enqueued even when another scheduler created it (it may have died before enqueueing):
      // BullMQ keeps one job per id, and a worker given an ended run does nothing.
      await queue.enqueue({ tenant, runId: run.runId, scenarioId });
      return { run, created };
    },

    async resume(tenant: string, runId: string): Promise<void> {
      await runs.markResumed(tenant, runId);
      // Back through its tenant's ready list, under its scenario's limits.
      const record = await redis.hget(keys.run(tenant, runId), 'record');
      const scenarioId = record ? (JSON.parse(record) as RunRecord).scenarioId : undefined;
      await fair.push([{ tenant, runId, scenarioId }]);
    },

    subscribe,

    /** Resolves with the run record once the run has ended. */
    waitFor(tenant: string, runId: string, start: () => Promise<void>, timeoutMs = 300_000): Promise<RunRecord> {
      return waitForEnd({ subscribe, get: (t, id) => runs.get(t, id) }, tenant, runId, start, timeoutMs, ' (is a worker running?)');
    },

    startWorker(o: { concurrency?: number; lockDurationMs?: number; stalledIntervalMs?: number } = {}): Worker {
      // `concurrency` bounds one tenant's runs executed at once; one more place, the express
      // place, is there for another tenant's run (the dispatcher never gives one tenant every
      // place: lib-fair.lua's pick). BullMQ takes as many jobs (some batches). One BullMQ
      // worker per queue shard (createShardWorkers), sharing the process's places.
      const places = (o.concurrency ?? 4) + 1;
      const slots = pLimit(places);
      // The dispatcher hands BullMQ what the registered workers can execute.
      const id = fair.addWorker(places);
      const w = createShardWorkers(
        { redisUrl: opts.redisUrl, prefix: keys.prefix, ...o, concurrency: places, process: (job, keep) => processJob(job, slots, keep) },
        shards,
        () => fair.removeWorker(id),
      );
      // A job BullMQ gave up on (stalled more than its limit: its workers kept dying) would leave
      // its runs unended: they fail with WORKER_CRASHED instead.
      w.on('failed', (job, err) => {
        if (!job || !/stalled more than allowable limit/.test(err.message)) return;
        for (const r of runsOf(job.data)) void failStalled(r.tenant, r.runId).catch(() => undefined);
      });
      workers.push(w);
      // Period rollover (and actions returned by ended runs) resume halted runs too.
      sweep ??= startSweeps({
        autoResume: () => autoResume,
        tenants: () => scenarios.tenants(),
        notifyResets: (ts, at) => notifier?.sweepResets(ts, at),
        now: opts.now,
      });
      return w;
    },

    stopRuns(): void {
      stopping = true;
      void fair.removeWorker('all');
    },

    async close(): Promise<void> {
      if (sweep) clearInterval(sweep);
      await fair.removeWorker('all');
      fair.close();
      await Promise.all(workers.map((w) => w.close()));
      await queue.close();
      events.close();
      await sandbox?.dispose();
      mail?.close();
      redis.disconnect();
    },
  };
  notifier = new Notifier({ ledger, store: notifications, mail: { send: (m) => services().mail.send(m) }, retryDelaysMs: opts.notifyRetryDelaysMs });
  autoResume = new AutoResumer(new RedisHaltedRuns(redis, keys, ledger), {
    resume: (t, id) => platform.resume(t, id),
    now: opts.now,
    onQuotaHalt: (run) =>
      notifier?.notify(run.tenant, 'run.halted', opts.now?.() ?? new Date(), { runId: run.runId, scenarioId: run.scenarioId, actions: run.actions }),
  });
  return platform;
}
