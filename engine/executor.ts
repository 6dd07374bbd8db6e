/**
 * The executor: runs a scenario's graph for one run, reserving every action before it is
 * spent, recording every task, and checkpointing progress. It reaches state only through the
 * interfaces of `stores.ts`, so the embedded and Redis modes share it unchanged.
 * See `engine/README.md` for how a run flows.
 */

import { errorCode, errorMessage, FlowError } from '../core/errors.js';
import { Redactor } from '../core/redact.js';
import type { ErrorInfo, Message, RunRecord, TaskRecord } from '../core/types.js';
import type { LeaseResult } from '../metering/meter.js';
import type { NodeResult } from '../nodes/define.js';
import { compile } from '../scenario/compile.js';
import type { Scenario } from '../scenario/schema.js';
import { Budget } from './budget.js';
import { fused, setsVars } from './chain.js';
import { CHECKPOINT_EVERY, checkpoint, store, storeFresh } from './checkpoint.js';
import { consumed, initialState, nextIteration, push } from './frames.js';
import { keepResult, processHeld, WaveHold, WIDE_WAVE } from './kept.js';
import { runServices } from './secrets.js';
import { rememberTrigger } from './state-codec.js';
import { scrubError } from './task-log.js';
import { triggerMessage } from './trigger-message.js';
import { defineVar, reloadVars, storeVars } from './vars.js';
import { clock, context, type ExecutorDeps, isoOf, record, route, type Slot, type Work } from './work.js';

export type { ExecutorDeps };

/**
 * Executes (or continues) `run`: from its trigger when it has no pending state, else from
 * `run.pending`. Returns the ended run record, already stored.
 */
export async function executeRun(
  scenario: Scenario,
  run: RunRecord,
  deps: ExecutorDeps,
  payload?: unknown,
  loaded: { vars?: Record<string, unknown>; lease?: LeaseResult } = {},
): Promise<RunRecord> {
  const now = deps.now ?? clock();
  const compiled = compile(scenario);
  const redactor = new Redactor();
  // Rebuilt on every execution (first, resumed, recovered, replayed): see secrets.ts.
  const services = await runServices(scenario, run.tenant, deps.services, redactor, deps.secrets);
  run.status = 'running';
  run.startedAt ??= now().toISOString();
  run.error = null;
  let state = run.pending ?? null;
  const fresh: TaskRecord[] = [];
  const budget = new Budget(deps.meter, run, { owner: () => deps.runs.ownerOf?.(run.runId), ...deps.budget }, loaded.lease);
  if (!state) {
    const at = now();
    if (!(await budget.take('1', at, true))) {
      run.status = 'rejected';
      run.error = { code: 'QUOTA_EXHAUSTED', message: `tenant ${run.tenant} has no actions left this period` };
      run.finishedAt = now().toISOString();
      run.pending = null;
      await store(deps, run, [], budget.settlement(true, now()), true);
      return run;
    }
    const msg: Message = triggerMessage(run, payload);
    run.actions = 1;
    run.tasks = [
      {
        seq: 1,
        nodeId: '$trigger',
        type: run.trigger.type,
        status: 'ok',
        actions: 1,
        startedAt: at.toISOString(),
        durationMs: 0,
        input: null,
        output: msg,
        error: null,
      },
    ];
    fresh.push(run.tasks[0]!);
    state = initialState(scenario.start, msg);
    rememberTrigger(state, msg);
  }
  run.pending = state;
  const w: Work = {
    run,
    state,
    compiled,
    redactor,
    deps,
    services,
    now,
    fresh,
    budget,
    lastCheckpoint: performance.now(),
    outputsScrubbed: 0,
    vars: await varsOf(deps, run, scenario, loaded.vars),
    failed: null,
    halted: false,
  };
  for (const t of w.fresh) deps.onTask?.(run, t);

  const every = deps.checkpointEvery ?? CHECKPOINT_EVERY;
  const everyMs = deps.checkpointMs ?? 200;
  while (state.items.length > 0 && !w.failed && !w.halted) {
    if (deps.stopping?.()) {
      await checkpoint(w);
      throw new FlowError('WORKER_STOPPING', `the worker is stopping: run ${run.runId} continues elsewhere from its checkpoint`);
    }
    await wave(w);
    if (state.items.length > 0 && !w.failed && !w.halted && (w.fresh.length >= every || performance.now() - w.lastCheckpoint >= everyMs)) {
      await checkpoint(w);
    }
  }

  if (w.failed) {
    run.status = 'failed';
    run.error = w.failed;
    run.pending = null;
  } else if (w.halted) {
    run.status = 'halted';
    run.error = {
      code: 'QUOTA_EXHAUSTED',
      message: `quota exhausted: tenant ${run.tenant} has no actions left this period; resume the run when actions are available`,
    };
  } else {
    run.status = 'succeeded';
    run.pending = null;
  }
  run.finishedAt = now().toISOString();
  run.error = scrubError(run.error, redactor);
  await budget.drain(); // a lease ahead still in flight is given back with the rest
  w.outputsScrubbed = 0; // secrets registered late may appear in earlier outputs too
  await store(deps, run, storeFresh(w), budget.settlement(true, now()), true);
  return run;
}

/**
 * The scenario's variables: the ones loaded with the run when every default is among them
 * (the usual case after the first run), else from the store, which records missing defaults.
 */
async function varsOf(deps: ExecutorDeps, run: RunRecord, scenario: Scenario, stored?: Record<string, unknown>): Promise<Record<string, unknown>> {
  const defaults = scenario.variables ?? {};
  if (stored && Object.keys(defaults).every((name) => name in stored)) return stored;
  return deps.vars.load(run.tenant, run.scenarioId, defaults);
}

/**
 * One wave: every item queued now is reserved (in order, stopping at the first refusal), the
 * reserved ones execute concurrently, and their results are applied in order, so task
 * numbering and outputs are deterministic.
 */
async function wave(w: Work): Promise<void> {
  const { state, run, compiled } = w;
  const items = state.items.splice(0, state.partial ?? state.items.length);
  delete state.partial;
  const slots: Slot[] = [];
  // The task that could not start, recorded after the wave's other tasks (lower seqs) so
  // the task log stays in seq order.
  let haltedTask: TaskRecord | null = null;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const node = compiled.nodes.get(item.node)!;
    const seq = state.nextSeq++;
    const at = w.now();
    const task: TaskRecord = {
      seq,
      nodeId: node.id,
      type: node.type,
      status: 'ok',
      actions: 0,
      startedAt: isoOf(w, at),
      durationMs: 0,
      input: item.msg,
      output: null,
      error: null,
    };
    const slot: Slot = { item, node, task, started: performance.now(), vars: [] };
    const budget = compiled.scenario.maxActionsPerRun;
    if (budget !== undefined && run.actions + 1 > budget) {
      slot.error = new FlowError('RUN_BUDGET_EXCEEDED', `run would spend more than maxActionsPerRun ${budget}`);
      slots.push(slot);
      continue;
    }
    const key = String(seq);
    if (!(w.budget.takeSync(key, at, false, node.id) ?? (await w.budget.take(key, at, false, node.id)))) {
      // This item and every later one stay pending; the run halts after this wave.
      task.status = 'halted';
      task.error = { code: 'QUOTA_EXHAUSTED', message: 'quota exhausted before this task could start' };
      if (item.iterate) task.iteration = (state.frames[item.iterate] as { index: number }).index;
      haltedTask = task;
      state.items = items.slice(i).concat(state.items); // not unshift(...): any number of items
      state.partial = items.length - i;
      w.halted = true;
      break;
    }
    task.actions = 1;
    run.actions++;
    slots.push(slot);
  }

  // This slot is the whole wave and nothing else is queued: its successor is the next wave.
  const single = items.length === 1 && state.items.length === 0;
  let pending = false;
  // What the results hold until the wave is applied (this process's share: kept.ts).
  const hold = new WaveHold(processHeld, slots.length > WIDE_WAVE);
  const admit = (chars: number) => hold.admit(chars);
  try {
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (slot.error !== undefined || slot.item.iterate) continue;
      try {
        const ctx = context(w, slot, admit);
        let result = fused(w, slot, single, ctx) ?? slot.node.def.execute(slot.item.msg, ctx);
        // A Function's variables are seen by the later nodes of its wave: they wait for it.
        if (result instanceof Promise && i < slots.length - 1 && setsVars(slot.node)) result = await result;
        slot.result = result;
        if (result instanceof Promise) pending = true;
        else {
          // Counted as it arrives (what a wave holds: kept.ts); a refused result is let go at once.
          const over = hold.take(result);
          if (over) {
            slot.result = undefined;
            throw over;
          }
          slot.task.durationMs = performance.now() - slot.started;
          // Variables set by a node are seen by the nodes after it, in wave order, so a run
          // resumed after a halt reads the same values as one never halted.
          for (const [name, value] of slot.vars) defineVar(w.vars, name, value);
        }
      } catch (err) {
        slot.error = err;
        slot.task.durationMs = performance.now() - slot.started;
      }
    }
    if (pending) {
      await Promise.all(
        slots.map(async (slot) => {
          if (!(slot.result instanceof Promise)) return;
          try {
            slot.result = await slot.result;
            const over = hold.take(slot.result);
            if (over) [slot.result, slot.error] = [undefined, over];
          } catch (err) {
            slot.error = err;
          }
          slot.task.durationMs = performance.now() - slot.started;
        }),
      );
    }
    for (const slot of slots) {
      // What the run keeps of the slot is counted first: a node past the bound keeps nothing,
      // not even its variables (which the run's view may hold already). Then the slot's
      // variables are stored (when it set some), and it is applied.
      if (slot.error === undefined && !slot.item.iterate) {
        slot.error = keepResult(state, slot) ?? undefined;
        if (slot.error !== undefined && slot.vars.length > 0) await reloadVars(w);
      }
      if (slot.vars.length > 0 && slot.error === undefined) await storeVars(w, slot);
      apply(w, slot);
    }
  } finally {
    hold.release();
  }
  if (haltedTask) record(w, haltedTask);
}

/** Applies one executed slot: records its task and queues what follows it. */
function apply(w: Work, slot: Slot): void {
  const { state, compiled } = w;
  const { item, node, task } = slot;
  if (item.iterate && slot.error === undefined) {
    // The node's type says how an iteration is entered (Loop: its body, with the item as payload).
    const it = nextIteration(state, item.iterate);
    if (!node.def.iterate) throw new Error(`node ${node.id} (${node.type}) started a loop but its type has no iterate()`);
    const { to, msg } = node.def.iterate(node.config as never, it);
    task.iteration = it.index;
    task.input = msg;
    record(w, task);
    push(state, { node: to, msg, frame: item.iterate, caught: item.caught });
  } else if (slot.error !== undefined) {
    const error: ErrorInfo = { nodeId: node.id, code: errorCode(slot.error), message: w.redactor.redact(errorMessage(slot.error)) };
    const status = (slot.error as { status?: unknown }).status;
    if (typeof status === 'number') error.status = status;
    const body = (slot.error as { body?: unknown }).body;
    if (typeof body === 'string') error.body = w.redactor.redact(body);
    task.status = 'error';
    task.error = error;
    // An iteration that could not start (RUN_BUDGET_EXCEEDED) is recorded as that iteration.
    if (item.iterate) task.iteration = (state.frames[item.iterate] as { index: number }).index;
    record(w, task);
    const handler = compiled.catchFor(node.id, item.caught);
    if (handler) {
      // The failed node's input; for an iteration that could not start, the loop's input.
      const input = item.iterate ? (state.frames[item.iterate] as { input: Message }).input : item.msg;
      push(state, { node: handler, msg: { ...input, error: { ...error } }, frame: item.frame, caught: [...item.caught, handler] });
    } else if (!w.failed) {
      w.failed = error;
    }
  } else {
    const result = slot.result as NodeResult;
    route(w, slot, result);
    record(w, task);
  }
  if (consumed(state, item.frame, compiled)) state.items.length = 0;
}
