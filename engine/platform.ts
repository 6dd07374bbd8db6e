/**
 * A Platform is Flowmeter as the server, scheduler and CLI see it: stores, ledger, and a way
 * to start runs. `createProduction` (Redis + BullMQ) and `createEmbeddedPlatform` (in memory,
 * in process) both provide one, so `serve`, `scheduler` and `dev` work on either.
 */
import type { Ledger } from '../metering/ledger.js';
import type { RunStore, VarStore } from './stores.js';
import type { ScenarioStore } from './scenario-store.js';
import type { RunRecord, TaskRecord, TriggerInfo } from './types.js';

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

/** Deduplication of firings: true for the first caller of a (tenant, scenario, instant). */
export interface FiringLog {
  claim(tenant: string, scenarioId: string, instant: Date): Promise<boolean>;
}

export interface Platform {
  readonly mode: 'embedded' | 'redis';
  readonly ledger: Ledger;
  readonly runs: RunStore;
  readonly vars: VarStore;
  readonly scenarios: ScenarioStore;
  readonly keys: KeyStore;
  readonly firings: FiringLog;
  /** Persists a new run of a stored scenario, then starts it (queue or in process). */
  trigger(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo): Promise<RunRecord>;
  /** Continues a halted run. Throws RUN_NOT_HALTED / NOT_FOUND. */
  resume(tenant: string, runId: string): Promise<void>;
  /** Task and run events of a tenant until the returned function is called. */
  subscribe(tenant: string, onEvent: (e: RunEvent) => void): Promise<() => void>;
  /** Runs `start`, then resolves with the run record once the run has ended. */
  waitFor(tenant: string, runId: string, start: () => Promise<void>, timeoutMs?: number): Promise<RunRecord>;
  /** Jobs waiting or running (0 in process). */
  queueDepth(): Promise<number>;
  close(): Promise<void>;
}
