/**
 * The embedded default: the executor with in-memory stores, runs executed in this process.
 * It is a full Platform, so `serve`, `scheduler` and `dev` work without Redis.
 */
import { EventEmitter } from 'node:events';
import { FlowError } from '../core/errors.js';
import { checkPayload } from '../core/json-depth.js';
import type { RunRecord, TaskRecord, TriggerInfo } from '../core/types.js';
import { type LedgerOptions, MemoryLedger } from '../metering/ledger.js';
import type { NodeServices } from '../nodes/define.js';
import type { Scenario } from '../scenario/schema.js';
import { apiKeyHash, apiKeyId, newApiKey } from '../services/api-keys.js';
import { createMailSender } from '../services/mailer.js';
import { MemoryNotificationStore, Notifier } from '../services/notifier.js';
import { createSandboxPool, type SandboxPoolOptions } from '../services/sandbox-pool.js';
import { MemorySecretStore } from '../services/secrets.js';
import { AutoResumer, MemoryHaltedRuns, startSweeps } from './auto-resume.js';
import { type ExecutorDeps, executeRun } from './executor.js';
import { FlowGate } from './flow-gate.js';
import { processHeld } from './kept.js';
import { MemoryRunStore, MemoryVarStore } from './memory-stores.js';
import {
  type KeyStore,
  type Platform,
  type RejectedPayloads,
  type RunEvent,
  rejectedBytesLimit,
  rejectedRunsLimit,
  scenarioBytesLimit,
  waveBytesLimit,
} from './platform.js';
import { firingRunId, newRun } from './run-record.js';
import { MemoryScenarioStore } from './scenario-store.js';
import { waitForEnd } from './wait.js';

export interface EmbeddedOptions extends LedgerOptions {
  /** Environment for `${env:…}` and FLOWMETER_SMTP_URL (default: process.env). */
  env?: Record<string, string | undefined>;
  /** The Function sandbox's host processes (size default min(2, CPUs)); ignored with `services.sandbox`. */
  sandbox?: SandboxPoolOptions;
  /** Replaces some node services (tests). */
  services?: Partial<NodeServices>;
  now?: () => Date;
  taskBytes?: number;
  onTask?: ExecutorDeps['onTask'];
  /** Called when a run started through `trigger` or `resume` has ended. */
  onRunEnd?: (run: RunRecord) => void;
  /** Waits between notification webhook attempts, ms (tests: short ones). */
  notifyRetryDelaysMs?: number[];
}

export interface Embedded extends Platform {
  readonly ledger: MemoryLedger;
  readonly runs: MemoryRunStore;
  readonly vars: MemoryVarStore;
  readonly scenarios: MemoryScenarioStore;
  deps: ExecutorDeps;
  /** Runs a scenario (not necessarily stored) once, to its end. */
  run(scenario: Scenario, payload: unknown, opts?: { tenant?: string; trigger?: TriggerInfo }): Promise<RunRecord>;
  /** Continues a halted run to its end. */
  resumeRun(tenant: string, runId: string): Promise<RunRecord>;
  /** Auto-resume of runs halted for quota (runs started through `trigger`, `fire` or `resume`). */
  autoResume: AutoResumer;
}

/** The memory run store, publishing the same events as the Redis one. */
class EventfulRunStore extends MemoryRunStore {
  constructor(private readonly events: EventEmitter) {
    super();
  }
  override async checkpoint(run: RunRecord, tasks: TaskRecord[]): Promise<void> {
    await super.checkpoint(run);
    if (tasks.length) this.emit(run.tenant, [{ type: 'tasks', runId: run.runId, scenarioId: run.scenarioId, tasks }]);
  }
  override async finish(run: RunRecord, tasks: TaskRecord[]): Promise<void> {
    await super.finish(run);
    const events: RunEvent[] = [];
    if (tasks.length) events.push({ type: 'tasks', runId: run.runId, scenarioId: run.scenarioId, tasks });
    events.push({ type: 'run', runId: run.runId, scenarioId: run.scenarioId, status: run.status, actions: run.actions });
    this.emit(run.tenant, events);
  }
  private emit(tenant: string, events: RunEvent[]): void {
    if (this.events.listenerCount(tenant) === 0) return;
    for (const e of events) this.events.emit(tenant, structuredClone(e));
  }
}

/** Idempotency keys of triggers in memory: tenant + key → run id, for 24 h (create.lua's twin). */
class IdempotencyKeys {
  private readonly keys = new Map<string, { runId: string; until: number }>();
  constructor(private readonly now: () => number) {}
  get(tenant: string, key: string): string | null {
    const hit = this.keys.get(`${tenant}\n${key}`);
    return hit && hit.until > this.now() ? hit.runId : null;
  }
  set(tenant: string, key: string, runId: string): void {
    const now = this.now();
    if (this.keys.size >= 10_000) for (const [k, v] of this.keys) if (v.until <= now) this.keys.delete(k);
    this.keys.set(`${tenant}\n${key}`, { runId, until: now + 86_400_000 });
  }
}

export function createEmbedded(opts: EmbeddedOptions = {}): Embedded {
  const env = opts.env ?? process.env;
  const events = new EventEmitter().setMaxListeners(0);
  let autoResume: AutoResumer | null = null;
  let notifier: Notifier | null = null;
  const ledger = new MemoryLedger({
    ...opts,
    onAlert: (a) => {
      opts.onAlert?.(a);
      notifier?.notify(a.tenant, 'quota.alert', new Date(a.at), { threshold: a.threshold, used: a.used, limit: a.limit }, a.period);
    },
    onAllowanceRaised: async (tenant, at) => {
      await opts.onAllowanceRaised?.(tenant, at);
      await autoResume?.kick(tenant);
    },
  });
  const runs = new EventfulRunStore(events);
  const vars = new MemoryVarStore();
  const scenarios = new MemoryScenarioStore(scenarioBytesLimit(env));
  processHeld.limit = waveBytesLimit(env);
  const sandbox = opts.services?.sandbox ?? createSandboxPool(opts.sandbox);
  const mail = opts.services?.mail ?? createMailSender(env.FLOWMETER_SMTP_URL);
  const services: NodeServices = {
    sandbox,
    mail,
    env: (name) => env[name],
    fetch: globalThis.fetch,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    ...opts.services,
  };
  // Set through the API of `dev`, else FLOWMETER_SECRET_<NAME> (SPEC §9).
  const secrets = new MemorySecretStore(env);
  const rejectedLimit = rejectedBytesLimit(env);
  const rejectedUsed = new Map<string, number>();
  const rejectedCount = new Map<string, number>();
  const rejected: RejectedPayloads = {
    maxRecords: rejectedRunsLimit(env),
    async admit(tenant, period, bytes) {
      const key = `${tenant} ${period}`;
      const used = (rejectedUsed.get(key) ?? 0) + bytes;
      if (used > rejectedLimit) return false;
      rejectedUsed.set(key, used);
      return true;
    },
    async count(tenant, period) {
      const key = `${tenant} ${period}`;
      const n = (rejectedCount.get(key) ?? 0) + 1;
      rejectedCount.set(key, n);
      return n;
    },
    // In memory nothing outlives the process: there is nothing to expire.
    async expire() {},
  };
  const deps: ExecutorDeps = {
    meter: ledger,
    runs,
    vars,
    services,
    secrets: (t, names) => secrets.read(t, names),
    now: opts.now,
    taskBytes: opts.taskBytes,
    onTask: opts.onTask,
  };
  const inFlight = new Set<Promise<unknown>>();
  const idempotent = new IdempotencyKeys(() => (opts.now?.() ?? new Date()).getTime());
  const keyHashes = new Map<string, { tenant: string; id: string; createdAt: string; lastUsedAt: string | null }>();

  const keys: KeyStore = {
    async create(tenant) {
      const key = newApiKey();
      keyHashes.set(apiKeyHash(key), { tenant, id: apiKeyId(key), createdAt: new Date().toISOString(), lastUsedAt: null });
      return key;
    },
    async resolve(key) {
      const k = keyHashes.get(apiKeyHash(key));
      if (!k) return null;
      k.lastUsedAt = new Date().toISOString();
      return k.tenant;
    },
    async list(tenant) {
      return [...keyHashes.values()].filter((k) => k.tenant === tenant).map(({ id, createdAt, lastUsedAt }) => ({ id, createdAt, lastUsedAt }));
    },
    async revoke(id, tenant) {
      for (const [hash, k] of keyHashes) {
        if (k.id !== id || (tenant !== undefined && k.tenant !== tenant)) continue;
        keyHashes.delete(hash);
        return k.tenant;
      }
      return null;
    },
  };

  /** Flow control: runs over a tenant's or scenario's limit wait here (SPEC §10). */
  const gate = new FlowGate();
  async function gated(run: RunRecord, scenario: Scenario, exec: () => Promise<RunRecord>): Promise<RunRecord> {
    const quota = await ledger.getQuota(run.tenant);
    const limits = { tenantConcurrency: quota.concurrency ?? undefined, scenarioConcurrency: scenario.concurrency, throttle: scenario.throttle };
    return gate.run(run.tenant, run.scenarioId, limits, exec);
  }

  /** Executes in the background; the run's record holds its outcome. `resumed`: a resume. */
  function start(p: Promise<RunRecord>, resumed = false): void {
    const ended = async (run: RunRecord) => {
      opts.onRunEnd?.(run);
      await autoResume?.ended(run, resumed).catch((err) => process.stderr.write(`flowmeter: auto-resume: ${(err as Error).message}\n`));
    };
    const tracked = p.then(ended, (err) => process.stderr.write(`flowmeter: run crashed: ${(err as Error).message}\n`));
    inFlight.add(tracked);
    void tracked.finally(() => inFlight.delete(tracked));
  }

  async function resumeRun(tenant: string, runId: string): Promise<RunRecord> {
    const stored = await runs.load(tenant, runId);
    if (!stored) throw new FlowError('NOT_FOUND', `no run ${runId} for tenant ${tenant}`);
    if (stored.run.status !== 'halted' || !stored.run.pending)
      throw new FlowError('RUN_NOT_HALTED', `run ${runId} is ${stored.run.status}; only a halted run can be resumed`);
    stored.run.status = 'queued';
    await runs.checkpoint(stored.run, []);
    return executeRun(stored.scenario, stored.run, deps);
  }

  const notifications = new MemoryNotificationStore();
  notifier = new Notifier({ ledger, store: notifications, mail, retryDelaysMs: opts.notifyRetryDelaysMs });

  const platform: Embedded = {
    mode: 'embedded',
    ledger,
    runs,
    vars,
    scenarios,
    keys,
    deps,
    notifier,
    notifications,
    tenantEnv: null,
    secrets,
    rejected,
    get autoResume() {
      return autoResume!;
    },
    async run(scenario, payload, o = {}) {
      const run = newRun(scenario, o.tenant ?? 'default', o.trigger ?? { type: 'manual' });
      await runs.create(run, scenario, payload);
      return executeRun(scenario, run, deps, payload);
    },
    resumeRun,
    async trigger(tenant, scenarioId, payload, trigger, o = {}) {
      const scenario = await scenarios.get(tenant, scenarioId);
      if (!scenario) throw new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(scenarioId)} for tenant ${tenant}`);
      const run = newRun(scenario, tenant, trigger);
      checkPayload(payload); // before its idempotency key is taken (runs.create checks it too)
      if (o.idempotencyKey !== undefined) {
        // Checked and taken in one step (no await between), like create.lua's SET NX.
        const first = idempotent.get(tenant, o.idempotencyKey);
        if (first) return (await runs.get(tenant, first, { limit: 0 })) ?? { ...run, runId: first };
        idempotent.set(tenant, o.idempotencyKey, run.runId);
      }
      await runs.create(run, scenario, payload);
      const queued = structuredClone(run);
      start(gated(run, scenario, () => executeRun(scenario, run, deps, payload)));
      return queued;
    },
    async idempotentRun(tenant, idempotencyKey) {
      return idempotent.get(tenant, idempotencyKey);
    },
    async fire(tenant, scenarioId, payload, trigger, instant) {
      const scenario = await scenarios.get(tenant, scenarioId);
      if (!scenario) throw new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(scenarioId)} for tenant ${tenant}`);
      const run = newRun(scenario, tenant, trigger, firingRunId(tenant, scenarioId, instant));
      const created = await runs.create(run, scenario, payload);
      const copy = structuredClone(run);
      if (created) start(gated(copy, scenario, () => executeRun(scenario, copy, deps, payload)));
      return { run, created };
    },
    async resume(tenant, runId) {
      const stored = await runs.get(tenant, runId);
      if (!stored) throw new FlowError('NOT_FOUND', `no run ${runId} for tenant ${tenant}`);
      if (stored.status !== 'halted') throw new FlowError('RUN_NOT_HALTED', `run ${runId} is ${stored.status}; only a halted run can be resumed`);
      const scenario = (await runs.load(tenant, runId))?.scenario;
      start(scenario ? gated(stored, scenario, () => resumeRun(tenant, runId)) : resumeRun(tenant, runId), true);
    },
    async subscribe(tenant, onEvent, o) {
      const listener = o?.runsOnly ? (e: RunEvent) => e.type === 'run' && onEvent(e) : onEvent;
      events.on(tenant, listener);
      return () => void events.off(tenant, listener);
    },
    waitFor(tenant, runId, begin, timeoutMs = 300_000) {
      return waitForEnd({ subscribe: platform.subscribe, get: (t, id) => runs.get(t, id) }, tenant, runId, begin, timeoutMs);
    },
    async queueDepth() {
      return inFlight.size;
    },
    async close() {
      clearInterval(sweep);
      // Runs ending may resume others: wait until none is in flight.
      while (inFlight.size) await Promise.allSettled([...inFlight]);
      if (!opts.services?.sandbox && 'dispose' in sandbox) await (sandbox as { dispose(): Promise<void> }).dispose();
      if (!opts.services?.mail && 'close' in mail) (mail as { close(): void }).close();
    },
  };
  autoResume = new AutoResumer(new MemoryHaltedRuns(ledger), {
    resume: (t, id) => platform.resume(t, id),
    now: opts.now,
    onQuotaHalt: (run) =>
      notifier?.notify(run.tenant, 'run.halted', opts.now?.() ?? new Date(), { runId: run.runId, scenarioId: run.scenarioId, actions: run.actions }),
  });
  const sweep = startSweeps({
    autoResume: () => autoResume,
    tenants: () => scenarios.tenants(),
    notifyResets: (ts, at) => notifier?.sweepResets(ts, at),
    now: opts.now,
  });
  return platform;
}
