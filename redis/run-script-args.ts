/**
 * The keys and arguments of the run scripts (create.lua, claim.lua, checkpoint.lua), built from
 * runs, and what claim.lua returns beside the run: RedisRunStore (run-store.ts) calls them.
 */
import { randomUUID } from 'node:crypto';
import type { RunRecord, TaskRecord } from '../core/types.js';
import type { RunEvent } from '../engine/platform.js';
import type { StoredRun } from '../engine/stores.js';
import type { Settlement } from '../metering/meter.js';
import { DEFAULT_QUOTA } from '../metering/quota.js';
import type { Keys } from './keys.js';
import { settleArgs, settleKeys } from './ledger.js';

/** The record as stored: without tasks, outputs (a list of their own) and state. */
export function recordJson(run: RunRecord): string {
  const { tasks: _t, pending: _p, outputs, ...rest } = run;
  return JSON.stringify({ ...rest, outputCount: outputs.length });
}

/** JSONs joined by '\n' (one argument of checkpoint.lua: JSON has no raw newline). */
function joinJson(items: readonly unknown[]): string {
  let s = '';
  for (let i = 0; i < items.length; i++) s += (i === 0 ? '' : '\n') + JSON.stringify(items[i]);
  return s;
}

/** A new run for create.lua, its scenario snapshot and payload as JSON. */
export interface NewRunJson {
  run: RunRecord;
  snapshot: string;
  payload: string;
  idempotencyKey?: string;
}

/**
 * create.lua's key count, keys and arguments for one tenant's new runs: a scenario snapshot
 * that several runs share is sent once.
 */
export function createArgs(k: Keys, tenant: string, items: NewRunJson[], now: number, retentionSeconds: number): [number, ...Array<string | number>] {
  const snapshots: string[] = [];
  const snapshotIndex = new Map<string, number>();
  const args: Array<string | number> = [];
  const runKeys = items.map((item) => k.run(tenant, item.run.runId));
  const idemKeys: string[] = [];
  for (const { run, snapshot, payload, idempotencyKey } of items) {
    let at = snapshotIndex.get(snapshot);
    if (at === undefined) snapshotIndex.set(snapshot, (at = snapshots.push(snapshot)));
    const idem = idempotencyKey === undefined ? 0 : 1 + runKeys.length + idemKeys.push(k.idempotency(tenant, idempotencyKey));
    args.push(run.runId, recordJson(run), run.status, at, payload, idem);
  }
  return [
    1 + runKeys.length + idemKeys.length,
    k.runs(tenant),
    ...runKeys,
    ...idemKeys,
    now,
    now - retentionSeconds * 1000,
    tenant,
    items.length,
    snapshots.length,
    ...args,
    ...snapshots,
  ];
}

/** A tenant's current billing period and the one before (a run may hold leases in both). */
export interface Periods {
  current: string;
  previous: string;
}

/** claim.lua's keys and arguments. */
export function claimArgs(
  k: Keys,
  tenant: string,
  runId: string,
  periods: Periods,
  scenarioId: string | undefined,
  token: string,
  lease: number,
  crashLimit: number,
): Array<string | number> {
  return [
    k.run(tenant, runId),
    k.runOutputs(tenant, runId),
    k.leases(tenant, periods.current),
    k.period(tenant, periods.current),
    k.leases(tenant, periods.previous),
    k.period(tenant, periods.previous),
    scenarioId ? k.vars(tenant, scenarioId) : k.run(tenant, runId),
    k.quota(tenant),
    token,
    runId,
    lease,
    DEFAULT_QUOTA.monthlyActions,
    crashLimit,
  ];
}

/**
 * What claim.lua's hash `h` holds beside the run: its crashed executions, whether it is
 * poisoned, its scenario's variables (when `scenarioId` is the run's) and the lease granted.
 */
export function claimExtras(
  h: Record<string, string>,
  run: RunRecord,
  periods: Periods,
  scenarioId: string | undefined,
): Pick<StoredRun, 'vars' | 'lease'> & { crashes: number; poisoned: boolean } {
  const out: Pick<StoredRun, 'vars' | 'lease'> & { crashes: number; poisoned: boolean } = {
    crashes: Number(h['#crashes'] ?? 0),
    poisoned: h['#poisoned'] === '1',
  };
  if (h['#vars'] && run.scenarioId === scenarioId) {
    const raw = JSON.parse(h['#vars']) as Record<string, string>;
    out.vars = Object.fromEntries(Object.entries(raw).map(([name, v]) => [name, JSON.parse(v)]));
  }
  if (h['#lease']) {
    const [granted, held, othersHold] = JSON.parse(h['#lease']) as number[];
    out.lease = { granted: granted!, held: held === 1, othersHold: othersHold === 1, period: periods.current };
  }
  return out;
}

/** What checkpoint.lua writes beside the record and tasks, and under which claim. */
export interface CheckpointWrite {
  /** The owner token of this process's claim ('' when it has none). */
  owner: string;
  state: { json: string; fields: Array<[string, string]> };
  /** The outputs not written yet. */
  outputs: readonly unknown[];
  /** How long an ended run is kept. */
  retentionSeconds: number;
}

/** checkpoint.lua's keys and arguments: tasks, outputs, record, state and (when given) their billing. */
export function checkpointArgs(
  k: Keys,
  run: RunRecord,
  tasks: TaskRecord[],
  settlement: Settlement | null,
  ended: boolean,
  w: CheckpointWrite,
): Array<string | number> {
  const runKey = k.run(run.tenant, run.runId);
  const billingKeys = settlement ? settleKeys(k, settlement) : [runKey, runKey, runKey, runKey, runKey, runKey];
  const runEvent: RunEvent | null = ended ? { type: 'run', runId: run.runId, scenarioId: run.scenarioId, status: run.status, actions: run.actions } : null;
  return [
    runKey,
    k.runTasks(run.tenant, run.runId),
    k.runOutputs(run.tenant, run.runId),
    ...billingKeys,
    w.owner,
    recordJson(run),
    w.state.json,
    ended ? '1' : '0',
    w.retentionSeconds,
    run.status,
    randomUUID(), // the write id, unique per call (checkpoint.lua)
    k.events(run.tenant),
    runEvent ? JSON.stringify(runEvent) : '',
    run.runId,
    run.scenarioId,
    k.runEvents(run.tenant),
    tasks.length,
    joinJson(tasks),
    w.outputs.length,
    joinJson(w.outputs),
    w.state.fields.length,
    ...w.state.fields.flat(),
    settlement ? '1' : '0',
    ...(settlement ? settleArgs(settlement) : []),
  ];
}
