/**
 * Trigger batching: the runs triggered in one turn of the event loop (a burst of webhooks, a
 * closed loop of API calls) are persisted together and handed to the queue as ONE BullMQ job
 * that carries all of them. A job costs a handful of Redis scripts on the producer, in Redis
 * and on the worker; a run of a short scenario costs less than that, so a job per run made
 * the queue, not the runs, the limit (measured: 0.5x raw BullMQ jobs/s for 1-node runs).
 *
 * Order is kept: every run of a batch is persisted before the batch is enqueued. A batch's
 * worker executes its runs concurrently; a batch redelivered after a crash continues each run
 * from its checkpoint (ended runs are skipped), exactly like a single run's job.
 */

import { FlowError } from '../core/errors.js';
import type { RunRecord, TriggerInfo } from '../core/types.js';
import { newRun } from '../engine/run-record.js';
import type { Scenario } from '../scenario/schema.js';
import type { RunRef } from './queue.js';

/** What the batcher needs from the platform. */
export interface BatchDeps {
  getScenario(tenant: string, scenarioId: string): Promise<Scenario | null>;
  /**
   * Persists new runs at once; per run, whether it was created or why it failed, or the run an
   * already held idempotency key started (then nothing was created).
   */
  createMany(
    items: Array<{ run: RunRecord; scenario: Scenario; payload: unknown; idempotencyKey?: string }>,
  ): Promise<Array<boolean | Error | { runId: string }>>;
  enqueue(runs: RunRef[]): Promise<void>;
  /** A stored run (what a repeated idempotent trigger resolves with). */
  getRun(tenant: string, runId: string): Promise<RunRecord | null>;
}

interface Pending {
  tenant: string;
  scenarioId: string;
  payload: unknown;
  trigger: TriggerInfo;
  idempotencyKey?: string;
  resolve: (run: RunRecord) => void;
  reject: (err: unknown) => void;
}

/** Most runs in one job (a larger burst becomes several jobs, so several workers share it). */
export const MAX_BATCH = 64;

export class TriggerBatcher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly deps: BatchDeps) {}

  /** Persists and enqueues a run with the others of this turn; resolves once it is enqueued. */
  trigger(tenant: string, scenarioId: string, payload: unknown, trigger: TriggerInfo, idempotencyKey?: string): Promise<RunRecord> {
    return new Promise<RunRecord>((resolve, reject) => {
      this.pending.push({ tenant, scenarioId, payload, trigger, idempotencyKey, resolve, reject });
      // A full batch leaves at once; the rest when this turn's callbacks have all run.
      if (this.pending.length >= MAX_BATCH) void this.send(this.pending.splice(0, MAX_BATCH));
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          if (this.pending.length > 0) void this.send(this.pending.splice(0, MAX_BATCH));
        });
      }
    });
  }

  private async send(batch: Pending[]): Promise<void> {
    // One read per scenario, all at once (ioredis sends them in one turn).
    const scenarios = new Map<string, Promise<Scenario | null>>();
    const scenarioOf = (p: Pending) => {
      const key = `${p.tenant}\u0000${p.scenarioId}`;
      let s = scenarios.get(key);
      if (!s) scenarios.set(key, (s = this.deps.getScenario(p.tenant, p.scenarioId)));
      return s;
    };
    const found = await Promise.all(
      batch.map(async (p) => {
        try {
          const scenario = await scenarioOf(p);
          if (!scenario) throw new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(p.scenarioId)} for tenant ${p.tenant}`);
          return { p, scenario, run: newRun(scenario, p.tenant, p.trigger), payload: p.payload, idempotencyKey: p.idempotencyKey };
        } catch (err) {
          p.reject(err);
          return null;
        }
      }),
    );
    const items = found.filter((f) => f !== null);
    if (items.length === 0) return;
    try {
      // Persisted first (one call), then enqueued (one job): never the other way round.
      const created = await this.deps.createMany(items);
      const ok = items.filter((item, i) => {
        const c = created[i];
        if (c instanceof Error) item.p.reject(c);
        else if (typeof c === 'object') {
          // A repeated idempotent trigger: the first request's run, nothing started.
          const runId = c.runId;
          this.deps.getRun(item.p.tenant, runId).then((r) => item.p.resolve(r ?? { ...item.run, runId }), item.p.reject);
        }
        return typeof c === 'boolean';
      });
      if (ok.length === 0) return;
      await this.deps.enqueue(ok.map(({ p, run }) => ({ tenant: p.tenant, runId: run.runId, scenarioId: p.scenarioId })));
      for (const { p, run } of ok) p.resolve(run);
    } catch (err) {
      for (const { p } of items) p.reject(err);
    }
  }
}
