/**
 * Bodies of guarantees (SPEC §4, §5) shared by the single-Redis tests and the Redis Cluster
 * ones (cluster.test.ts): the same assertions, on whatever Redis the caller's platform uses.
 */
import { expect } from 'vitest';
import type { RunRecord, RunStatus } from '../../core/types.js';
import type { Embedded } from '../../engine/embedded.js';
import type { RunSummary } from '../../engine/stores.js';
import type { Production } from '../../redis/production.js';
import { type Proc, type Processes, waitUntil } from './processes.js';
import { fn, runOnce, scenarioOf } from './run.js';

export const ENDED: RunStatus[] = ['succeeded', 'failed', 'halted', 'rejected'];
export const taskSum = (run: RunRecord): number => run.tasks.reduce((a, t) => a + t.actions, 0);

/**
 * trigger + loop + 3 × (iteration + double) + sum = 1 + 1 + 3 × 2 + 1 = 9 actions, and one
 * output `{ n, items }` that depends on the payload.
 */
export const LOOP3 = {
  id: 'loop3',
  start: 'each',
  nodes: [
    { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'double', collect: true, next: 'sum' },
    fn('double', 'return { payload: msg.payload * 2 };'),
    fn('sum', 'return { payload: { n: msg.payload.reduce((a, b) => a + b, 0), items: msg.payload } };'),
  ],
};
export const LOOP3_ACTIONS = 1 + 1 + 3 * 2 + 1;
export const loop3Payload = (i: number) => ({ items: [i, i + 1, i + 2] });

/** Polls until `count` runs of the tenant exist and every one has ended (failing with the counts by status). */
export async function allEnded(p: Production, tenant: string, count: number, timeoutMs = 40_000, workers: Proc[] = []): Promise<RunSummary[]> {
  let counts: Record<string, number> = {};
  try {
    return await waitUntil(
      `${count} runs of ${tenant} to end`,
      async () => {
        const list = await p.runs.list(tenant, { limit: 10_000 });
        counts = {};
        for (const r of list) counts[r.status] = (counts[r.status] ?? 0) + 1;
        return list.length === count && list.every((r) => ENDED.includes(r.status)) ? list : null;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; runs by status: ${JSON.stringify(counts)}; ${await dispatchState(p, tenant).catch((e) => `(no dispatch state: ${e.message})`)}${workers
        .map((w) => `\n${w.name} (exit ${w.child.exitCode ?? w.child.signalCode ?? 'none'}) stderr tail:\n${w.stderr.slice(-800)}`)
        .join('')}`,
    );
  }
}

export async function getAll(p: Production, tenant: string, ids: string[]): Promise<RunRecord[]> {
  return Promise.all(ids.map(async (id) => (await p.runs.get(tenant, id))!));
}

export interface QuotaCase {
  /** Opens a platform (closed by the caller's afterEach) on `redisUrl`. */
  production: () => Promise<Production>;
  procs: Processes;
  redisUrl: string;
  embedded: Embedded;
  /** Each with its own quota; on a cluster, tenants spread over the primaries. */
  tenants: string[];
  /** Runs per tenant. */
  runs: number;
  /** monthlyActions of each tenant, below runs × 9. */
  quota: number;
  /** Worker processes (default 4). */
  workers?: number;
}

/**
 * Concurrent runs of worker processes never bill beyond the quota, and the counts are exact:
 * used = quota, every run's tasks sum to its actions, halted runs stop part-way and, resumed
 * after the quota is raised, end exactly as a run never halted.
 */
export async function quotaHeldExactly(c: QuotaCase): Promise<void> {
  const p = await c.production();
  const { quota, runs: runsCount } = c;
  const prefix = p.redisKeys.prefix;
  for (const tenant of c.tenants) {
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    await p.ledger.setQuota(tenant, { monthlyActions: quota, resumeHalted: 'manual' });
  }
  const workers = await Promise.all(
    Array.from({ length: c.workers ?? 4 }, (_, i) => c.procs.worker({ redisUrl: c.redisUrl, prefix, concurrency: 4, name: `worker${i}` })),
  );
  await Promise.all(c.tenants.map((tenant) => tenantQuotaHeld(c, p, tenant, quota, runsCount, workers)));
}

async function tenantQuotaHeld(c: QuotaCase, p: Production, tenant: string, quota: number, runsCount: number, workers: Proc[]): Promise<void> {
  const started = await Promise.all(Array.from({ length: runsCount }, (_, i) => p.trigger(tenant, 'loop3', loop3Payload(i), { type: 'manual' })));
  const payloadOf = new Map(started.map((r, i) => [r.runId, loop3Payload(i)]));
  await allEnded(p, tenant, runsCount, 40_000, workers);

  const usage = await p.ledger.usage(tenant, new Date());
  expect(usage.used).toBe(quota);
  expect(usage).toMatchObject({ remaining: 0, overage: 0, limit: quota });
  const runs = await getAll(
    p,
    tenant,
    started.map((r) => r.runId),
  );
  const byStatus = (s: RunStatus) => runs.filter((r) => r.status === s);
  for (const r of runs) {
    expect(['succeeded', 'halted', 'rejected']).toContain(r.status);
    expect(taskSum(r)).toBe(r.actions);
    expect(new Set(r.tasks.map((t) => t.seq)).size).toBe(r.tasks.length);
  }
  expect(runs.reduce((a, r) => a + taskSum(r), 0)).toBe(usage.used);
  for (const r of byStatus('succeeded')) expect(r.actions).toBe(LOOP3_ACTIONS);
  for (const r of byStatus('rejected')) expect(r).toMatchObject({ actions: 0, tasks: [], error: { code: 'QUOTA_EXHAUSTED' } });
  const halted = byStatus('halted');
  // A quota that is not a multiple of 9: at least one run stopped part-way.
  expect(halted.length).toBeGreaterThan(0);
  for (const r of halted) {
    expect(r.error?.code).toBe('QUOTA_EXHAUSTED');
    expect(r.pending).toBeTruthy();
    expect(r.pending!.items.length).toBeGreaterThan(0);
    expect(r.tasks.at(-1)).toMatchObject({ status: 'halted', actions: 0 });
    expect(r.actions).toBeGreaterThan(0);
    expect(r.actions).toBeLessThan(LOOP3_ACTIONS);
  }
  expect(byStatus('rejected').length).toBeGreaterThan(0);
  // A run's billed task keys (its idempotency) outlive it by an hour once it has ended for
  // good; a halted run keeps them for the billing retention (a resume continues it).
  const billedTtl = (r: RunRecord) => p.redis.ttl(p.redisKeys.billed(tenant, r.runId));
  for (const r of byStatus('succeeded').slice(0, 5)) expect(await billedTtl(r)).toBeLessThanOrEqual(3600);
  for (const r of halted) expect(await billedTtl(r)).toBeGreaterThan(30 * 86400);

  // Raise the quota and resume every halted run.
  await p.ledger.setQuota(tenant, { monthlyActions: 100_000 });
  await Promise.all(halted.map((r) => p.resume(tenant, r.runId)));
  const resumed = await waitUntil(
    'resumed runs to end',
    async () => {
      const rs = await getAll(
        p,
        tenant,
        halted.map((r) => r.runId),
      );
      return rs.every((r) => ENDED.includes(r.status)) ? rs : null;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  for (const r of resumed) {
    const reference = await runOnce(LOOP3, payloadOf.get(r.runId), { engine: c.embedded });
    expect(r.status).toBe('succeeded');
    expect(r.pending).toBeNull();
    expect(r.actions).toBe(reference.actions);
    expect(r.actions).toBe(LOOP3_ACTIONS);
    expect(taskSum(r)).toBe(r.actions);
    expect(r.outputs).toEqual(reference.outputs);
    expect(new Set(r.tasks.map((t) => t.seq)).size).toBe(r.tasks.length);
    expect(await billedTtl(r)).toBeLessThanOrEqual(3600);
    expect(await billedTtl(r)).toBeGreaterThan(0);
  }
  const after = await getAll(
    p,
    tenant,
    started.map((r) => r.runId),
  );
  const used = (await p.ledger.usage(tenant, new Date())).used;
  expect(after.reduce((a, r) => a + taskSum(r), 0)).toBe(used);
  expect(used).toBe(quota + resumed.reduce((a, r) => a + r.actions, 0) - halted.reduce((a, r) => a + r.actions, 0));
}

/** Where a tenant's unended runs are in fair dispatch (for a failure message). */
async function dispatchState(p: Production, tenant: string): Promise<string> {
  const shard = p.dispatcher.shardOf(tenant);
  const [, , where, inflight, state, workers] = p.redisKeys.fair(shard);
  const list = await p.runs.list(tenant, { limit: 10_000 });
  const open = list.filter((r) => !ENDED.includes(r.status)).slice(0, 5);
  const at = await Promise.all(open.map(async (r) => `${r.runId} ${r.status} started ${r.startedAt ?? '-'} where ${await p.redis.hget(where!, r.runId)}`));
  const [nInflight, registered, st, jobs] = await Promise.all([
    p.redis.zcard(inflight!),
    p.redis.hgetall(workers!),
    p.redis.hgetall(state!),
    Promise.all([...p.queue.queues, ...p.queue.express].map((q) => q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'failed'))),
  ]);
  const tenantState = Object.fromEntries(Object.entries(st).filter(([k]) => k.includes(tenant)));
  return `shard ${shard}: ${nInflight} in flight, workers ${JSON.stringify(registered)}, state ${JSON.stringify(tenantState)}, jobs (queues then express) ${JSON.stringify(jobs)}; first unended: ${at.join('; ')}`;
}
