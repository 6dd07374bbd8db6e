/**
 * The small interfaces through which the executor reaches its state. Each has an in-memory
 * implementation (the embedded default) and a Redis one (production); both pass the same
 * contract tests.
 */
import type { RunRecord, RunStatus, TaskRecord } from '../core/types.js';
import type { LeaseResult, Settlement } from '../metering/meter.js';
import type { Scenario } from '../scenario/schema.js';

export interface RunFilter {
  scenarioId?: string;
  status?: RunStatus;
  limit?: number;
}

export type RunSummary = Omit<RunRecord, 'tasks' | 'pending' | 'outputs'> & { outputCount: number };

/** A page of a run's task log: `limit` tasks from the `from`-th (0-based). */
export interface TaskPage {
  from?: number;
  limit: number;
}

/** The tasks of `page` out of `tasks`, and their count. */
export function pageOf(tasks: TaskRecord[], page: TaskPage): TaskRecord[] {
  const from = page.from ?? 0;
  return tasks.slice(from, from + page.limit);
}

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
  /**
   * The run with its task log: all of it, or the page `tasks` names, with `taskCount` then
   * (`{ limit: 0 }`: no tasks, for a caller that wants the record only).
   */
  get(tenant: string, runId: string, tasks?: TaskPage): Promise<RunRecord | null>;
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
/** A scenario's variables, kept across its runs. */
export interface VarStore {
  /** The variables, after storing each declared default that is not set yet. */
  load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>>;
  /**
   * Sets a node's variables at once (its `setVar` calls, in order: the last value of a name
   * wins), or none of them, throwing FUNCTION_ERROR, when the scenario's variables would pass
   * a bound of core/function-limits.ts.
   */
  setMany(tenant: string, scenarioId: string, sets: Array<[string, unknown]>): Promise<void>;
}

export function summarize(run: RunRecord): RunSummary {
  const { tasks: _t, pending: _p, outputs, ...rest } = run;
  return { ...rest, outputCount: outputs.length };
}
