/**
 * RunStore and VarStore on Redis. Progress is written by checkpoint.lua: the new tasks, the
 * record and the pending state at once, fenced by the owner token of the worker that claimed
 * the run. Ended runs expire after the retention period.
 */
import { randomUUID } from 'node:crypto';
import type { RunFilter, RunStore, RunSummary, Settlement, StoredRun, VarStore } from './stores.js';
import { settleArgs, settleKeys } from '../metering/redis-ledger.js';
import { summarize } from './stores.js';
import type { RunRecord, TaskRecord } from './types.js';
import type { Scenario } from './schema.js';
import { scriptError, type FlowRedis } from './redis.js';
import type { Keys } from './redis-keys.js';
import type { FiringLog, KeyStore, RunEvent } from './platform.js';
import { apiKeyHash, newApiKey } from './api-keys.js';

export interface RedisRunStoreOptions {
  /** How long ended runs and their task logs are kept, in days (default 30). */
  retentionDays?: number;
  /** How long a run's billed task keys are kept, in seconds (default 35 days). */
  billedTtlSeconds?: number;
  /** Alert thresholds crossed by a settlement (the ledger reports them). */
  onAlerts?: (tenant: string, period: string, thresholds: Array<string | number>, at: Date) => void;
  /** Publish task and run events (live tail); default true. */
  events?: boolean;
}

export type { RunEvent };

function recordJson(run: RunRecord): string {
  const { tasks: _t, pending: _p, ...rest } = run;
  return JSON.stringify(rest);
}

export class RedisRunStore implements RunStore {
  /** Owner tokens of the runs this process has claimed. */
  private owners = new Map<string, string>();
  private readonly retentionSeconds: number;

  constructor(private readonly redis: FlowRedis, private readonly keys: Keys, private readonly opts: RedisRunStoreOptions = {}) {
    this.retentionSeconds = Math.round((opts.retentionDays ?? 30) * 86400);
  }

  async create(run: RunRecord, scenario: Scenario, payload: unknown): Promise<void> {
    const k = this.keys;
    const now = Date.now();
    // Run ids are random: an existing record under this id can only be this call's own first
    // attempt, resent by the client after a lost reply. The rest of the writes are idempotent.
    await this.redis.hsetnx(k.run(run.tenant, run.runId), 'record', recordJson(run));
    await this.redis
      .multi()
      .hset(k.run(run.tenant, run.runId), { status: run.status, scenario: JSON.stringify(scenario), payload: JSON.stringify(payload ?? null) })
      .zadd(k.runs(run.tenant), now, run.runId)
      .zremrangebyscore(k.runs(run.tenant), '-inf', now - this.retentionSeconds * 1000)
      .sadd(k.tenants(), run.tenant)
      .exec();
  }

  /**
   * Takes ownership of a run for this process (claim.lua): a previous owner's writes and
   * leases are refused from now on, and the actions the run held go back to the pool.
   */
  async claim(tenant: string, runId: string, periods: { current: string; previous: string }): Promise<void> {
    const token = randomUUID();
    const k = this.keys;
    const code = await this.redis.fmClaim(
      k.run(tenant, runId), k.leases(tenant, periods.current), k.period(tenant, periods.current), k.leases(tenant, periods.previous), k.period(tenant, periods.previous),
      token, runId,
    );
    if (code < 0) throw scriptError('fmClaim', code);
    this.owners.set(runId, token);
  }

  ownerOf(runId: string): string | undefined {
    return this.owners.get(runId);
  }

  release(runId: string): void {
    this.owners.delete(runId);
  }

  /** checkpoint.lua: tasks, record, state and (when given) their billing, at once. */
  async checkpointAndSettle(run: RunRecord, tasks: TaskRecord[], settlement: Settlement | null, ended: boolean): Promise<void> {
    const k = this.keys;
    const state = run.pending ? JSON.stringify(run.pending) : '';
    const runKey = k.run(run.tenant, run.runId);
    const billingKeys = settlement ? settleKeys(k, settlement) : [runKey, runKey, runKey, runKey, runKey, runKey];
    const out = await this.redis.fmCheckpoint(
      runKey, k.runTasks(run.tenant, run.runId), ...billingKeys,
      this.owners.get(run.runId) ?? '', recordJson(run), state, ended ? '1' : '0', this.retentionSeconds, run.status, randomUUID(),
      tasks.length, ...tasks.map((t) => JSON.stringify(t)),
      settlement ? '1' : '0', ...(settlement ? settleArgs(settlement, this.opts.billedTtlSeconds ?? 35 * 86400) : []),
    );
    if (typeof out === 'number') throw scriptError('fmCheckpoint', out);
    if (settlement && out.length > 1) this.opts.onAlerts?.(settlement.tenant, settlement.period, out.slice(1), settlement.at);
    if (ended) this.release(run.runId);
    if (this.opts.events !== false) {
      const events: RunEvent[] = [];
      if (tasks.length) events.push({ type: 'tasks', runId: run.runId, scenarioId: run.scenarioId, tasks });
      if (ended) events.push({ type: 'run', runId: run.runId, scenarioId: run.scenarioId, status: run.status, actions: run.actions });
      if (events.length) await this.redis.publish(k.events(run.tenant), JSON.stringify(events));
    }
  }

  checkpoint(run: RunRecord, tasks: TaskRecord[]): Promise<void> {
    return this.checkpointAndSettle(run, tasks, null, false);
  }

  finish(run: RunRecord, tasks: TaskRecord[]): Promise<void> {
    return this.checkpointAndSettle(run, tasks, null, true);
  }

  async get(tenant: string, runId: string): Promise<RunRecord | null> {
    const [[, fields], [, tasks]] = (await this.redis
      .multi()
      .hmget(this.keys.run(tenant, runId), 'record', 'state', 'status')
      .lrange(this.keys.runTasks(tenant, runId), 0, -1)
      .exec()) as [[unknown, Array<string | null>], [unknown, string[]]];
    if (!fields[0]) return null;
    const run = JSON.parse(fields[0]) as RunRecord;
    if (fields[2] === 'queued') run.status = 'queued';
    run.tasks = tasks.map((t) => JSON.parse(t) as TaskRecord);
    run.pending = fields[1] ? JSON.parse(fields[1]) : null;
    return run;
  }

  async load(tenant: string, runId: string): Promise<StoredRun | null> {
    const run = await this.get(tenant, runId);
    if (!run) return null;
    const [scenario, payload] = await this.redis.hmget(this.keys.run(tenant, runId), 'scenario', 'payload');
    if (!scenario) return null;
    return { run, scenario: JSON.parse(scenario) as Scenario, payload: payload ? JSON.parse(payload) : null };
  }

  /**
   * Moves a halted run back to `queued` (resume.lua), so that exactly one resume goes ahead:
   * throws RUN_NOT_HALTED for every other caller.
   */
  async markResumed(tenant: string, runId: string): Promise<void> {
    const code = await this.redis.fmResume(this.keys.run(tenant, runId), randomUUID());
    if (code < 0) throw scriptError('fmResume', code);
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
        const run = { ...(JSON.parse(raw) as RunRecord), tasks: [] };
        if (status === 'queued') run.status = 'queued'; // resumed, not started yet (resume.lua)
        if (filter.scenarioId && run.scenarioId !== filter.scenarioId) continue;
        if (filter.status && run.status !== filter.status) continue;
        out.push(summarize(run));
        if (out.length >= limit) break;
      }
    }
    return out;
  }
}

export class RedisVarStore implements VarStore {
  constructor(private readonly redis: FlowRedis, private readonly keys: Keys) {}

  async load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>> {
    const key = this.keys.vars(tenant, scenarioId);
    const names = Object.keys(defaults);
    if (names.length) {
      const pipe = this.redis.pipeline();
      for (const n of names) pipe.hsetnx(key, n, JSON.stringify(defaults[n] ?? null));
      await pipe.exec();
    }
    const h = await this.redis.hgetall(key);
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, JSON.parse(v)]));
  }

  async set(tenant: string, scenarioId: string, name: string, value: unknown): Promise<void> {
    await this.redis.hset(this.keys.vars(tenant, scenarioId), name, JSON.stringify(value ?? null));
  }
}

export class RedisKeyStore implements KeyStore {
  constructor(private readonly redis: FlowRedis, private readonly keys: Keys) {}
  async create(tenant: string): Promise<string> {
    const key = newApiKey();
    await this.redis.multi().hset(this.keys.apiKeyIndex(), apiKeyHash(key), tenant).hset(this.keys.apiKeys(tenant), apiKeyHash(key), new Date().toISOString()).exec();
    return key;
  }
  async resolve(key: string): Promise<string | null> {
    return this.redis.hget(this.keys.apiKeyIndex(), apiKeyHash(key));
  }
}

export class RedisFiringLog implements FiringLog {
  constructor(private readonly redis: FlowRedis, private readonly keys: Keys) {}
  async claim(tenant: string, scenarioId: string, instant: Date): Promise<boolean> {
    const ok = await this.redis.set(this.keys.fired(tenant, scenarioId, instant.getTime()), '1', 'EX', 40 * 86400, 'NX');
    return ok === 'OK';
  }
}
