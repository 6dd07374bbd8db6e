/**
 * Production mode: the same executor and nodes, with state in Redis and runs on BullMQ.
 */
import type { Worker } from 'bullmq';
import { FlowError } from '../core/errors.js';
import type { RunRecord, TriggerInfo } from '../core/types.js';
import { AutoResumer, startSweeps } from '../engine/auto-resume.js';
import type { ExecutorDeps } from '../engine/executor.js';
import { processHeld } from '../engine/kept.js';
import { type Platform, rejectedBytesLimit, rejectedRunsLimit, scenarioBytesLimit, type TriggerOptions, waveBytesLimit } from '../engine/platform.js';
import { firingRunId, newRun } from '../engine/run-record.js';
import { waitForEnd } from '../engine/wait.js';
import type { NodeServices } from '../nodes/define.js';
import { policedFetch } from '../services/egress.js';
import { createMailSender } from '../services/mailer.js';
import { Notifier } from '../services/notifier.js';
import { createSandboxPool } from '../services/sandbox-pool.js';
import { lazySecretBox } from '../services/secrets.js';
import { parseTenantEnv, tenantEnvReader } from '../services/tenant-env.js';
import { connectRedis, type FlowRedis } from './client.js';
import { Dispatcher } from './dispatch.js';
import { createEventSubscription } from './event-subscription.js';
import type { ExpressLane, LaneTimings } from './express-lane.js';
import { RedisHaltedRuns } from './halted-runs.js';
import { Keys } from './keys.js';
import { RedisLedger } from './ledger.js';
import { RedisNotificationStore } from './notifications.js';
import type { ProductionOptions } from './production-options.js';
import { RunQueue } from './queue.js';
import { RedisRejectedPayloads } from './rejected-payloads.js';
import { createRunExecution, type RunExecution } from './run-execution.js';
import { CRASH_LIMIT } from './run-store.js';
import { RedisScenarioStore } from './scenario-store.js';
import { RedisSecretStore } from './secrets.js';
import { queueShards } from './shards.js';
import { RedisKeyStore, RedisRunStore, RedisVarStore } from './stores.js';
import { TriggerBatcher } from './trigger-batch.js';
import { type StartWorkerOptions, workerStarters } from './worker-start.js';

export type { ProductionOptions } from './production-options.js';

export interface ProductionExtras extends Pick<RunExecution, 'processRun' | 'processJob'> {
  redis: FlowRedis;
  redisKeys: Keys;
  runs: RedisRunStore;
  queue: RunQueue;
  readonly deps: ExecutorDeps;
  /** The fair dispatcher of the queue shards (dispatch.ts). */
  dispatcher: Dispatcher;
  /**
   * A worker of `concurrency` places for runs of every tenant and one express place (its lane,
   * express-lane.ts); `expressThread`: the lane runs in a thread of its own (the CLI's workers).
   */
  startWorker(o?: StartWorkerOptions): Worker;
  /** Only an express lane, in this thread, that registers no places (express-thread.ts). */
  startExpressLane(o?: LaneTimings): Worker;
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
  const rejected = new RedisRejectedPayloads(redis, keys, rejectedBytesLimit(env), rejectedRunsLimit(env));
  const scenarios = new RedisScenarioStore(redis, keys, scenarioBytesLimit(env));
  processHeld.limit = waveBytesLimit(env);
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
  const lanes: ExpressLane[] = [];

  const events = createEventSubscription(opts.redisUrl, keys, { failFast: opts.failFast });
  const { subscribe } = events;

  /** Set by stopRuns(): runs stop at their next checkpoint, new ones are not claimed. */
  let stopping = false;

  const { processRun, processJob, failStalled } = createRunExecution({
    runs,
    ledger,
    fair,
    executorDeps,
    autoResume: () => autoResume,
    onRunEnd: opts.onRunEnd,
    crashLimit: opts.crashLimit ?? CRASH_LIMIT,
    stopping: () => stopping,
    now: opts.now,
  });

  let sweep: NodeJS.Timeout | null = null;
  const starters = workerStarters({ opts, keys, shards, fair, queue, processJob, failStalled, workers, lanes });

  const batcher = new TriggerBatcher({
    getScenario: (tenant, id) => scenarios.get(tenant, id),
    createMany: (items) => runs.createMany(items),
    enqueue: (refs) => queue.enqueueBatch(refs),
    getRun: (tenant, runId) => runs.get(tenant, runId, { limit: 0 }),
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

    startWorker(o = {}): Worker {
      const w = starters.startWorker(o);
      // Period rollover (and actions returned by ended runs) resume halted runs too.
      sweep ??= startSweeps({
        autoResume: () => autoResume,
        tenants: () => scenarios.tenants(),
        notifyResets: (ts, at) => notifier?.sweepResets(ts, at),
        now: opts.now,
      });
      return w;
    },

    startExpressLane: (o) => starters.startExpressLane(o),

    stopRuns(): void {
      stopping = true;
      for (const lane of lanes) lane.stopRuns();
      void fair.removeWorker('all');
    },

    async close(): Promise<void> {
      if (sweep) clearInterval(sweep);
      await fair.removeWorker('all');
      fair.close();
      await Promise.all([...workers.map((w) => w.close()), ...lanes.map((l) => l.close())]);
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
