/**
 * A Platform is Flowmeter as the server, scheduler and CLI see it: stores, ledger, and a way
 * to start runs. `createProduction` (Redis + BullMQ) and `createEmbeddedPlatform` (in memory,
 * in process) both provide one, so `serve`, `scheduler` and `dev` work on either.
 */

import { FlowError } from '../core/errors.js';
import type { RunRecord, TaskRecord, TriggerInfo } from '../core/types.js';
import type { Ledger } from '../metering/ledger.js';
import type { KeyInfo } from '../services/api-keys.js';
import type { NotificationStore, Notifier } from '../services/notifier.js';
import type { SecretStore } from '../services/secrets.js';
import { defaultWaveChars } from './kept.js';
import type { ScenarioStore } from './scenario-store.js';
import type { RunStore, VarStore } from './stores.js';

/** A run event, as the live tail shows it. */
export type RunEvent =
  | { type: 'tasks'; runId: string; scenarioId: string; tasks: TaskRecord[] }
  | { type: 'run'; runId: string; scenarioId: string; status: RunRecord['status']; actions: number };

/** API keys: stored only as SHA-256 hashes. */
export interface KeyStore {
  /** A new random key for the tenant (returned once, never stored in clear). */
  create(tenant: string): Promise<string>;
  /** The tenant a key belongs to, or null (a revoked key at once, in every process: no cache). */
  resolve(key: string): Promise<string | null>;
  /** The tenant's keys: id, created, last used; never a key. */
  list(tenant: string): Promise<KeyInfo[]>;
  /** Revokes key `id` (of `tenant` when given); resolves with its tenant, or null when there is none. */
  revoke(id: string, tenant?: string): Promise<string | null>;
}

/** Rejected webhooks keep their payload 7 days, within a byte budget per tenant per period. */
export interface RejectedPayloads {
  /** Takes `bytes` from the tenant's budget for `period`; false (nothing taken) when it would pass it. */
  admit(tenant: string, period: string, bytes: number): Promise<boolean>;
  /** Counts one more refused trigger of the tenant in `period`; resolves to the count, this one included. */
  count(tenant: string, period: string): Promise<number>;
  /** Refused triggers of a tenant recorded as runs per period (FLOWMETER_REJECTED_RUNS); past it they are only counted. */
  readonly maxRecords: number;
  /** Shortens an ended run's retention to `seconds`. */
  expire(tenant: string, runId: string, seconds: number): Promise<void>;
}

/** A byte count from the environment variable `name`, or `fallback` when unset; a bad value throws one line. */
function bytesSetting(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FlowError('INVALID_INPUT', `${name} must be a whole number of bytes, got ${JSON.stringify(v)}`);
  return n;
}

/** `FLOWMETER_REJECTED_RUNS` (default 10,000): refused triggers recorded as runs per tenant and period; a bad value throws one line. */
export function rejectedRunsLimit(env: Record<string, string | undefined>): number {
  const v = env.FLOWMETER_REJECTED_RUNS;
  if (v === undefined || v === '') return 10_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FlowError('INVALID_INPUT', `FLOWMETER_REJECTED_RUNS must be a whole number, got ${JSON.stringify(v)}`);
  return n;
}

/** `FLOWMETER_REJECTED_BYTES` (default 10 MB); a bad value throws one line. */
export function rejectedBytesLimit(env: Record<string, string | undefined>): number {
  return bytesSetting(env, 'FLOWMETER_REJECTED_BYTES', 10 * 1024 * 1024);
}

/** Bytes of scenario versions a tenant may keep when nothing says otherwise: 64 MB. */
export const DEFAULT_SCENARIO_BYTES = 64 * 1024 * 1024;

/** `FLOWMETER_SCENARIO_BYTES` (default 64 MB): bytes of scenario versions a tenant may keep; a bad value throws one line. */
export function scenarioBytesLimit(env: Record<string, string | undefined>): number {
  return bytesSetting(env, 'FLOWMETER_SCENARIO_BYTES', DEFAULT_SCENARIO_BYTES);
}

/**
 * `FLOWMETER_WAVE_BYTES` (default: 64 MB, or a 32nd of the heap's limit when less): JSON of
 * node results the runs of one process may hold at once before each wave is held to its share
 * (engine/kept.ts); a bad value throws one line.
 */
export function waveBytesLimit(env: Record<string, string | undefined>): number {
  return bytesSetting(env, 'FLOWMETER_WAVE_BYTES', defaultWaveChars());
}

/** What a subscriber receives. */
export interface SubscribeOptions {
  /** Run events only (a run's end): task events are not even delivered to this process. */
  runsOnly?: boolean;
}

/** How a run is started. */
export interface TriggerOptions {
  /**
   * Makes the trigger idempotent for 24 h (SPEC §10): the caller's key, naming the route target
   * and the client's Idempotency-Key; keys are per tenant.
   */
  idempotencyKey?: string;
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
  /**
   * The `${env:NAME}` names tenants may deploy (SPEC §9, `FLOWMETER_TENANT_ENV`); null: any
   * (embedded mode, a builder's own machine).
   */
  readonly tenantEnv: ReadonlySet<string> | null;
  /** The byte budget of rejected webhooks' payloads (SPEC §9). */
  readonly rejected: RejectedPayloads;
  /** Tenants' credentials (`${secret:NAME}`), encrypted at rest in production. */
  readonly secrets: SecretStore;
  /**
   * Persists a new run of a stored scenario, then starts it (queue or in process). With an
   * idempotency key already used by the tenant in the last 24 h, starts nothing and resolves
   * with the run that key started.
   */
  trigger(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo, opts?: TriggerOptions): Promise<RunRecord>;
  /** The run an idempotency key of the tenant started in the last 24 h, or null. */
  idempotentRun(tenant: string, idempotencyKey: string): Promise<string | null>;
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
