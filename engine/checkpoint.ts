/**
 * Writing a run's progress: the tasks recorded since the last checkpoint (in their stored form)
 * with the billing they spent, atomically where the store can.
 */
import type { RunRecord, TaskRecord } from '../core/types.js';
import type { Settlement } from '../metering/meter.js';
import { DEFAULT_TASK_BYTES, storedTask } from './task-log.js';
import type { ExecutorDeps, Work } from './work.js';

/**
 * Tasks after which a running run is checkpointed (or after `checkpointMs`, whichever comes
 * first). A crash makes the run do at most that much again. Measured on one run of a
 * 10,000-item loop (bench `long`): 128 gives 28% more actions/s than 64 (fewer, larger Lua
 * calls and socket writes), with no change in a quiet tenant's p99 behind another tenant's
 * backlog of 200-item loop runs (bench `noisy`); 256 was faster still but made that p99 worse
 * (longer Lua calls to wait behind in Redis).
 */
export const CHECKPOINT_EVERY = 128;

/** Writes progress and its billing: atomically where the store can, else billing first. */
export async function store(deps: ExecutorDeps, run: RunRecord, tasks: TaskRecord[], settlement: Settlement | null, ended: boolean): Promise<void> {
  if (deps.runs.checkpointAndSettle) return deps.runs.checkpointAndSettle(run, tasks, settlement, ended);
  // Billing before the task log: after a crash between the two, the tasks run again and
  // their keys are already billed, so nothing is billed twice or lost.
  if (settlement) await deps.meter.settle(settlement);
  if (ended) await deps.runs.finish(run, tasks);
  else await deps.runs.checkpoint(run, tasks);
}

/**
 * The stored form of the tasks recorded since the last checkpoint. They replace their live
 * forms at the tail of `run.tasks`, so each task is capped and scrubbed exactly once.
 */
export function storeFresh(w: Work): TaskRecord[] {
  const max = w.deps.taskBytes ?? DEFAULT_TASK_BYTES;
  const stored = w.fresh.map((t) => storedTask(t, max, w.redactor));
  if (w.deps.keepTasks === false) w.run.tasks = [];
  else w.run.tasks.splice(w.run.tasks.length - stored.length, stored.length, ...stored);
  w.fresh = [];
  // Outputs are stored as they come (the store appends new ones): scrub them now.
  if (w.redactor.size > 0) {
    for (let i = w.outputsScrubbed; i < w.run.outputs.length; i++) w.run.outputs[i] = w.redactor.redactDeep(w.run.outputs[i]!);
  }
  w.outputsScrubbed = w.run.outputs.length;
  return stored;
}

export async function checkpoint(w: Work): Promise<void> {
  await store(w.deps, w.run, storeFresh(w), w.budget.settlement(false, w.now()), false);
  w.lastCheckpoint = performance.now();
}
