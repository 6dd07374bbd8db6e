/**
 * Production mode: the same executor and nodes, with state in Redis and runs on BullMQ.
 */
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { executeRun, type ExecutorDeps } from '../engine/executor.js';
import { waitForEnd } from '../engine/wait.js';
import { FIRST_LEASE } from '../engine/budget.js';
import { errorCode, FlowError } from '../core/errors.js';
import { connectRedis, redisOptions, type FlowRedis } from './client.js';
import { Keys } from './keys.js';
import { RedisKeyStore, RedisRunStore, RedisVarStore } from './stores.js';
import type { Platform, RunEvent, SubscribeOptions } from '../engine/platform.js';
import { RedisScenarioStore } from './scenario-store.js';
import { RunQueue, createWorker, runsOf, type RunJob } from './queue.js';
import { firingRunId, newRun } from '../engine/run-record.js';
import { TriggerBatcher } from './trigger-batch.js';
import pLimit, { type LimitFunction } from 'p-limit';
import type { RunRecord, TriggerInfo } from '../core/types.js';
import type { NodeServices } from '../nodes/define.js';
import { RedisLedger } from './ledger.js';
import type { LedgerOptions } from '../metering/ledger.js';
import { createSandbox } from '../services/sandbox.js';
import { createMailSender } from '../services/mailer.js';
import { AUTO_RESUME_SWEEP_MS, AutoResumer } from '../engine/auto-resume.js';
import { RedisHaltedRuns } from './halted-runs.js';
import { Notifier } from '../services/notifier.js';
import { RedisNotificationStore } from './notifications.js';

export interface ProductionOptions extends LedgerOptions {
  redisUrl: string;
  /** Key prefix (default `fm`); tests use a unique one each. */
  prefix?: string;
  /** Days ended runs are kept (default 30). */
  retentionDays?: number;
  env?: Record<string, string | undefined>;
  services?: Partial<NodeServices>;
  now?: () => Date;
  taskBytes?: number;
  /** Long-lived process (worker, server): reconnect forever instead of failing fast. */
  persistent?: boolean;
  /** Called when a worker of this process has ended a run (logging, metrics). */
  onRunEnd?: (run: RunRecord, ms: number) => void;
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
  processRun(tenant: string, runId: string, scenarioId?: string): Promise<void>;
  /** Executes a queue job's runs, at most `slots` of this process's runs at once. */
  processJob(job: RunJob, slots?: LimitFunction): Promise<void>;
  startWorker(o?: { concurrency?: number; lockDurationMs?: number; stalledIntervalMs?: number }): Worker;
  /** Auto-resume of runs halted for quota (engine/auto-resume.ts). */
  readonly autoResume: AutoResumer;
}

export type Production = Platform & ProductionExtras;

export async function createProduction(opts: ProductionOptions): Promise<Platform & ProductionExtras> {
  const redis: FlowRedis = await connectRedis(opts.redisUrl, { persistent: opts.persistent });
  const keys = new Keys(opts.prefix ?? 'fm');
  const env = opts.env ?? process.env;
  let autoResume: AutoResumer | null = null;
  let notifier: Notifier | null = null;
  const ledger = new RedisLedger(redis, keys, { ...opts, onAllowanceRaised: async (t, at) => {
    await opts.onAllowanceRaised?.(t, at);
    await autoResume?.kick(t);
  }, onAlert: (a) => {
    // Only the process whose settlement recorded the alert (HSETNX in lib-settle.lua) is here.
    opts.onAlert?.(a);
    notifier?.notify(a.tenant, 'quota.alert', new Date(a.at), { threshold: a.threshold, used: a.used, limit: a.limit }, a.period);
  } });
  const notifications = new RedisNotificationStore(redis, keys);
  const runs = new RedisRunStore(redis, keys, { retentionDays: opts.retentionDays, onAlerts: (t, p, th, at) => ledger.alerted(t, p, th, at) });
  const vars = new RedisVarStore(redis, keys);
  const scenarios = new RedisScenarioStore(redis, keys);
  const queue = new RunQueue(opts.redisUrl, keys.prefix);
  let sandbox: ReturnType<typeof createSandbox> | null = null;
  let mail: ReturnType<typeof createMailSender> | null = null;
  const services = (): NodeServices => {
    sandbox ??= createSandbox();
    mail ??= createMailSender(env.FLOWMETER_SMTP_URL);
    return { sandbox, mail, env: (n) => env[n], fetch: globalThis.fetch, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), ...opts.services };
  };
  let deps: ExecutorDeps | null = null;
  // The task log lives in Redis: a worker does not keep it in memory.
  const executorDeps = (): ExecutorDeps => (deps ??= { meter: ledger, runs, vars, services: services(), now: opts.now, taskBytes: opts.taskBytes, keepTasks: false });
  const workers: Worker[] = [];

  // One subscriber connection for every listener of this process, per tenant channel.
  let sub: Redis | null = null;
  const listeners = new Map<string, Set<(e: RunEvent) => void>>();
  /**
   * Calls `onEvent` for every task and run event of the tenant (run events only with
   * `runsOnly`) until the returned stop(). Task and run events come on two channels, published
   * in order by one script: one connection subscribed to both receives them in that order.
   */
  async function subscribe(tenant: string, onEvent: (e: RunEvent) => void, o: SubscribeOptions = {}): Promise<() => void> {
    if (!sub) {
      sub = new Redis(opts.redisUrl, redisOptions({ persistent: true }));
      sub.on('error', () => undefined);
      sub.on('message', (channel: string, text: string) => {
        const set = listeners.get(channel);
        if (!set || set.size === 0) return;
        for (const e of JSON.parse(text) as RunEvent[]) for (const l of set) l(e);
      });
    }
    const sets: Array<Set<(e: RunEvent) => void>> = [];
    for (const channel of o.runsOnly ? [keys.runEvents(tenant)] : [keys.events(tenant), keys.runEvents(tenant)]) {
      let set = listeners.get(channel);
      if (!set) {
        listeners.set(channel, (set = new Set()));
        await sub.subscribe(channel);
      }
      set.add(onEvent);
      sets.push(set);
    }
    return () => {
      for (const set of sets) set.delete(onEvent);
    };
  }

  /** This process's executions, by run (see processRun). */
  const executing = new Map<string, Promise<void>>();

  /** Executes one queued run (the worker's job): from its start, its checkpoint, or a resume. */
  async function processRun(tenant: string, runId: string, scenarioId?: string): Promise<void> {
    // BullMQ redelivers a job whose lock lapsed (Redis away, a blocked event loop), possibly to
    // this very process while its first execution still runs. Both would write with this
    // process's owner token, so the fence could not tell them apart: run them one after the other
    // (the second then finds the run ended, or continues from the first one's checkpoint).
    const key = `${tenant}/${runId}`;
    const exec = (executing.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => executeOnce(tenant, runId, scenarioId));
    executing.set(key, exec);
    try {
      await exec;
    } finally {
      if (executing.get(key) === exec) executing.delete(key);
    }
  }

  async function executeOnce(tenant: string, runId: string, scenarioId?: string): Promise<void> {
    const now = opts.now?.() ?? new Date();
    const { period: current } = await ledger.periodOf(tenant, now);
    const { period: previous } = await ledger.periodOf(tenant, new Date(Date.parse(`${current}-01T00:00:00Z`) - 86400_000 * 2));
    // Claimed and loaded at once: what a previous owner wrote until the claim fenced it is in.
    let stored;
    try {
      stored = await runs.claim(tenant, runId, { current, previous }, scenarioId, FIRST_LEASE);
    } catch (err) {
      if (errorCode(err) === 'NOT_FOUND') return; // expired, or never created
      throw err;
    }
    if (ENDED.has(stored.run.status)) {
      runs.release(runId);
      return;
    }
    const started = performance.now();
    const resumed = Boolean(stored.run.pending); // a resume (or a recovery): it may hold the auto-resume turn
    try {
      const run = await executeRun(stored.scenario, stored.run, executorDeps(), stored.payload, stored);
      opts.onRunEnd?.(run, performance.now() - started);
      await autoResume?.ended(run, resumed).catch((err) => process.stderr.write(`flowmeter: auto-resume: ${(err as Error).message}\n`));
    } catch (err) {
      runs.release(runId);
      if (errorCode(err) === 'RUN_OWNERSHIP_LOST') return;
      throw err;
    }
  }

  /**
   * A job's runs, concurrently within the worker's limit. Runs beyond the worker's free places
   * go back to the queue first as a job of their own, so other workers share a large batch.
   * An infrastructure error of one run fails the job once the others have ended or stopped:
   * BullMQ redelivers it, and each run continues from its checkpoint (ended ones are skipped).
   */
  async function processJob(job: RunJob, slots: LimitFunction = pLimit(Infinity)): Promise<void> {
    let mine = runsOf(job);
    const free = Math.max(1, slots.concurrency - slots.activeCount - slots.pendingCount);
    if (mine.length > free) {
      await queue.enqueueBatch(mine.slice(free));
      mine = mine.slice(0, free);
    }
    const results = await Promise.allSettled(mine.map((r) => slots(() => processRun(r.tenant, r.runId, r.scenarioId))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  let sweep: NodeJS.Timeout | null = null;

  const batcher = new TriggerBatcher({
    getScenario: (tenant, id) => scenarios.get(tenant, id),
    createMany: (items) => runs.createMany(items),
    enqueue: (refs) => queue.enqueueBatch(refs),
  });

  const platform: Production = {
    mode: 'redis' as const,
    redis, redisKeys: keys, ledger, runs, vars, scenarios, queue,
    keys: new RedisKeyStore(redis, keys),
    queueDepth: () => queue.depth(),
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
    trigger(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo): Promise<RunRecord> {
      return batcher.trigger(tenant, scenarioId, payload, trigger);
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
      await queue.enqueue({ tenant, runId }, 'resume');
    },

    subscribe,

    /** Resolves with the run record once the run has ended. */
    waitFor(tenant: string, runId: string, start: () => Promise<void>, timeoutMs = 300_000): Promise<RunRecord> {
      return waitForEnd({ subscribe, get: (t, id) => runs.get(t, id) }, tenant, runId, start, timeoutMs, ' (is a worker running?)');
    },

    startWorker(o: { concurrency?: number; lockDurationMs?: number; stalledIntervalMs?: number } = {}): Worker {
      // `concurrency` bounds the runs executed at once; BullMQ takes as many jobs (some batches).
      const slots = pLimit(o.concurrency ?? 4);
      const w = createWorker({ redisUrl: opts.redisUrl, prefix: keys.prefix, ...o, process: (job) => processJob(job, slots) });
      workers.push(w);
      // Period rollover (and actions returned by ended runs) resume halted runs too.
      sweep ??= setInterval(() => {
        void autoResume?.sweep().catch(() => undefined);
        void scenarios.tenants().then((ts) => notifier?.sweepResets(ts, opts.now?.() ?? new Date())).catch(() => undefined);
      }, AUTO_RESUME_SWEEP_MS).unref();
      return w;
    },

    async close(): Promise<void> {
      if (sweep) clearInterval(sweep);
      await Promise.all(workers.map((w) => w.close()));
      await queue.close();
      (sub as Redis | null)?.disconnect();
      sandbox?.dispose();
      mail?.close();
      redis.disconnect();
    },
  };
  notifier = new Notifier({ ledger, store: notifications, mail: { send: (m) => services().mail.send(m) }, retryDelaysMs: opts.notifyRetryDelaysMs });
  autoResume = new AutoResumer(new RedisHaltedRuns(redis, keys, ledger), {
    resume: (t, id) => platform.resume(t, id), now: opts.now,
    onQuotaHalt: (run) => notifier?.notify(run.tenant, 'run.halted', opts.now?.() ?? new Date(), { runId: run.runId, scenarioId: run.scenarioId, actions: run.actions }),
  });
  return platform;
}
