/**
 * The small interfaces through which the executor reaches its state. Each has an in-memory
 * implementation (the embedded default) and a Redis one (production); both pass the same
 * contract tests.
 */
import type { RunRecord, RunStatus, TaskRecord } from './types.js';
import type { MeterName } from './define-node.js';
import type { Scenario } from './schema.js';

/** A request for a batch of actions from the tenant's period pool, for one billable run. */
export interface LeaseRequest {
  tenant: string;
  runId: string;
  /** How many actions the run would like to hold. */
  want: number;
  at: Date;
  /** The run's owner token (production): a worker that lost the run gets nothing. */
  owner?: string;
}

export interface LeaseResult {
  /** Actions granted (0..want). In `allow` mode every request is granted in full. */
  granted: number;
  /** The period the grant belongs to (YYYY-MM in the tenant's timezone). */
  period: string;
  /** Whether the granted actions are held against the limit (halt mode) or free (allow mode). */
  held: boolean;
  /** With granted 0: whether other runs still hold unused actions (then wait, don't halt). */
  othersHold: boolean;
}

/** One billed task: its key, whether it is the trigger's action, and its tenant-local date. */
export interface SettleEntry {
  key: string;
  trigger: boolean;
  date: string;
}

/**
 * What a run spent since its last settlement: each entry is billed once (a key already billed
 * is skipped), `heldUsed` held actions leave the lease, `release` unused held actions go back.
 */
export interface Settlement {
  tenant: string;
  runId: string;
  scenarioId: string;
  billable: boolean;
  period: string;
  entries: SettleEntry[];
  heldUsed: number;
  release: number;
  at: Date;
}

/**
 * The meter: the tenant's quota, spent in batches. A run leases actions (held against the
 * limit, so the limit is never passed), spends them locally, and settles what it spent with
 * its checkpoints: every task key is billed exactly once.
 */
export interface Meter {
  lease(req: LeaseRequest): LeaseResult | Promise<LeaseResult>;
  settle(s: Settlement): void | Promise<void>;
  /** The period key of an instant for the tenant (its timezone). */
  periodOf(tenant: string, at: Date): { period: string; date: string } | Promise<{ period: string; date: string }>;
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
  /** The scenario's stored variables, when they were loaded with the run. */
  vars?: Record<string, unknown>;
  /** Actions leased for the run when it was claimed (its budget starts with them). */
  lease?: LeaseResult;
}

/** Run records with their task logs. */
export interface RunStore {
  /**
   * Persists a new run with its scenario snapshot and payload (before anything enqueues it).
   * Idempotent: a run that exists already is left as it is, and false is returned.
   */
  create(run: RunRecord, scenario: Scenario, payload: unknown): Promise<boolean>;
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
  /**
   * Optional: settle billing and checkpoint in one atomic step (Redis). Without it the
   * executor settles through the Meter first, then checkpoints: a crash between the two
   * re-runs tasks that are already billed, which settlement skips.
   */
  checkpointAndSettle?(run: RunRecord, tasks: TaskRecord[], settlement: Settlement | null, ended: boolean): Promise<void>;
  /** Optional: the owner token of a run this process has claimed. */
  ownerOf?(runId: string): string | undefined;
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
