/**
 * Core vocabulary of Flowmeter.
 *
 * - **scenario**: a JSON graph of nodes that a tenant deploys (see `schema.ts`).
 * - **message**: a JSON object flowing along the graph; the trigger creates `{ payload }`.
 * - **run**: one execution of a scenario, from its trigger to its end (`RunRecord`).
 * - **task**: one counted unit of work inside a run: the trigger, one node execution, or one
 *   loop iteration (`TaskRecord`). Every task carries the actions it cost.
 * - **action**: the billable unit: 1 per trigger, per node execution, per loop iteration.
 * - **period**: a tenant's billing month, in the tenant's timezone (`metering/periods.ts`).
 * - **tenant**: the owner of scenarios, runs and a quota.
 */

/** A message: a JSON object. `payload` is the data; `error`, `http`, `loop` are added by nodes. */
export type Message = { [key: string]: unknown };

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'halted' | 'rejected';
export type TaskStatus = 'ok' | 'error' | 'dropped' | 'halted';

/** An error as recorded on a task or a run; `code` is stable (see `errors.ts`). */
export interface ErrorInfo {
  code: string;
  message: string;
  nodeId?: string;
  status?: number;
  /** A Connector's failed response body, capped (HTTP_ERROR). */
  body?: string;
}

/** The `nodeId` of the trigger's task (SPEC §5): no node id starts with `$`. */
export const TRIGGER_NODE = '$trigger';

export interface TaskRecord {
  seq: number;
  nodeId: string;
  type: string;
  status: TaskStatus;
  actions: number;
  startedAt: string;
  durationMs: number;
  input: unknown;
  output: unknown;
  error: ErrorInfo | null;
  /** Set on the tasks of loop iterations. */
  iteration?: number;
  /** Log lines written by a Function node's `log(...)`. */
  logs?: string[];
}

export interface TriggerInfo {
  type: 'manual' | 'cron' | 'webhook' | 'resume';
  /** Test runs are non-billable (`trigger --test`). */
  test?: boolean;
  [key: string]: unknown;
}

export interface RunRecord {
  runId: string;
  scenarioId: string;
  tenant: string;
  status: RunStatus;
  trigger: TriggerInfo;
  startedAt: string | null;
  finishedAt: string | null;
  actions: number;
  error: ErrorInfo | null;
  outputs: Message[];
  tasks: TaskRecord[];
  /** Whether the run's actions consume the quota (false for non-billable scenarios and test runs). */
  billable: boolean;
  /** False when a rejected webhook's payload was not kept (over FLOWMETER_REJECTED_BYTES, SPEC §9). */
  payloadKept?: boolean;
  /** The pending work of a halted (or interrupted) run, from which `resume` continues. */
  pending?: RunState | null;
  /** The scenario version the run executes (SPEC §12); absent for a scenario run from a file. */
  version?: number;
  /** Set on a replay: the run whose trigger payload it was started with. */
  replayOf?: string;
  /** A queued run held by a flow-control limit: which one (SPEC §10), e.g. "tenant concurrency 2 reached". */
  waiting?: string;
  /** The run's task count, when `tasks` holds one page of them (RunStore.get with a TaskPage). */
  taskCount?: number;
}

/** Where a work item lives: the run itself, a loop's body or a sequencer's step. */
export type Frame =
  | { kind: 'root'; open: number }
  | {
      kind: 'loop';
      parent: string;
      node: string;
      input: Message;
      items: unknown[];
      /** The `over` path when it lies in `input` (then `items` need not be stored twice). */
      over?: string;
      index: number;
      collected: unknown[] | null;
      open: number;
      caught: string[];
    }
  | {
      kind: 'seq';
      parent: string;
      node: string;
      input: Message;
      steps: string[];
      index: number;
      open: number;
      caught: string[];
    };

/** A unit of pending work: run `node` on `msg`, or (with `iterate`) start a loop's next iteration. */
export interface WorkItem {
  node: string;
  msg: Message;
  frame: string;
  /** Catch nodes whose path this item is on: they do not catch its failures. */
  caught: string[];
  /** Set for a loop iteration item: the id of the loop frame. */
  iterate?: string;
}

/** The serialisable execution state of a run: enough to resume it exactly. */
export interface RunState {
  items: WorkItem[];
  frames: Record<string, Frame>;
  nextFrame: number;
  nextSeq: number;
  /**
   * How many items at the front of `items` are what is left of a wave a halt interrupted:
   * they run as a wave of their own, before the successors queued behind them, just as they
   * would have had the run never halted.
   */
  partial?: number;
  /** JSON characters of the run's outputs and collected loop payloads so far (engine/kept.ts). */
  kept?: number;
}

/** Informational meters (§3): counted, never billed. */
export type MeterName = 'connectorRequests' | 'connectorBytes' | 'mailsSent';

/** A Connector request through a named scenario connection (per-connection status, SPEC §11). */
export interface ConnectionUse {
  connection: string;
  /** The response status; absent when the request failed on the network or timed out. */
  status?: number;
}

/** A reference from a node to something else, for graph checks. */
export interface NodeRef {
  /** Path inside the node, e.g. `cases.0.next`. */
  path: string;
  kind: 'node' | 'list' | 'table' | 'connection';
  name: string;
  /** `false`: names a node without leading to it (a Catch's scope); else an edge to it. */
  edge?: false;
}
