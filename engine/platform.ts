/**
 * A Platform is Flowmeter as the server, scheduler and CLI see it: stores, ledger, and a way
 * to start runs. `createProduction` (Redis + BullMQ) and `createEmbeddedPlatform` (in memory,
 * in process) both provide one, so `serve`, `scheduler` and `dev` work on either.
 */
import type { Ledger } from '../metering/ledger.js';
import type { RunStore, VarStore } from './stores.js';
import type { ScenarioStore } from './scenario-store.js';
import type { RunRecord, TaskRecord, TriggerInfo } from '../core/types.js';
import type { Notifier, NotificationStore } from '../services/notifier.js';

/** A run event, as the live tail shows it. */
export type RunEvent =
  | { type: 'tasks'; runId: string; scenarioId: string; tasks: TaskRecord[] }
  | { type: 'run'; runId: string; scenarioId: string; status: RunRecord['status']; actions: number };

/** API keys: stored only as SHA-256 hashes. */
export interface KeyStore {
  /** A new random key for the tenant (returned once, never stored in clear). */
  create(tenant: string): Promise<string>;
  /** The tenant a key belongs to, or null. */
  resolve(key: string): Promise<string | null>;
}


/** What a subscriber receives. */
export interface SubscribeOptions {
  /** Run events only (a run's end): task events are not even delivered to this process. */
  runsOnly?: boolean;
}

export interface Platform {
  readonly mode: 'embedded' | 'redis';
  readonly ledger: Ledger;
  readonly runs: RunStore;
  readonly vars: VarStore;
  readonly scenarios: ScenarioStore;
  readonly keys: KeyStore;
  /** Quota notifications (SPEC §11) and their signing secrets and delivery logs. */
  readonly notifier?: Notifier;
  readonly notifications?: NotificationStore;
  /** Persists a new run of a stored scenario, then starts it (queue or in process). */
  trigger(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo): Promise<RunRecord>;
  /**
   * Starts the run of a cron instant, at most once however many schedulers call it, and
   * idempotently: the run id is derived from (tenant, scenario, instant), the run is persisted
   * only if absent, and it is (re)enqueued under that id, so a caller that died between the
   * two steps leaves nothing lost for the next caller. `created` says whether this call made it.
   */
  fire(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo, instant: Date): Promise<{ run: RunRecord; created: boolean }>;
  /** Continues a halted run. Throws RUN_NOT_HALTED / NOT_FOUND. */
  resume(tenant: string, runId: string): Promise<void>;
  /** Task and run events of a tenant (or its run events only) until the returned function is called. */
  subscribe(tenant: string, onEvent: (e: RunEvent) => void, opts?: SubscribeOptions): Promise<() => void>;
  /** Runs `start`, then resolves with the run record once the run has ended. */
  waitFor(tenant: string, runId: string, start: () => Promise<void>, timeoutMs?: number): Promise<RunRecord>;
  /** Queue jobs waiting or running, each one run or a batch of runs (in-flight runs in process). */
  queueDepth(): Promise<number>;
  close(): Promise<void>;
}
