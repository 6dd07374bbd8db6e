/**
 * The small interfaces through which the executor reaches its state. Each has an in-memory
 * implementation (the embedded default) and a Redis one (production); both pass the same
 * contract tests.
 */
import type { RunRecord, RunState, RunStatus, TaskRecord } from './types.js';
import type { MeterName } from './define-node.js';
import type { Scenario } from './schema.js';

export interface ReserveRequest {
  tenant: string;
  runId: string;
  scenarioId: string;
  /** Unique per task of the run: the same key is never billed twice. */
  taskKey: string;
  /** Whether the action consumes the quota (false: counted under nonBillable). */
  billable: boolean;
  /** The trigger's action: on success the run is counted (meter `runs`, per-scenario runs). */
  trigger?: boolean;
  at: Date;
}

export type ReserveResult = { ok: true } | { ok: false; code: 'QUOTA_EXHAUSTED' };

/** The meter: reserves actions against the tenant's quota, and counts informational meters. */
export interface Meter {
  reserve(req: ReserveRequest): ReserveResult | Promise<ReserveResult>;
  count(tenant: string, name: MeterName | 'runs', amount: number, at: Date): void | Promise<void>;
}

export interface RunFilter {
  scenarioId?: string;
  status?: RunStatus;
  limit?: number;
}

export type RunSummary = Omit<RunRecord, 'tasks' | 'pending' | 'outputs'> & { outputCount: number };

/** What a worker needs to execute a stored run. */
export interface StoredRun {
  run: RunRecord;
  scenario: Scenario;
  payload: unknown;
}

/** Run records with their task logs. */
export interface RunStore {
  /** Persists a new run with its scenario snapshot and payload (before anything enqueues it). */
  create(run: RunRecord, scenario: Scenario, payload: unknown): Promise<void>;
  /**
   * Durable progress: the stored tasks completed since the last checkpoint (appended in order)
   * and the run record with `pending` state, written at once.
   */
  checkpoint(run: RunRecord, tasks: TaskRecord[]): Promise<void>;
  /** The run has ended (succeeded, failed, halted or rejected): the last tasks and the record. */
  finish(run: RunRecord, tasks: TaskRecord[]): Promise<void>;
  get(tenant: string, runId: string): Promise<RunRecord | null>;
  /** The run with its scenario snapshot and payload, for executing or resuming it. */
  load(tenant: string, runId: string): Promise<StoredRun | null>;
  list(tenant: string, filter?: RunFilter): Promise<RunSummary[]>;
}

/** A scenario's global variables; they persist between runs. */
export interface VarStore {
  load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>>;
  set(tenant: string, scenarioId: string, name: string, value: unknown): Promise<void>;
}

export function summarize(run: RunRecord): RunSummary {
  const { tasks: _t, pending: _p, outputs, ...rest } = run;
  return { ...rest, outputCount: outputs.length };
}
