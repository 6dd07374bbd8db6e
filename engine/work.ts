/**
 * A run's working set while the executor runs it (`Work`), one node execution in a wave
 * (`Slot`), and what turns a node's result into queued work and recorded tasks.
 */

import type { Redactor } from '../core/redact.js';
import type { ConnectionUse, ErrorInfo, RunRecord, RunState, TaskRecord, WorkItem } from '../core/types.js';
import type { Meter } from '../metering/meter.js';
import type { MeterName, NodeContext, NodeResult, NodeServices } from '../nodes/define.js';
import type { CompiledNode, CompiledScenario } from '../scenario/compile.js';
import type { Budget, BudgetOptions } from './budget.js';
import { deliver, openFrame, push } from './frames.js';
import type { SecretLoader } from './secrets.js';
import type { RunStore, VarStore } from './stores.js';

export interface ExecutorDeps {
  meter: Meter;
  runs: RunStore;
  vars: VarStore;
  services: NodeServices;
  /** The clock (injectable for tests of billing periods). */
  now?: () => Date;
  /** Cap on a task's stored input/output, in bytes (default 16 KB). */
  taskBytes?: number;
  /** Called after each task is recorded (live tail, metrics). */
  onTask?: (run: RunRecord, task: TaskRecord) => void;
  /** Checkpoint (and settle billing) after this many tasks… (default 128, CHECKPOINT_EVERY) */
  checkpointEvery?: number;
  /** …or after this many ms, whichever comes first (default 200). */
  checkpointMs?: number;
  /** The tenant's stored credentials, for `${secret:NAME}` (none without it). */
  secrets?: SecretLoader;
  /** Lease sizes and waiting of the run's budget. */
  budget?: BudgetOptions;
  /**
   * Keep every task in the returned run record (default true). A worker whose store holds the
   * task log sets false: stored tasks then leave memory at each checkpoint.
   */
  keepTasks?: boolean;
  /**
   * When it returns true (a worker told to stop), the run checkpoints after its current wave and
   * `executeRun` throws WORKER_STOPPING: the run is left as of that checkpoint, to continue elsewhere.
   */
  stopping?: () => boolean;
}

/** A running run's working set, kept apart from the record until it is stored. */
export interface Work {
  run: RunRecord;
  state: RunState;
  compiled: CompiledScenario;
  vars: Record<string, unknown>;
  redactor: Redactor;
  deps: ExecutorDeps;
  /** The services this run's nodes see (`secret` bound to the run's tenant). */
  services: NodeServices;
  now: () => Date;
  /** Tasks recorded since the last checkpoint. */
  fresh: TaskRecord[];
  budget: Budget;
  lastCheckpoint: number;
  /** Outputs before this index are already scrubbed of secrets. */
  outputsScrubbed: number;
  failed: ErrorInfo | null;
  halted: boolean;
  /** The last instant (ms) turned into an ISO string, and that string. */
  isoAt?: number;
  iso?: string;
}

/** `at.toISOString()`, computed once per millisecond (a run's tasks often share one). */
export function isoOf(w: Work, at: Date): string {
  const t = at.getTime();
  if (t !== w.isoAt || w.iso === undefined) {
    w.isoAt = t;
    w.iso = at.toISOString();
  }
  return w.iso;
}

/** The default clock: one Date per millisecond, shared by the calls made within it. */
export function clock(): () => Date {
  let last = new Date();
  return () => {
    const t = Date.now();
    if (t !== last.getTime()) last = new Date(t);
    return last;
  };
}

/** One node execution (or loop iteration) of a wave. */
export interface Slot {
  item: WorkItem;
  node: CompiledNode;
  task: TaskRecord;
  started: number;
  result?: NodeResult | Promise<NodeResult>;
  error?: unknown;
  vars: Array<[string, unknown]>;
}

export function record(w: Work, task: TaskRecord): void {
  w.run.tasks.push(task);
  w.fresh.push(task);
  w.deps.onTask?.(w.run, task);
}

export function route(w: Work, slot: Slot, result: NodeResult): void {
  const { state, compiled } = w;
  const { item, node, task } = slot;
  switch (result.kind) {
    case 'emit': {
      task.output = result.output ?? (result.messages.length === 1 ? result.messages[0] : result.messages);
      const next = node.config.next;
      if (next) for (const msg of result.messages) push(state, { node: next, msg, frame: item.frame, caught: item.caught });
      else if (node.def.emitsOutputs) deliver(state, item.frame, result.messages, w.run.outputs);
      if (result.messages.length === 0) task.status = 'dropped';
      break;
    }
    case 'route':
      task.output = result.routes.map((r) => r.to);
      if (result.dropped) task.status = 'dropped';
      for (const r of result.routes) push(state, { node: r.to, msg: r.msg, frame: item.frame, caught: item.caught });
      break;
    case 'iterate':
      task.output = { items: result.items.length };
      openFrame(state, item, { kind: 'loop', items: result.items, collect: Boolean(result.collect), over: result.over }, compiled);
      break;
    case 'sequence':
      task.output = { steps: result.steps };
      openFrame(state, item, { kind: 'seq', steps: result.steps }, compiled);
      break;
  }
}

export function context(w: Work, slot: Slot, admit?: NodeContext<never>['admit']): NodeContext<never> {
  const { run, deps, redactor } = w;
  const logs: string[] = [];
  return {
    node: slot.node.config as never,
    runId: run.runId,
    tenant: run.tenant,
    scenario: w.compiled.scenario,
    taskKey: String(slot.task.seq),
    vars: w.vars,
    setVar: (name, value) => slot.vars.push([name, value]),
    log: (line) => {
      logs.push(line);
      slot.task.logs = logs;
    },
    secret: (value) => redactor.add(value),
    meter: (name: MeterName, amount: number, conn?: ConnectionUse) => {
      const counted = deps.meter.count(run.tenant, name, amount, w.now(), conn);
      // Informational meters never fail a node; a store error here is logged by the store.
      if (counted instanceof Promise) counted.catch(() => undefined);
    },
    services: w.services,
    scope: (msg) => ({ msg, vars: w.vars }),
    admit,
  };
}
