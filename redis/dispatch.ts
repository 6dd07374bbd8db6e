/**
 * Fair dispatch (SPEC §10 "Flow control", "Fairness"): runs wait in per-tenant ready lists of
 * their queue shard, and dispatch.lua moves them into BullMQ in weighted fair order, within the
 * tenants' and scenarios' limits, only as far as the live workers' capacity goes, so BullMQ never
 * holds a backlog for a newly active tenant to wait behind (see engine/README.md).
 *
 * Calls are coalesced per shard: one dispatch.lua call in flight per process and shard, which
 * carries every push, release and worker registration that came in while the previous one ran.
 * Dispatch happens after pushes (triggers, resumes), after runs end, on each worker heartbeat,
 * and when a throttled tenant's window opens; nothing polls.
 */
import { randomUUID } from 'node:crypto';
import type { FlowRedis } from './client.js';
import { FlowLimits, type LimitSources } from './flow-limits.js';
import type { Keys } from './keys.js';
import { EXPRESS_QUEUE, QUEUE_NAME, type RunQueue, type RunRef } from './queue.js';
import { shardOf } from './shards.js';

/** Most runs picked by one dispatch call (one BullMQ job). */
export const MAX_PICK = 64;

/** How often this process's workers renew their registration (and dispatch), ms. */
const HEARTBEAT_MS = 2000;
/** How long a registration lasts without renewal, ms (a dead worker's places lapse after it). */
const WORKER_LIFE_MS = 10_000;
/** Every how many heartbeats sweep.lua looks for lost dispatches. */
const SWEEP_EVERY = 5;

export interface DispatcherOptions extends LimitSources {
  redis: FlowRedis;
  keys: Keys;
  queue: RunQueue;
  shards: number;
  /** A failure no caller waits for (adding a picked job, a timer's dispatch). */
  onError?: (err: unknown) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** What one shard's next dispatch.lua call carries. */
interface Lane {
  push: RunRef[];
  ended: string[];
  waiters: Waiter[];
  workers: Map<string, { capacity: number; lifeMs: number }>;
  busy: boolean;
  kick: boolean;
  timer: NodeJS.Timeout | null;
  timerAt: number;
}

export class Dispatcher {
  private readonly lanes: Lane[];
  private readonly limits: FlowLimits;
  /** This process's workers and their places. */
  private readonly workers = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | null = null;
  private beats = 0;
  private closed = false;

  constructor(private readonly opts: DispatcherOptions) {
    this.limits = new FlowLimits(opts);
    this.lanes = Array.from({ length: opts.shards }, () => ({
      push: [],
      ended: [],
      waiters: [],
      workers: new Map(),
      busy: false,
      kick: false,
      timer: null,
      timerAt: 0,
    }));
  }

  /** The shard of a tenant's runs. */
  shardOf(tenant: string): number {
    return shardOf(tenant, this.opts.shards);
  }

  /** Queues persisted runs (each at most once while queued or executing), then dispatches. */
  push(refs: RunRef[]): Promise<void> {
    for (const r of refs) this.limits.remember(r);
    return this.each(refs, (lane, r) => void lane.push.push(r));
  }

  /** Releases runs that ended (or were given up): their limits count them no more. Idempotent. */
  ended(refs: RunRef[]): Promise<void> {
    for (const r of refs) this.limits.remember(r);
    return this.each(refs, (lane, r) => void lane.ended.push(r.runId));
  }

  /** Dispatches every shard (a worker starting, a heartbeat). */
  async kick(): Promise<void> {
    await Promise.all(this.lanes.map((_, shard) => this.call(shard, () => undefined)));
  }

  /**
   * Registers a worker of this process with `capacity` places in every shard, renewed by a
   * heartbeat (which also dispatches, and now and then sweeps) until removeWorker.
   */
  addWorker(capacity: number): string {
    const id = randomUUID();
    this.workers.set(id, capacity);
    this.register(id, capacity, WORKER_LIFE_MS).catch((err) => this.opts.onError?.(err));
    this.heartbeat ??= setInterval(() => {
      for (const [w, c] of this.workers) this.register(w, c, WORKER_LIFE_MS).catch(() => undefined);
      if (++this.beats % SWEEP_EVERY === 0) this.sweep().catch(() => undefined);
    }, HEARTBEAT_MS);
    return id;
  }

  /**
   * Takes a worker's places away (`all`: every worker of this process). Waits at most a second
   * for Redis: a registration not removed lapses by itself.
   */
  async removeWorker(id: string | 'all'): Promise<void> {
    const ids = id === 'all' ? [...this.workers.keys()] : [id];
    if (this.workers.size === ids.length && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
    const gone = Promise.all(ids.map((w) => (this.workers.delete(w) ? this.register(w, 0, 0).catch(() => undefined) : undefined)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
  }

  /** Registers (capacity > 0) or removes a worker in every shard; its registration lasts `lifeMs`. */
  async register(id: string, capacity: number, lifeMs: number): Promise<void> {
    await Promise.all(
      this.lanes.map((_, shard) =>
        this.call(shard, (lane) => {
          lane.workers.set(id, { capacity, lifeMs });
        }),
      ),
    );
  }

  /** sweep.lua on every shard: dispatched runs whose job never arrived go back to ready. */
  async sweep(ageMs = 10_000): Promise<number> {
    const { redis, keys } = this.opts;
    const back = await Promise.all(
      this.lanes.map((_, shard) =>
        redis.fmSweep(
          ...keys.fair(shard),
          keys.fairBase(shard),
          `${keys.queueTag(shard)}:${QUEUE_NAME}:`,
          ageMs,
          500,
          `${keys.queueTag(shard)}:${EXPRESS_QUEUE}:`,
        ),
      ),
    );
    const total = back.reduce((a, b) => a + b, 0);
    if (total > 0) await this.kick();
    return total;
  }

  /** Hands dispatched runs of a job on to a job of their own (a worker without places for them). */
  async handOff(refs: RunRef[]): Promise<void> {
    if (refs.length === 0) return;
    const shard = this.shardOf(refs[0]!.tenant);
    const { redis, keys } = this.opts;
    const [, , where, inflight, state] = keys.fair(shard);
    const jobId = await redis.fmHandoff(where!, state!, inflight!, jobPrefix(shard), ...refs.map((r) => r.runId));
    await this.opts.queue.add(shard, jobId, refs);
  }

  /** Why each queued run still in its ready list waits (a limit holding it); a dispatched one waits for nothing. */
  async waiting(items: Array<{ tenant: string; runId: string; scenarioId: string }>): Promise<Array<string | undefined>> {
    const { redis, keys } = this.opts;
    // Commands of their own (not a pipeline: on a Redis Cluster the shards' keys live apart).
    return Promise.all(
      items.map(async ({ tenant, runId, scenarioId }) => {
        const [, , where, , state] = keys.fair(this.shardOf(tenant));
        const [t, s] = await redis.hmget(state!, `why:${tenant}`, `why:${tenant}\n${scenarioId}`);
        const at = t || s ? await redis.hget(where!, runId) : null;
        return at && (JSON.parse(at) as { b?: string }).b === 'r' ? (t ?? s)! : undefined;
      }),
    );
  }

  /** Runs queued or dispatched and not released yet, over every shard. */
  async depth(): Promise<number> {
    const { redis, keys } = this.opts;
    const n = await Promise.all(this.lanes.map((_, shard) => redis.hlen(keys.fair(shard)[2]!)));
    return n.reduce((a, b) => a + b, 0);
  }

  close(): void {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const lane of this.lanes) if (lane.timer) clearTimeout(lane.timer);
  }

  private async each(refs: RunRef[], add: (lane: Lane, r: RunRef) => void): Promise<void> {
    const byShard = new Map<number, RunRef[]>();
    for (const r of refs) {
      const s = this.shardOf(r.tenant);
      const list = byShard.get(s);
      if (list) list.push(r);
      else byShard.set(s, [r]);
    }
    await Promise.all(
      [...byShard].map(([shard, rs]) =>
        this.call(shard, (lane) => {
          for (const r of rs) add(lane, r);
        }),
      ),
    );
  }

  /** Adds to the shard's next call and resolves once a call carrying it has returned. */
  private call(shard: number, add: (lane: Lane) => void): Promise<void> {
    const lane = this.lanes[shard]!;
    add(lane);
    lane.kick = true;
    const done = new Promise<void>((resolve, reject) => lane.waiters.push({ resolve, reject }));
    if (!lane.busy) void this.drain(shard);
    return done;
  }

  private async drain(shard: number): Promise<void> {
    const lane = this.lanes[shard]!;
    lane.busy = true;
    try {
      while (lane.kick) {
        lane.kick = false;
        const push = lane.push.splice(0);
        const ended = lane.ended.splice(0);
        const waiters = lane.waiters.splice(0);
        const workers = [...lane.workers];
        lane.workers.clear();
        let picked = 0;
        try {
          picked = await this.dispatchOnce(shard, push, ended, workers);
          for (const w of waiters) w.resolve();
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
        // A full pick may have left room: go on.
        if (picked >= MAX_PICK) lane.kick = true;
      }
    } finally {
      lane.busy = false;
    }
  }

  private async dispatchOnce(shard: number, push: RunRef[], ended: string[], workers: Array<[string, { capacity: number; lifeMs: number }]>): Promise<number> {
    const { redis, keys } = this.opts;
    // A worker's heartbeat also refreshes the limits of the tenants and scenarios it knows, so a
    // changed limit reaches runs already queued (each push refreshes its own).
    const limitRefs = workers.length > 0 ? [...push, ...this.limits.recent()] : push;
    const limits = limitRefs.length > 0 ? await this.limits.fields(limitRefs) : [];
    const out = (await redis.fmDispatch(
      ...keys.fair(shard),
      keys.fairBase(shard),
      this.closed ? 0 : MAX_PICK,
      jobPrefix(shard),
      workers.length,
      ...workers.flatMap(([id, w]) => [id, w.capacity, w.lifeMs]),
      limits.length / 2,
      ...limits,
      ended.length,
      ...ended,
      push.length,
      ...push.map((r) => JSON.stringify({ tenant: r.tenant, runId: r.runId, ...(r.scenarioId !== undefined && { scenarioId: r.scenarioId }) })),
    )) as Array<string | number>;
    const [jobId, wake, nexpress, ...picked] = out;
    this.wakeAt(shard, Number(wake));
    const refs = picked.map((r) => JSON.parse(String(r)) as RunRef);
    // The last `nexpress` took express places: a job each, in the express queue.
    const shared = refs.length - Number(nexpress);
    // The runs are dispatched: a failure to add their job leaves them to sweep.lua.
    const adds: Array<Promise<void>> = [];
    if (shared > 0) adds.push(this.opts.queue.add(shard, String(jobId), refs.slice(0, shared)));
    for (let i = shared; i < refs.length; i++) adds.push(this.opts.queue.addExpress(shard, `${jobId}e${i - shared + 1}`, refs[i]!));
    await Promise.all(adds.map((a) => a.catch((err) => this.opts.onError?.(err))));
    return refs.length;
  }

  /** Dispatches the shard again when a parked tenant's throttle window opens. */
  private wakeAt(shard: number, at: number): void {
    const lane = this.lanes[shard]!;
    if (at <= 0 || this.closed || (lane.timer && lane.timerAt <= at)) return;
    if (lane.timer) clearTimeout(lane.timer);
    lane.timerAt = at;
    lane.timer = setTimeout(
      () => {
        lane.timer = null;
        this.call(shard, () => undefined).catch((err) => this.opts.onError?.(err));
      },
      Math.max(0, at - Date.now()) + 5,
    );
    lane.timer.unref();
  }

  /** Forgets the limits read of a tenant (its quota changed). */
  forget(tenant: string): void {
    this.limits.forget(tenant);
  }
}

/** Job ids of a shard's dispatched jobs: this prefix and a sequence number (dispatch.lua). */
function jobPrefix(shard: number): string {
  return `f${shard}.`;
}
