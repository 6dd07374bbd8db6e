/**
 * Compute isolation in production mode (SPEC §10), with a real `flowmeter worker` process, its
 * real sandbox host processes and the HTTP server on real sockets:
 *
 * - crash: a Function whose allocation isolated-vm cannot bound (Symbol.for with 30 MB strings)
 *   aborts only its sandbox host: its node fails with FUNCTION_MEMORY, the worker process lives
 *   on, and other tenants' runs (in flight at the same time, and after) succeed, billed once.
 * - freeze: a Function busy for 60 s (timeoutMs 30000, the most) does not stall the worker:
 *   another tenant's webhook `?wait=true` answers while it computes; the long run executes once
 *   (no lapsed lock, no second claim), fails FUNCTION_TIMEOUT and is billed once.
 * - memory: one tenant's Fan Outs of large Function results keep to their share of what the
 *   worker's runs may hold (FLOWMETER_WAVE_BYTES, engine/kept.ts); another tenant's runs go through.
 *
 * (`flowmeter run` with the crash: test/sandbox-hosts.test.ts; Redis outage: test/outage.test.ts
 * and test/worker-stop.test.ts; hosts killed from outside: test/sandbox-faults.test.ts.)
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { RunRecord, RunStatus } from '../core/types.js';
import type { Production } from '../redis/production.js';
import { listen, type Seen } from './helpers/listener.js';
import { type Proc, Processes, sandboxHostsOf, waitUntil } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const procs = new Processes();
let p: Production | null = null;
let app: FastifyInstance | null = null;

afterEach(async () => {
  await app?.close();
  await procs.killAll();
  await p?.close();
  app = null;
  p = null;
});

const ENDED: RunStatus[] = ['succeeded', 'failed', 'halted', 'rejected'];
const BOMB = "for (let i = 0; i < 10; i++) Symbol.for(i + 'x'.repeat(30 * 1024 * 1024)); return msg;";
const taskSum = (run: RunRecord): number => run.tasks.reduce((a, t) => a + t.actions, 0);

async function ended(tenant: string, runId: string, timeoutMs = 60_000): Promise<RunRecord> {
  return waitUntil(
    `run ${runId} to end`,
    async () => {
      const r = await p!.runs.get(tenant, runId);
      return r && ENDED.includes(r.status) ? r : null;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

async function worker(): Promise<Proc> {
  // Short locks: a worker whose event loop stalled would lose them within 2 s.
  return procs.worker({ redisUrl: redisUrl(), prefix: p!.redisKeys.prefix, concurrency: 4, lockMs: 2000 });
}

describe('compute isolation: a real worker process and its sandbox hosts', () => {
  it('crash: the Symbol.for allocation kills only its sandbox host; the node fails FUNCTION_MEMORY, the worker and other runs carry on', async () => {
    p = await useProduction();
    await p.ledger.setQuota('evil', { monthlyActions: 1000 });
    await p.ledger.setQuota('good', { monthlyActions: 100_000 });
    await p.scenarios.deploy('evil', scenarioOf({ id: 'bomb', start: 'grow', nodes: [fn('grow', BOMB)] }));
    await p.scenarios.deploy(
      'good',
      scenarioOf({
        id: 'sum',
        start: 'each',
        nodes: [
          { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'sq', collect: true, next: 'total' },
          fn('sq', 'let x = 0; for (let i = 0; i < 20000; i++) x = (x + i) % 7; return { payload: msg.payload * msg.payload + x * 0 };'),
          fn('total', 'return { payload: msg.payload.reduce((a, b) => a + b, 0) };'),
        ],
      }),
    );
    const w = await worker();
    const items = Array.from({ length: 40 }, (_, i) => i);
    const want = items.reduce((a, i) => a + i * i, 0);
    // Good runs around the bomb, all in flight together.
    const good = await Promise.all(Array.from({ length: 6 }, () => p!.trigger('good', 'sum', { items }, { type: 'manual' })));
    const bomb = await p.trigger('evil', 'bomb', null, { type: 'manual' });
    good.push(...(await Promise.all(Array.from({ length: 6 }, () => p!.trigger('good', 'sum', { items }, { type: 'manual' })))));

    const bad = await ended('evil', bomb.runId);
    expect(bad.status).toBe('failed');
    expect(bad.error).toMatchObject({ nodeId: 'grow', code: 'FUNCTION_MEMORY' });
    expect(bad.error!.message.split('\n')).toHaveLength(1);
    expect(bad.actions).toBe(2);
    for (const g of good) {
      const run = await ended('good', g.runId);
      expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
      expect(run.outputs).toEqual([{ payload: want }]);
    }
    // The worker lives on and executes the next run too.
    expect(w.child.exitCode).toBeNull();
    const after = await ended('good', (await p.trigger('good', 'sum', { items: [3] }, { type: 'manual' })).runId);
    expect([after.status, after.outputs]).toEqual(['succeeded', [{ payload: 9 }]]);
    expect(w.child.exitCode).toBeNull();
    // Billed once: each ledger equals its runs' task logs; no run was claimed twice.
    expect((await p.ledger.usage('evil', new Date())).used).toBe(2);
    const runs = await Promise.all([...good.map((g) => g.runId), after.runId].map((id) => p!.runs.get('good', id)));
    expect((await p.ledger.usage('good', new Date())).used).toBe(runs.reduce((a, r) => a + taskSum(r!), 0));
    expect(await p.redis.hget(p.redisKeys.run('evil', bomb.runId), 'crashes')).toBeNull();
  }, 90_000);

  it("freeze: a Function busy for 60 s (capped at 30 s) does not stall the worker: another tenant's webhook ?wait=true answers meanwhile; the long run executes once", async () => {
    p = await useProduction();
    await p.ledger.setQuota('a', { monthlyActions: 1000 });
    await p.ledger.setQuota('b', { monthlyActions: 1000 });
    await p.scenarios.deploy(
      'a',
      scenarioOf({
        id: 'spin',
        start: 'busy',
        nodes: [{ id: 'busy', type: 'function', timeoutMs: 30_000, code: 'const t = Date.now(); while (Date.now() - t < 60000) {} return msg;' }],
      }),
    );
    await p.scenarios.deploy(
      'b',
      scenarioOf({
        id: 'hook',
        trigger: { type: 'webhook', path: 'in' },
        start: 'echo',
        nodes: [fn('echo', 'return { payload: { echoed: msg.payload.n } };')],
      }),
    );
    await p.scenarios.enable('b', 'hook', undefined);
    app = await buildServer(p);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const w = await worker();

    const spin = await p.trigger('a', 'spin', null, { type: 'manual' });
    // Its Function computing: a host of the worker running.
    await waitUntil('the long Function to compute', () => sandboxHostsOf(w.pid).some((h) => h.state === 'R'), { timeoutMs: 20_000, intervalMs: 20 });
    for (let n = 1; n <= 5; n++) {
      const res = await fetch(`${base}/hooks/b/in?wait=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n }),
        signal: AbortSignal.timeout(25_000),
      });
      expect(res.status).toBe(200);
      const run = (await res.json()) as RunRecord;
      expect([run.status, run.outputs]).toEqual(['succeeded', [{ payload: { echoed: n } }]]);
    }
    // All five answered while the long Function still computed.
    expect(ENDED).not.toContain((await p.runs.get('a', spin.runId))!.status);

    const long = await ended('a', spin.runId, 90_000);
    expect(long.status).toBe('failed');
    expect(long.error).toMatchObject({ nodeId: 'busy', code: 'FUNCTION_TIMEOUT' });
    expect(long.error!.message).toContain('30000 ms');
    // Executed once: one task per node, claimed once (a lapsed lock would have redelivered it).
    expect(long.tasks.map((t) => [t.nodeId, t.status])).toEqual([
      ['$trigger', 'ok'],
      ['busy', 'error'],
    ]);
    expect(await p.redis.hget(p.redisKeys.run('a', spin.runId), 'crashes')).toBeNull();
    expect(w.logs().filter((l) => /stalled|lock/i.test(String(l.msg ?? '')))).toEqual([]);
    // Billed once.
    expect((await p.ledger.usage('a', new Date())).used).toBe(long.actions);
    expect(long.actions).toBe(2);
    expect((await p.ledger.usage('b', new Date())).used).toBe(5 * 2);
    expect(w.child.exitCode).toBeNull();
  }, 120_000);

  it("memory: one tenant's Fan Outs of large results are held to their share of what the worker's runs may hold (FLOWMETER_WAVE_BYTES); the other tenant's runs go through", async () => {
    // Before, a wave of up to 16 nodes was never measured: four such runs (16 Functions of 10 MB
    // of small objects each) took a worker to 4.4 GB, where it stalled for minutes.
    p = await useProduction();
    await p.ledger.setQuota('evil', { monthlyActions: 10_000 });
    await p.ledger.setQuota('good', { monthlyActions: 10_000 });
    const branches = Array.from({ length: 8 }, (_, i) => `b${i}`);
    await p.scenarios.deploy(
      'evil',
      scenarioOf({
        id: 'wide',
        start: 'fan',
        nodes: [
          { id: 'fan', type: 'fanOut', branches },
          ...branches.map((b) => fn(b, `return { payload: 'x'.repeat(${512 * 1024}) };`, 'size')),
          fn('size', 'return { payload: msg.payload.length };'),
        ],
      }),
    );
    await p.scenarios.deploy('good', scenarioOf({ id: 'one', start: 'f', nodes: [fn('f', 'return { payload: msg.payload + 1 };')] }));
    const w = await procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, concurrency: 4, env: { FLOWMETER_WAVE_BYTES: String(2 * 1024 * 1024) } });
    const wide = await Promise.all(Array.from({ length: 4 }, () => p!.trigger('evil', 'wide', null, { type: 'manual' })));
    const good = await Promise.all(Array.from({ length: 4 }, (_, i) => p!.trigger('good', 'one', i, { type: 'manual' })));
    for (const r of wide) {
      const run = await ended('evil', r.runId);
      // At most 3 of its 8 results (2 MB alone; less while the other runs hold theirs): the rest fail.
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ code: 'OUTPUT_TOO_LARGE' });
      expect(run.error!.message).toMatch(
        /^its 524,\d{3} characters of JSON would take what its wave holds to [\d,]+, more than its share \([\d,]+\) of the 2,097,152 the runs of this process may hold at once$/,
      );
      const ok = run.tasks.filter((t) => branches.includes(t.nodeId) && t.status === 'ok').length;
      expect(ok).toBeLessThanOrEqual(3);
    }
    for (const [i, g] of good.entries()) expect((await ended('good', g.runId)).outputs).toEqual([{ payload: i + 1 }]);
    expect(w.child.exitCode).toBeNull();
  }, 90_000);

  it("noisy neighbour: a quiet tenant's run behind another tenant's backlog is executed by the worker's express lane, a thread of its own, while the backlog holds every other place", async () => {
    p = await useProduction();
    // A service that answers only when told: tenant big's runs hold their places until then.
    const held: ServerResponse[] = [];
    const gate = await listen((_req: Seen, res: ServerResponse) => void held.push(res));
    const answerAll = () => {
      for (const res of held.splice(0)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }
    };
    try {
      await p.scenarios.deploy(
        'big',
        scenarioOf({
          id: 'work',
          connections: { svc: { baseUrl: gate.base } },
          start: 'call',
          nodes: [{ id: 'call', type: 'connector', connection: 'svc', method: 'GET', url: '/work' }],
        }),
      );
      await p.scenarios.deploy('small', scenarioOf({ id: 'one', start: 'f', nodes: [fn('f', 'return { payload: msg.payload + 1 };')] }));
      const backlog = await Promise.all(Array.from({ length: 12 }, (_, i) => p!.trigger('big', 'work', i, { type: 'manual' })));
      const w = await procs.worker({
        redisUrl: redisUrl(),
        prefix: p.redisKeys.prefix,
        concurrency: 4,
        env: { FLOWMETER_EGRESS_ALLOW: '127.0.0.1', FLOWMETER_LOG_LEVEL: 'debug' },
      });
      await waitUntil("big's runs to hold the worker's 4 places", () => held.length === 4, { timeoutMs: 20_000, intervalMs: 20 });
      const small = await p.trigger('small', 'one', 1, { type: 'manual' });
      const run = await ended('small', small.runId, 20_000);
      expect([run.status, run.outputs]).toEqual(['succeeded', [{ payload: 2 }]]);
      // It ended while big's runs still held every shared place: big never took the express place.
      expect(held).toHaveLength(4);
      const endLine = (id: string) => waitUntil(`the worker to log the end of ${id}`, () => w.logs().find((l) => l.runId === id) ?? null, { timeoutMs: 5000 });
      expect(await endLine(small.runId)).toMatchObject({ tenant: 'small', status: 'succeeded', lane: 'express' });
      expect(w.stderr).not.toMatch(/express lane/); // the thread started (no fallback to the main thread)
      while ((await p.runs.list('big', { status: 'succeeded' })).length < backlog.length) {
        answerAll();
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const b of backlog) expect((await endLine(b.runId)).lane).toBeUndefined();
      expect((await p.ledger.usage('big', new Date())).used).toBe(backlog.length * 2);
      expect((await p.ledger.usage('small', new Date())).used).toBe(2);
    } finally {
      answerAll();
      await gate.close();
    }
  }, 90_000);
});
