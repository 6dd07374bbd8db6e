/**
 * Production mode end to end: real Redis, real worker processes (`flowmeter worker`), the
 * CLI as a process. Each test uses its own key prefix, and every process it starts is killed
 * in afterEach.
 */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord, RunStatus } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { createProduction, type Production } from '../redis/production.js';
import { startRedis } from './global-setup.js';
import { allEnded, getAll, LOOP3, LOOP3_ACTIONS, loop3Payload, quotaHeldExactly, taskSum } from './helpers/guarantees.js';
import { type Proc, Processes, redisServerAt, sleep, waitUntil } from './helpers/processes.js';
import { redisUrl, uniquePrefix, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const procs = new Processes();
const opened: Production[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

/** A production instance closed after the test. */
async function production(opts: Parameters<typeof useProduction>[0] = {}): Promise<Production> {
  const p = await useProduction(opts);
  opened.push(p);
  return p;
}

afterEach(async () => {
  await procs.killAll();
  await Promise.all(opened.splice(0).map((p) => p.close()));
  for (const c of cleanups.splice(0).reverse()) await c();
});

let embedded: Embedded;
beforeAll(() => {
  embedded = createEmbedded();
});
afterAll(async () => {
  await embedded.close();
});

const ENDED: RunStatus[] = ['succeeded', 'failed', 'halted', 'rejected'];

describe('production: trigger and in-process worker', () => {
  it('persists the run before enqueueing it; a worker then runs it to the end', async () => {
    const p = await production();
    const tenant = 'acme';
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    // Observe the store at the moment the job is handed to the queue.
    const enqueue = p.queue.enqueue.bind(p.queue);
    let atEnqueue: RunRecord | null | undefined;
    p.queue.enqueue = async (job) => {
      atEnqueue = await p.runs.get(job.tenant, job.runId);
      return enqueue(job);
    };
    const run = await p.trigger(tenant, 'loop3', loop3Payload(1), { type: 'manual' });
    expect(atEnqueue).toMatchObject({ runId: run.runId, status: 'queued' });

    expect(await p.runs.get(tenant, run.runId)).toMatchObject({ status: 'queued', actions: 0, tasks: [] });
    // No worker yet: the run waits in its tenant's ready list, BullMQ holds nothing.
    expect(await p.queue.jobs()).toBe(0);
    expect(await p.redis.lrange(`${p.redisKeys.fairBase(0)}:ready:${tenant}`, 0, -1)).toEqual([
      JSON.stringify({ tenant, runId: run.runId, scenarioId: run.scenarioId }),
    ]);
    expect(await p.queue.depth()).toBe(1);

    const worker = p.startWorker({ concurrency: 1 });
    try {
      const done = await waitUntil(
        'the run to end',
        async () => {
          const r = await p.runs.get(tenant, run.runId);
          return r && ENDED.includes(r.status) ? r : null;
        },
        { timeoutMs: 15_000 },
      );
      expect(done).toMatchObject({ status: 'succeeded', actions: LOOP3_ACTIONS, error: null, pending: null });
      expect(done.outputs.map((m) => m.payload)).toEqual([{ n: 12, items: [2, 4, 6] }]);
      expect(taskSum(done)).toBe(LOOP3_ACTIONS);
      expect((await p.ledger.usage(tenant, new Date())).used).toBe(LOOP3_ACTIONS);
      await waitUntil('the queue to drain', async () => (await p.queue.depth()) === 0, { timeoutMs: 5000 });
    } finally {
      await worker.close();
    }
  });

  it('runs triggered together are persisted, then queued at once; dispatched as one job, which workers split and share', async () => {
    const ranBy = [0, 0];
    let otherRan: () => void = () => undefined;
    const otherRanOnce = new Promise<void>((r) => (otherRan = r));
    const p = await production({ onRunEnd: () => ranBy[0]!++ });
    const other = await production({
      prefix: p.redisKeys.prefix,
      onRunEnd: () => {
        ranBy[1]!++;
        otherRan();
      },
    });
    const tenant = 'acme';
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    const batches: string[][] = [];
    const enqueueBatch = p.queue.enqueueBatch.bind(p.queue);
    p.queue.enqueueBatch = async (refs) => {
      // Every run of the batch is stored when the batch is handed to the queue.
      const stored = await Promise.all(refs.map((r) => p.runs.get(r.tenant, r.runId)));
      expect(stored.map((r) => r?.status)).toEqual(refs.map(() => 'queued'));
      batches.push(refs.map((r) => r.runId));
      return enqueueBatch(refs);
    };
    const handedOn: string[][] = [];
    const handOff = p.dispatcher.handOff.bind(p.dispatcher);
    p.dispatcher.handOff = async (refs) => {
      handedOn.push(refs.map((r) => r.runId));
      await handOff(refs);
      // A split by the first worker (p's): the rest is in the queue; the runs it kept wait until
      // the other worker has ended one, so both take part whatever the timing.
      await otherRanOnce;
    };
    // A subscriber to run events only is sent no task events.
    const seen: string[] = [];
    const stop = await p.subscribe(tenant, (e) => seen.push(`${e.type} ${e.runId}`), { runsOnly: true });
    cleanups.push(stop);
    const N = 10;
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const [missing, notJson, ...runs] = await Promise.allSettled([
      p.trigger(tenant, 'nope', {}, { type: 'manual' }),
      p.trigger(tenant, 'loop3', cyclic, { type: 'manual' }),
      ...Array.from({ length: N }, (_, i) => p.trigger(tenant, 'loop3', loop3Payload(i), { type: 'manual' })),
    ]);
    // A bad trigger fails alone; the others of its batch go ahead.
    expect(missing).toMatchObject({ status: 'rejected', reason: { code: 'NOT_FOUND' } });
    expect(notJson).toMatchObject({ status: 'rejected', reason: { code: 'INVALID_INPUT' } });
    const ids = runs.map((r) => (r as PromiseFulfilledResult<RunRecord>).value.runId);
    expect(batches).toEqual([ids]);
    // No worker: nothing is dispatched to BullMQ yet.
    expect(await p.queue.jobs()).toBe(0);

    // Two places each, plus each worker's express place (its express lane, which a tenant with
    // runs in flight or ready never reaches): the other process's places are registered first
    // (as its worker would, without dispatching), so the dispatcher gives the first worker a
    // job of 4 runs (both workers' shared places); that worker keeps two (its shared places)
    // and hands the other two on as a job of their own; the other worker starts once the job is split.
    await p.redis.hset(p.redisKeys.fair(0)[5]!, 'other-early', `3 ${Date.now() + 10_000}`);
    const workers = [p.startWorker({ concurrency: 2 })];
    try {
      await waitUntil('the first worker to split the job', () => handedOn.length >= 1, { timeoutMs: 20_000, intervalMs: 20 });
      expect(handedOn[0]).toEqual(ids.slice(2, 4));
      workers.push(other.startWorker({ concurrency: 2 }));
      await allEnded(p, tenant, N);
      for (const [i, id] of ids.entries()) {
        const run = (await p.runs.get(tenant, id))!;
        expect(run).toMatchObject({ status: 'succeeded', actions: LOOP3_ACTIONS });
        expect(run.outputs.map((m) => m.payload)).toEqual([{ n: 3 * (2 * i + 2), items: [2 * i, 2 * i + 2, 2 * i + 4] }]);
        expect(taskSum(run)).toBe(LOOP3_ACTIONS);
      }
      expect(ranBy[0]! + ranBy[1]!).toBe(N);
      await waitUntil('every run end to be published', () => seen.length >= N, { timeoutMs: 5000 });
      expect(seen.sort()).toEqual(ids.map((id) => `run ${id}`).sort());
      expect(Math.min(...ranBy)).toBeGreaterThan(0);
      expect((await p.ledger.usage(tenant, new Date())).used).toBe(N * LOOP3_ACTIONS);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('a burst larger than a batch is enqueued as several jobs of at most 64 runs', async () => {
    const p = await production();
    const tenant = 'acme';
    await p.scenarios.deploy(tenant, scenarioOf({ id: 'one', start: 'f', nodes: [fn('f', 'return { payload: msg.payload + 1 };')] }));
    const sizes: number[] = [];
    const enqueueBatch = p.queue.enqueueBatch.bind(p.queue);
    p.queue.enqueueBatch = async (refs) => {
      sizes.push(refs.length);
      return enqueueBatch(refs);
    };
    const runs = await Promise.all(Array.from({ length: 130 }, (_, i) => p.trigger(tenant, 'one', i, { type: 'manual' })));
    expect(sizes).toEqual([64, 64, 2]);
    expect(new Set(runs.map((r) => r.runId)).size).toBe(130);
    const worker = p.startWorker({ concurrency: 8 });
    try {
      await allEnded(p, tenant, 130);
      const records = await getAll(
        p,
        tenant,
        runs.map((r) => r.runId),
      );
      expect(records.map((r) => [r.status, r.outputs[0]?.payload])).toEqual(runs.map((_, i) => ['succeeded', i + 1]));
    } finally {
      await worker.close();
    }
  });

  it('a job redelivered while its first execution runs (same process or another) records every task once', async () => {
    const p = await production();
    const tenant = 'acme';
    const items = 300;
    await p.ledger.setQuota(tenant, { monthlyActions: 100_000 });
    await p.scenarios.deploy(
      tenant,
      scenarioOf({
        id: 'long',
        start: 'each',
        nodes: [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'inc' }, fn('inc', 'return { payload: msg.payload + 1 };')],
      }),
    );
    const other = await production({ prefix: p.redisKeys.prefix }); // another worker process
    const expected = 1 + 1 + items * 2;
    const ids: string[] = [];
    for (const second of [p, other]) {
      const run = await p.trigger(
        tenant,
        'long',
        Array.from({ length: items }, (_, k) => k),
        { type: 'manual' },
      );
      ids.push(run.runId);
      // As after a lapsed job lock: BullMQ hands the same job out again mid-run, to this
      // process or to another one.
      const first = p.processRun(tenant, run.runId);
      await waitUntil('the first execution to checkpoint', async () => ((await p.runs.get(tenant, run.runId))?.tasks.length ?? 0) > 0, {
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      await Promise.allSettled([first, second.processRun(tenant, run.runId)]);
      const done = (await p.runs.get(tenant, run.runId))!;
      expect(done.status).toBe('succeeded');
      expect(done.tasks.map((t) => t.seq)).toEqual(Array.from({ length: expected }, (_, k) => k + 1));
      expect(done.actions).toBe(expected);
    }
    expect((await p.ledger.usage(tenant, new Date())).used).toBe(ids.length * expected);
  });
});

describe('production: worker processes', () => {
  it('holds the quota exactly under concurrency, and resumed runs end as if never halted', async () => {
    // The same body runs on a Redis Cluster in cluster.test.ts.
    await quotaHeldExactly({ production, procs, redisUrl: redisUrl(), embedded, tenants: ['acme'], runs: 300, quota: 1000 });
  }, 60_000);

  it('records and logs each alert threshold exactly once across concurrent workers', async () => {
    const p = await production();
    const tenant = 'acme';
    const limit = 200;
    const runsCount = 60; // 60 × 9 = 540 actions, past every threshold
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    await p.ledger.setQuota(tenant, { monthlyActions: limit, overage: 'allow', alerts: [0.5, 0.9, 1] });
    const workers = await Promise.all(
      [0, 1, 2].map((i) => procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, concurrency: 4, name: `worker${i}` })),
    );
    await Promise.all(Array.from({ length: runsCount }, (_, i) => p.trigger(tenant, 'loop3', loop3Payload(i), { type: 'manual' })));
    const list = await allEnded(p, tenant, runsCount);
    expect(list.every((r) => r.status === 'succeeded')).toBe(true);

    const usage = await p.ledger.usage(tenant, new Date());
    expect(usage).toMatchObject({ used: runsCount * LOOP3_ACTIONS, overage: runsCount * LOOP3_ACTIONS - limit, remaining: 0 });
    expect(usage.alerts.map((a) => a.threshold)).toEqual([0.5, 0.9, 1]);
    const alertLogs = (ws: Proc[]) => ws.flatMap((w) => w.logs().filter((l) => String(l.msg).startsWith('alert:')));
    await waitUntil('3 alert lines', () => alertLogs(workers).length >= 3, { timeoutMs: 5000 });
    await sleep(300); // a duplicate would be written by now
    const alerts = alertLogs(workers);
    expect(alerts.map((a) => a.threshold).sort()).toEqual([0.5, 0.9, 1]);
    for (const a of alerts) expect(a).toMatchObject({ tenant, limit, period: usage.period.key });
    expect(alerts.map((a) => a.used).sort((a, b) => Number(a) - Number(b))).toEqual([100, 180, 200]);
  }, 45_000);

  it('counts non-billable scenarios and --test runs under nonBillable; enforces maxActiveScenarios in the CLI', async () => {
    const p = await production();
    const tenant = 'acme';
    const cli = (...args: string[]) => procs.run(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args]);
    await p.scenarios.deploy(tenant, scenarioOf({ ...LOOP3, id: 'free', billable: false }));
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    await p.ledger.setQuota(tenant, { monthlyActions: 100, maxActiveScenarios: 1 });
    await procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, concurrency: 2 });

    const free = await p.trigger(tenant, 'free', loop3Payload(0), { type: 'manual' });
    const test = await cli('trigger', 'loop3', '--tenant', tenant, '--test', '--wait', '--json', '--payload', JSON.stringify(loop3Payload(5)));
    expect(test.code, test.stderr).toBe(0);
    const testRun = JSON.parse(test.stdout) as RunRecord;
    expect(testRun).toMatchObject({ status: 'succeeded', actions: LOOP3_ACTIONS, billable: false, trigger: { test: true } });
    await allEnded(p, tenant, 2, 15_000);
    expect((await p.runs.get(tenant, free.runId))!).toMatchObject({ status: 'succeeded', actions: LOOP3_ACTIONS, billable: false });
    const usage = await p.ledger.usage(tenant, new Date());
    expect(usage).toMatchObject({ used: 0, remaining: 100, nonBillable: 2 * LOOP3_ACTIONS, byScenario: [] });
    expect(usage.meters.runs).toBe(2);

    // maxActiveScenarios = 1
    const a = await cli('scenarios', 'enable', 'loop3', '--tenant', tenant);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(`enabled loop3 for tenant ${tenant}\n`);
    const b = await cli('scenarios', 'enable', 'free', '--tenant', tenant);
    expect(b.code).toBe(2);
    expect(b.stdout).toBe('');
    expect(b.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(b.stderr).toMatch(/maxActiveScenarios/);
    expect(await p.scenarios.isEnabled(tenant, 'free')).toBe(false);
    expect((await cli('scenarios', 'enable', 'loop3', '--tenant', tenant)).code).toBe(0); // already enabled
    expect((await cli('scenarios', 'disable', 'loop3', '--tenant', tenant)).code).toBe(0);
    expect((await cli('scenarios', 'enable', 'free', '--tenant', tenant)).code).toBe(0);
    expect((await p.scenarios.list(tenant)).map((s) => [s.id, s.enabled])).toEqual([
      ['free', true],
      ['loop3', false],
    ]);
  }, 30_000);

  it('CLI: trigger --wait --json prints the run record; bad Redis URL and resuming a succeeded run fail with one line', async () => {
    const p = await production();
    const cli = (...args: string[]) => procs.run(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args]);
    await p.scenarios.deploy('default', scenarioOf(LOOP3));
    await procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, concurrency: 2 });

    const t = await cli('trigger', 'loop3', '--wait', '--json', '--payload', JSON.stringify(loop3Payload(1)));
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout.endsWith('\n')).toBe(true);
    expect(t.stdout.trimEnd().split('\n')).toHaveLength(1);
    const run = JSON.parse(t.stdout) as RunRecord;
    expect(run).toMatchObject({ scenarioId: 'loop3', tenant: 'default', status: 'succeeded', actions: LOOP3_ACTIONS, error: null });
    expect(run.outputs.map((m) => m.payload)).toEqual([{ n: 12, items: [2, 4, 6] }]);
    expect(run.tasks).toHaveLength(LOOP3_ACTIONS);
    expect(run.tasks[0]).toMatchObject({ seq: 1, nodeId: '$trigger', actions: 1 });
    expect(run).toEqual({ ...(await p.runs.get('default', run.runId))!, pending: run.pending });

    const resume = await cli('runs', 'resume', run.runId);
    expect(resume.code).toBe(2);
    expect(resume.stdout).toBe('');
    expect(resume.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(resume.stderr).toMatch(/succeeded/);
    expect((await p.runs.get('default', run.runId))!.status).toBe('succeeded');

    const unknown = await cli('runs', 'resume', 'run_nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trimEnd().split('\n')).toHaveLength(1);

    for (const args of [
      ['runs', 'list'],
      ['trigger', 'loop3'],
    ]) {
      const bad = await procs.run(['--redis', 'redis://127.0.0.1:1', '--prefix', p.redisKeys.prefix, ...args]);
      expect(bad.code).not.toBe(0);
      expect(bad.stdout).toBe('');
      expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(/redis:\/\/127\.0\.0\.1:1/);
    }
    expect(await p.runs.list('default')).toHaveLength(1);
  }, 30_000);

  it('runs survive Redis going away mid-run (killed, restarted on the same port with AOF)', async () => {
    const server = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    let current: { stop(): Promise<void> } = server;
    cleanups.push(async () => {
      await current.stop();
      rmSync(server.dir, { recursive: true, force: true });
    });
    const tenant = 'acme';
    const prefix = uniquePrefix();
    const items = 200;
    const runsCount = 8;
    const doc = {
      id: 'slow',
      start: 'each',
      nodes: [
        { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'work', collect: true, next: 'sum' },
        // About 2 ms of CPU per item (3 s for the 8 runs): they cannot all end between "under way" and Redis going away.
        fn('work', 'let x = 0; for (let i = 0; i < 200000; i++) x = (x + i * msg.payload) % 1000003; return { payload: msg.payload + 1 };'),
        fn('sum', 'return { payload: msg.payload.reduce((a, b) => a + b, 0) };'),
      ],
    };
    const expectedActions = 1 + 1 + items * 2 + 1;
    const payload = (i: number) => ({ items: Array.from({ length: items }, (_, k) => k + i) });
    let p = await createProduction({ redisUrl: server.url, prefix, persistent: true });
    opened.push(p);
    await p.scenarios.deploy(tenant, scenarioOf(doc));
    await p.ledger.setQuota(tenant, { monthlyActions: 100_000 });
    const workers = await Promise.all([0, 1].map((i) => procs.worker({ redisUrl: server.url, prefix, concurrency: 4, name: `worker${i}` })));
    const started = await Promise.all(Array.from({ length: runsCount }, (_, i) => p.trigger(tenant, 'slow', payload(i), { type: 'manual' })));
    // Let the runs get going, then pull Redis away.
    await waitUntil('runs to be under way', async () => (await p.ledger.usage(tenant, new Date())).used >= 300, { timeoutMs: 20_000, intervalMs: 20 });
    const usedBefore = (await p.ledger.usage(tenant, new Date())).used;
    await p.close();
    opened.splice(opened.indexOf(p), 1);
    await server.stop();
    await sleep(Number(process.env.FM_TEST_OUTAGE_MS ?? 700)); // FM_TEST_OUTAGE_MS=3000: longer than the job locks
    current = await redisServerAt(server.port, server.dir, ['--appendonly', 'yes', '--appendfsync', 'always']);
    p = await createProduction({ redisUrl: server.url, prefix, persistent: true });
    opened.push(p);
    // Nothing acknowledged was lost, and the runs were not finished yet.
    expect((await p.ledger.usage(tenant, new Date())).used).toBeGreaterThanOrEqual(usedBefore);
    expect((await p.ledger.usage(tenant, new Date())).used).toBeLessThan(runsCount * expectedActions);

    await allEnded(p, tenant, runsCount, 45_000);
    // The workers did lose Redis.
    expect(workers.some((w) => w.stderr.includes('Redis error'))).toBe(true);
    const runs = await getAll(
      p,
      tenant,
      started.map((r) => r.runId),
    );
    for (const [i, r] of runs.entries()) {
      expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
      expect(new Set(r.tasks.map((t) => t.seq)).size).toBe(r.tasks.length);
      expect(r.tasks.map((t) => t.seq)).toEqual(Array.from({ length: expectedActions }, (_, k) => k + 1));
      expect(r.actions).toBe(expectedActions);
      expect(taskSum(r)).toBe(expectedActions);
      const sum = payload(i).items.reduce((a, b) => a + b + 1, 0);
      expect(r.outputs.map((m) => m.payload)).toEqual([sum]);
    }
    expect((await p.ledger.usage(tenant, new Date())).used).toBe(runs.reduce((a, r) => a + taskSum(r), 0));
  }, 60_000);
});

describe('production: billing periods with an injected clock', () => {
  it('splits a run that crosses local midnight on the 1st between periods, by the tenant timezone', async () => {
    let t = 0;
    const clock = () => {
      const d = new Date(t);
      t += 1000; // every reading of the clock is one second later
      return d;
    };
    const p = await production({ now: clock });
    const doc = {
      id: 'tick',
      start: 'each',
      nodes: [
        { id: 'each', type: 'loop', over: 'msg.payload', body: 'inc', collect: true, next: 'out' },
        fn('inc', 'return { payload: msg.payload + 1 };'),
        fn('out', 'return msg;'),
      ],
    };
    const worker = p.startWorker({ concurrency: 1 });
    try {
      const cases = [
        // Tokyo (UTC+9): local midnight of 1 December is 15:00 UTC on 30 November.
        {
          tenant: 'tokyo',
          timezone: 'Asia/Tokyo',
          boundary: '2026-11-30T15:00:00Z',
          before: '2026-11-30',
          after: '2026-12-01',
          start: '2026-11-01T00:00:00+09:00',
        },
        // New York (UTC-5 in winter): local midnight of 1 December is 05:00 UTC on 1 December.
        {
          tenant: 'nyc',
          timezone: 'America/New_York',
          boundary: '2026-12-01T05:00:00Z',
          before: '2026-11-30',
          after: '2026-12-01',
          start: '2026-11-01T00:00:00-04:00',
        },
      ];
      for (const c of cases) {
        await p.scenarios.deploy(c.tenant, scenarioOf(doc));
        await p.ledger.setQuota(c.tenant, { monthlyActions: 1000, timezone: c.timezone });
        const boundary = Date.parse(c.boundary);
        t = boundary - 4500;
        const run = await p.trigger(c.tenant, 'tick', [1, 2, 3, 4], { type: 'manual' });
        const done = await waitUntil(
          `the ${c.tenant} run to end`,
          async () => {
            const r = await p.runs.get(c.tenant, run.runId);
            return r && ENDED.includes(r.status) ? r : null;
          },
          { timeoutMs: 15_000 },
        );
        expect(done.status).toBe('succeeded');
        expect(done.actions).toBe(1 + 1 + 4 * 2 + 1);
        expect(done.outputs.map((m) => m.payload)).toEqual([[2, 3, 4, 5]]);
        // Each task's startedAt is the instant its action was reserved at.
        const old = done.tasks.filter((k) => Date.parse(k.startedAt) < boundary).reduce((a, k) => a + k.actions, 0);
        const fresh = done.actions - old;
        expect(old).toBeGreaterThan(0);
        expect(fresh).toBeGreaterThan(0);

        const nov = await p.ledger.usage(c.tenant, new Date(boundary - 1), '2026-11');
        const dec = await p.ledger.usage(c.tenant, new Date(boundary), '2026-12');
        expect(nov).toMatchObject({ used: old, remaining: 1000 - old, period: { key: '2026-11', start: c.start, timezone: c.timezone } });
        expect(Date.parse(nov.period.end)).toBe(boundary);
        expect(Date.parse(dec.period.start)).toBe(boundary);
        expect(nov.byDay).toEqual([{ date: c.before, actions: old }]);
        expect(nov.byScenario).toEqual([{ scenarioId: 'tick', runs: 1, actions: old }]);
        expect(dec).toMatchObject({ used: fresh, remaining: 1000 - fresh, period: { key: '2026-12' } });
        expect(dec.byDay).toEqual([{ date: c.after, actions: fresh }]);
        // The run is counted in the period of its trigger.
        expect(dec.byScenario).toEqual([{ scenarioId: 'tick', runs: 0, actions: fresh }]);
        // The current-period report at a clock reading follows the same split.
        expect((await p.ledger.usage(c.tenant, new Date(boundary - 1))).period.key).toBe('2026-11');
        expect((await p.ledger.usage(c.tenant, new Date(boundary))).period.key).toBe('2026-12');
      }
    } finally {
      await worker.close();
    }
  });
});
