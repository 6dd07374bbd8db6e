/**
 * The small interfaces through which the executor reaches its state. Each has an in-memory
 * implementation (the embedded default) and a Redis one (production); both pass the same
 * contract tests.
 */
import type { RunRecord, RunState, RunStatus, TaskRecord } from './types.js';
import type { MeterName } from './define-node.js';

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

/** Run records with their task logs. */
export interface RunStore {
  /** Persists a new run (before anything enqueues or executes it). */
  create(run: RunRecord): Promise<void>;
  /** Durable progress: tasks completed since the last checkpoint, and the state to resume from. */
  checkpoint(run: RunRecord, tasks: TaskRecord[], state: RunState | null): Promise<void>;
  /** The run has ended (succeeded, failed, halted or rejected). */
  finish(run: RunRecord): Promise<void>;
  get(tenant: string, runId: string): Promise<RunRecord | null>;
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
