/**
 * The RunStore on Redis. Progress is written by checkpoint.lua: new tasks and outputs
 * (appended), the record and the pending state, and their billing, at once, fenced by the
 * owner token of the worker that claimed the run; task and run events are published from the
 * same script. Ended runs expire after the retention period.
 */
import { randomUUID } from 'node:crypto';
import { errorCode, errorMessage, FlowError } from '../core/errors.js';
import { checkPayload } from '../core/json-depth.js';
import type { Message, RunRecord, TaskRecord } from '../core/types.js';
import type { RunEvent } from '../engine/platform.js';
import { decodeState, encodeState } from '../engine/state-codec.js';
import type { RunFilter, RunStore, RunSummary, StoredRun, TaskPage } from '../engine/stores.js';
import { summarize } from '../engine/stores.js';
import { triggerMessage } from '../engine/trigger-message.js';
import type { Settlement } from '../metering/meter.js';
import type { Scenario } from '../scenario/schema.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';
import { checkpointArgs, claimArgs, claimExtras, createArgs, type Periods } from './run-script-args.js';
import { ScenarioSnapshots, snapshotField } from './scenario-snapshots.js';
import { scriptError } from './script-errors.js';
import { listTenant } from './tenant-set.js';
import { daysToSeconds } from './ttl.js';

export type { RunEvent };

/** Crashed executions after which a run is given up with WORKER_CRASHED (SPEC §10). */
export const CRASH_LIMIT = 2;

/** A claimed run, with its crashed executions so far (claim.lua). */
export interface ClaimedRun extends StoredRun {
  crashes: number;
  /** The run has crashed CRASH_LIMIT workers: finish it as WORKER_CRASHED, do not execute it. */
  poisoned: boolean;
}

export interface RedisRunStoreOptions {
  /** How long ended runs and their task logs are kept, in days (default 30). */
  retentionDays?: number;
  /** Alert thresholds crossed by a settlement (the ledger reports them). */
  onAlerts?: (tenant: string, period: string, thresholds: Array<string | number>, at: Date) => void;
  /** Why queued runs wait, when a flow-control limit holds them (the fair dispatcher). */
  waiting?: (runs: Array<{ tenant: string; runId: string; scenarioId: string }>) => Promise<Array<string | undefined>>;
}

/** What this process knows it has written of a run it executes. */
interface Written {
  outputs: number;
  frames: Set<string>;
}

export class RedisRunStore implements RunStore {
  /** Owner tokens of the runs this process has claimed. */
  private owners = new Map<string, string>();
  private written = new Map<string, Written>();
  /** Runs' scenarios read back (runs of one version share one object). */
  private readonly scenarios: ScenarioSnapshots;
  /** Runs' `scenario` fields, by scenario object (the runs of a trigger batch share one). */
  private snapshots = new WeakMap<Scenario, string>();
  private readonly retentionSeconds: number;

  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly opts: RedisRunStoreOptions = {},
  ) {
    this.retentionSeconds = daysToSeconds(opts.retentionDays ?? 30);
    this.scenarios = new ScenarioSnapshots(redis, keys);
  }

  async create(run: RunRecord, scenario: Scenario, payload: unknown): Promise<boolean> {
    const [created] = await this.createMany([{ run, scenario, payload }]);
    if (created instanceof Error) throw created;
    return created === true;
  }

  /**
   * Persists new runs, each only if absent (create.lua: a run that exists, such as a cron
   * instant fired by another scheduler or a call resent after a lost reply, is left as it is);
   * one script call per tenant. Resolves with whether each was created, or why not (a payload
   * that is not JSON fails its own run only), or, for a run whose idempotency key is already
   * held (create.lua), `{ runId }` of the run that key started: nothing was created.
   */
  async createMany(
    items: Array<{ run: RunRecord; scenario: Scenario; payload: unknown; idempotencyKey?: string }>,
  ): Promise<Array<boolean | FlowError | { runId: string }>> {
    const k = this.keys;
    const now = Date.now();
    const created = new Array<boolean | FlowError | { runId: string }>(items.length);
    const payloads = new Array<string>(items.length);
    const byTenant = new Map<string, number[]>();
    items.forEach(({ run, payload }, i) => {
      try {
        checkPayload(payload);
        payloads[i] = JSON.stringify(payload ?? null);
      } catch (err) {
        created[i] = errorCode(err) === 'INVALID_INPUT' ? (err as FlowError) : new FlowError('INVALID_INPUT', `the payload is not JSON: ${errorMessage(err)}`);
        return;
      }
      const list = byTenant.get(run.tenant);
      if (list) list.push(i);
      else byTenant.set(run.tenant, [i]);
    });
    await Promise.all(
      [...byTenant].map(async ([tenant, indexes]) => {
        const batch = indexes.map((i) => {
          const { run, scenario, idempotencyKey } = items[i]!;
          return { run, snapshot: this.snapshot(scenario), payload: payloads[i]!, idempotencyKey };
        });
        const [numKeys, ...args] = createArgs(k, tenant, batch, now, this.retentionSeconds);
        await listTenant(this.redis, k, tenant);
        const out = await this.redis.fmCreate(numKeys, ...args);
        indexes.forEach((i, j) => {
          created[i] = typeof out[j] === 'string' ? { runId: String(out[j]) } : out[j] === 1;
        });
      }),
    );
    return created;
  }

  private snapshot(scenario: Scenario): string {
    let json = this.snapshots.get(scenario);
    if (json === undefined) this.snapshots.set(scenario, (json = snapshotField(scenario)));
    return json;
  }

  /**
   * Takes over a run for this process (claim.lua) and loads it for execution, in one round
   * trip: a previous owner's writes and leases are refused from now on, and the actions the
   * run held go back to the pool. The task log is not loaded (the worker only appends to it).
   * `crashes` counts the executions of the run that killed their worker; once it reaches
   * `crashLimit` the run is `poisoned`: not to be executed, but finished as WORKER_CRASHED.
   */
  async claim(tenant: string, runId: string, periods: Periods, scenarioId?: string, lease = 0, crashLimit = CRASH_LIMIT): Promise<ClaimedRun> {
    const token = randomUUID();
    const out = await this.redis.fmClaim(...claimArgs(this.keys, tenant, runId, periods, scenarioId, token, lease, crashLimit));
    if (typeof out === 'number') throw scriptError(out, { tenant, runId });
    this.owners.set(runId, token);
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < out.length; i += 2) h[out[i]!] = out[i + 1]!;
    const stored = this.fromHash(h, JSON.parse(h['#outputs'] ?? '[]') as Message[], []);
    const scenario = await this.scenarios.read(tenant, stored.run.scenarioId, h.scenario);
    return { ...stored, scenario, ...claimExtras(h, stored.run, periods, scenarioId) };
  }

  ownerOf(runId: string): string | undefined {
    return this.owners.get(runId);
  }

  release(runId: string): void {
    this.owners.delete(runId);
    this.written.delete(runId);
  }

  /**
   * Gives up a claimed run that has not ended, from a live process (release.lua), so that its
   * next claim does not count a crashed execution; then forgets it like `release`.
   */
  async giveUp(tenant: string, runId: string): Promise<void> {
    const token = this.owners.get(runId);
    this.release(runId);
    if (token) await this.redis.fmRelease(this.keys.run(tenant, runId), token);
  }

  /** A run from its hash fields (its scenario is read by the caller); what this process has written of it is noted. */
  private fromHash(h: Record<string, string>, outputs: Message[], tasks: TaskRecord[]): Omit<StoredRun, 'scenario'> {
    const run = JSON.parse(h.record!) as RunRecord & { outputCount?: number };
    delete run.outputCount;
    if (h.status === 'queued') run.status = 'queued'; // resumed, not started yet (resume.lua)
    run.outputs = outputs;
    run.tasks = tasks;
    const payload: unknown = h.payload ? JSON.parse(h.payload) : null;
    run.pending = h.state
      ? decodeState(
          h.state,
          (name) => h[name],
          () => triggerMessage(run, payload),
        )
      : null;
    this.written.set(run.runId, { outputs: outputs.length, frames: new Set(Object.keys(run.pending?.frames ?? {})) });
    return { run, payload };
  }

  /** checkpoint.lua: tasks, outputs, record, state and (when given) their billing, at once. */
  async checkpointAndSettle(run: RunRecord, tasks: TaskRecord[], settlement: Settlement | null, ended: boolean): Promise<void> {
    const written = this.written.get(run.runId) ?? { outputs: 0, frames: new Set<string>() };
    const state = run.pending ? encodeState(run.pending, written.frames) : { json: '', fields: [], ids: [] };
    const outputs = run.outputs.slice(written.outputs);
    const owner = this.owners.get(run.runId) ?? '';
    const out = await this.redis.fmCheckpoint(
      ...checkpointArgs(this.keys, run, tasks, settlement, ended, { owner, state, outputs, retentionSeconds: this.retentionSeconds }),
    );
    if (typeof out === 'number') throw scriptError(out, { tenant: run.tenant, runId: run.runId });
    written.outputs = run.outputs.length;
    for (const id of state.ids) written.frames.add(id);
    this.written.set(run.runId, written);
    if (settlement && out.length > 1) this.opts.onAlerts?.(settlement.tenant, settlement.period, out.slice(1), settlement.at);
    if (ended) this.release(run.runId);
  }

  checkpoint(run: RunRecord, tasks: TaskRecord[]): Promise<void> {
    return this.checkpointAndSettle(run, tasks, null, false);
  }

  finish(run: RunRecord, tasks: TaskRecord[]): Promise<void> {
    return this.checkpointAndSettle(run, tasks, null, true);
  }

  /**
   * A run with its task log (all of it, or the page `tasks` names, with `taskCount` then), and
   * its scenario unless `withScenario` is false.
   */
  private async read(tenant: string, runId: string, withScenario: boolean, page?: TaskPage): Promise<StoredRun | null> {
    const from = page?.from ?? 0;
    const multi = this.redis.multi().hgetall(this.keys.run(tenant, runId)).lrange(this.keys.runOutputs(tenant, runId), 0, -1);
    if (!page) multi.lrange(this.keys.runTasks(tenant, runId), 0, -1);
    else if (page.limit > 0) multi.lrange(this.keys.runTasks(tenant, runId), from, from + page.limit - 1);
    if (page) multi.llen(this.keys.runTasks(tenant, runId));
    const rows = (await multi.exec()) as Array<[unknown, unknown]>;
    const h = rows[0]![1] as Record<string, string>;
    if (!h.record) return null;
    const outputs = (rows[1]![1] as string[]).map((o) => JSON.parse(o) as Message);
    const tasks = !page || page.limit > 0 ? (rows[2]![1] as string[]).map((t) => JSON.parse(t) as TaskRecord) : [];
    const stored = this.fromHash(h, outputs, tasks);
    if (page) stored.run.taskCount = rows.at(-1)![1] as number;
    const scenario = withScenario ? await this.scenarios.read(tenant, stored.run.scenarioId, h.scenario) : (null as unknown as Scenario);
    return { ...stored, scenario };
  }

  async get(tenant: string, runId: string, tasks?: TaskPage): Promise<RunRecord | null> {
    const run = (await this.read(tenant, runId, false, tasks))?.run ?? null;
    if (run) await this.noteWaiting([run]);
    return run;
  }

  /** Sets `waiting` on the queued ones of `runs` that a flow-control limit holds. */
  private async noteWaiting(runs: Array<{ tenant: string; runId: string; scenarioId: string; status: string; waiting?: string }>): Promise<void> {
    const queued = runs.filter((r) => r.status === 'queued');
    if (queued.length === 0 || !this.opts.waiting) return;
    const why = await this.opts.waiting(queued);
    queued.forEach((r, i) => {
      if (why[i]) r.waiting = why[i];
    });
  }

  async load(tenant: string, runId: string): Promise<StoredRun | null> {
    return this.read(tenant, runId, true);
  }

  /**
   * Moves a halted run back to `queued` (resume.lua), so that exactly one resume goes ahead:
   * throws RUN_NOT_HALTED for every other caller.
   */
  async markResumed(tenant: string, runId: string): Promise<void> {
    const code = await this.redis.fmResume(this.keys.run(tenant, runId), randomUUID());
    if (code < 0) throw scriptError(code, { tenant, runId });
  }

  async list(tenant: string, filter: RunFilter = {}): Promise<RunSummary[]> {
    const limit = filter.limit ?? 100;
    const out: RunSummary[] = [];
    const batch = 200;
    for (let offset = 0; out.length < limit && offset < 10_000; offset += batch) {
      const ids = await this.redis.zrevrange(this.keys.runs(tenant), offset, offset + batch - 1);
      if (ids.length === 0) break;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hmget(this.keys.run(tenant, id), 'record', 'status');
      const rows = (await pipe.exec()) ?? [];
      for (const [, fields] of rows) {
        const [raw, status] = (fields ?? []) as Array<string | null>;
        if (typeof raw !== 'string') continue;
        const rec = JSON.parse(raw) as RunRecord & { outputCount?: number };
        if (status === 'queued') rec.status = 'queued'; // resumed, not started yet (resume.lua)
        if (filter.scenarioId && rec.scenarioId !== filter.scenarioId) continue;
        if (filter.status && rec.status !== filter.status) continue;
        const { outputCount = 0, ...record } = rec;
        out.push({ ...summarize({ ...record, tasks: [], outputs: [] }), outputCount });
        if (out.length >= limit) break;
      }
    }
    await this.noteWaiting(out);
    return out;
  }
}
