/**
 * Fair dispatch and flow control (SPEC §10): real Redis, in-process workers of the production
 * platform. Orders are asserted on recorded run ends and on what a loopback service saw at
 * once, never on durations.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { RunRecord } from '../core/types.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Production } from '../redis/production.js';
import { shardOf } from '../redis/shards.js';
import { validateScenario } from '../scenario/validate.js';
import { runCli } from './helpers/cli.js';
import { type Listener, listen, type Seen } from './helpers/listener.js';
import { waitUntil } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const opened: Production[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((p) => p.close()));
  for (const c of closers.splice(0)) await c();
});

async function production(opts: Parameters<typeof useProduction>[0] = {}): Promise<Production> {
  const p = await useProduction(opts);
  opened.push(p);
  return p;
}

const ADMIN = 'admin-key-fair-0123456789abcdef';

const ONE = { id: 'one', start: 'f', nodes: [fn('f', 'return { payload: msg.payload };')] };
/** A 1-node run costs 2 actions: the trigger and the Function. */
const ONE_ACTIONS = 2;

/** A loopback service that holds each request a little and records how many overlap, by path. */
async function holdService(holdMs = 40): Promise<Listener & { now: Map<string, number>; max: Map<string, number> }> {
  const now = new Map<string, number>();
  const max = new Map<string, number>();
  const l = await listen((req: Seen, res: ServerResponse) => {
    const key = req.url.split('?')[0]!;
    now.set(key, (now.get(key) ?? 0) + 1);
    max.set(key, Math.max(max.get(key) ?? 0, now.get(key)!));
    setTimeout(() => {
      now.set(key, now.get(key)! - 1);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    }, holdMs);
  });
  closers.push(() => l.close());
  return Object.assign(l, { now, max });
}

const held = (id: string, base: string, path: string, extra: Record<string, unknown> = {}) =>
  scenarioOf({
    id,
    connections: { svc: { baseUrl: base } },
    start: 'call',
    nodes: [{ id: 'call', type: 'connector', connection: 'svc', method: 'GET', url: path }],
    ...extra,
  });

async function allEnded(p: Production, tenant: string, count: number, timeoutMs = 60_000): Promise<RunRecord[]> {
  return waitUntil(
    `${count} runs of ${tenant} to end`,
    async () => {
      const list = await p.runs.list(tenant, { limit: 10_000 });
      if (list.length !== count || list.some((r) => r.status === 'queued' || r.status === 'running')) return null;
      return Promise.all(list.map(async (r) => (await p.runs.get(tenant, r.runId))!));
    },
    { timeoutMs, intervalMs: 200 },
  );
}

describe('fair dispatch', () => {
  it("another tenant's run starts within the next few run starts, whatever the backlog ahead of it", async () => {
    const ends: string[] = [];
    const p = await production({ onRunEnd: (run) => ends.push(`${run.tenant}/${run.runId}`) });
    for (const t of ['aaa', 'bbb']) await p.scenarios.deploy(t, scenarioOf(ONE));
    await p.ledger.setQuota('aaa', { monthlyActions: 10_000 });
    // A backlog of 300 runs of tenant aaa, queued first.
    const backlog = await Promise.all(Array.from({ length: 300 }, (_, i) => p.trigger('aaa', 'one', i, { type: 'manual' })));
    expect(backlog).toHaveLength(300);
    p.startWorker({ concurrency: 1 });
    await waitUntil('aaa to have ended 20 runs', () => ends.length >= 20, { timeoutMs: 30_000, intervalMs: 5 });
    const before = ends.length;
    const b = await p.trigger('bbb', 'one', 'b', { type: 'manual' });
    await waitUntil("bbb's run to end", () => ends.includes(`bbb/${b.runId}`), { timeoutMs: 30_000, intervalMs: 5 });
    const at = ends.indexOf(`bbb/${b.runId}`);
    // One place: BullMQ holds at most the run executing; bbb's is the next one dispatched.
    expect(at - before).toBeLessThanOrEqual(3);
    // First in, first out across tenants would have put it behind the whole backlog.
    await allEnded(p, 'aaa', 300);
    const used = await p.ledger.usage('aaa', new Date());
    expect(used.used).toBe(300 * ONE_ACTIONS);
  }, 90_000);

  it("a quiet tenant's run takes the worker's express place: it ends while another tenant's runs fill every other place", async () => {
    // A service that answers only when told: tenant aaa's runs hold their places until then.
    const pending: ServerResponse[] = [];
    let most = 0;
    const gate = await listen((_req: Seen, res: ServerResponse) => {
      pending.push(res);
      most = Math.max(most, pending.length);
    });
    const answerAll = () => {
      for (const res of pending.splice(0)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }
    };
    closers.push(async () => {
      answerAll();
      await gate.close();
    });
    const p = await production({ env: { FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
    await p.scenarios.deploy('aaa', held('work', gate.base, '/work'));
    await p.scenarios.deploy('bbb', scenarioOf(ONE));
    await Promise.all(Array.from({ length: 5 }, (_, i) => p.trigger('aaa', 'work', i, { type: 'manual' })));
    p.startWorker({ concurrency: 1 });
    await waitUntil("aaa's first run to hold the worker's place", () => pending.length === 1, { timeoutMs: 20_000, intervalMs: 10 });
    // Before express places, bbb's run waited for aaa's held run to end: here, never.
    const b = await p.trigger('bbb', 'one', 'b', { type: 'manual' });
    const ended = await waitUntil(
      "bbb's run to end while aaa's run is held",
      async () => {
        const run = await p.runs.get('bbb', b.runId);
        return run && run.status !== 'queued' && run.status !== 'running' ? run : null;
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    );
    expect(ended.status).toBe('succeeded');
    expect(pending).toHaveLength(1);
    // A tenant with a backlog never takes the express place: aaa has had one run at a time.
    expect(most).toBe(1);
    while ((await p.runs.list('aaa', { status: 'succeeded' })).length < 5) {
      answerAll();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(most).toBe(1);
    expect((await p.ledger.usage('aaa', new Date())).used).toBe(5 * 2);
  }, 60_000);

  it('weights 2:1 give starts in that proportion while both tenants have a backlog', async () => {
    const ends: string[] = [];
    const p = await production({ onRunEnd: (run) => ends.push(run.tenant) });
    for (const t of ['heavy', 'light']) await p.scenarios.deploy(t, scenarioOf(ONE));
    await p.ledger.setQuota('heavy', { weight: 2 });
    await Promise.all(['heavy', 'light'].flatMap((t) => Array.from({ length: 60 }, (_, i) => p.trigger(t, 'one', i, { type: 'manual' }))));
    p.startWorker({ concurrency: 1 });
    await allEnded(p, 'heavy', 60);
    await allEnded(p, 'light', 60);
    const first = ends.slice(0, 60);
    const heavy = first.filter((t) => t === 'heavy').length;
    expect(heavy).toBeGreaterThanOrEqual(37);
    expect(heavy).toBeLessThanOrEqual(43);
    for (const t of ['heavy', 'light']) expect((await p.ledger.usage(t, new Date())).used).toBe(60 * ONE_ACTIONS);
  }, 90_000);

  it('several tenants run to completion over 3 queue shards, billed exactly', async () => {
    const env = { ...process.env, FLOWMETER_QUEUE_SHARDS: '3' };
    const p = await production({ env });
    const tenants = ['t1', 't2', 't3', 't4', 't5', 't6'];
    // The tenants spread over more than one shard.
    expect(new Set(tenants.map((t) => shardOf(t, 3))).size).toBeGreaterThan(1);
    for (const t of tenants) await p.scenarios.deploy(t, scenarioOf(ONE));
    await Promise.all(tenants.flatMap((t) => Array.from({ length: 15 }, (_, i) => p.trigger(t, 'one', i, { type: 'manual' }))));
    // Each tenant's runs wait in its own shard's ready list.
    for (const t of tenants) expect(await p.redis.llen(`${p.redisKeys.fairBase(shardOf(t, 3))}:ready:${t}`)).toBe(15);
    const other = await production({ env, prefix: p.redisKeys.prefix });
    p.startWorker({ concurrency: 3 });
    other.startWorker({ concurrency: 3 });
    for (const t of tenants) {
      const runs = await allEnded(p, t, 15);
      expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
      expect((await p.ledger.usage(t, new Date())).used).toBe(15 * ONE_ACTIONS);
    }
    await waitUntil('every run to be released', async () => (await p.queue.depth()) === 0, { timeoutMs: 10_000 });
  }, 90_000);
});

describe('bulk dispatch', () => {
  it('one dispatch call pushes and releases thousands of runs (chunked under Lua’s stack limit), a lone tenant’s picks in order', async () => {
    const p = await production();
    const k = p.redisKeys;
    const ready = `${k.fairBase(0)}:ready:bulk`;
    const N = 4500; // its `where` entries are 9,000 HSET arguments: one unpack() would fail
    const refs = Array.from({ length: N }, (_, i) => JSON.stringify({ tenant: 'bulk', runId: `r${i}`, scenarioId: 's' }));
    // A worker with 100 places (one of them its express place): pushed all, 64 picked in order.
    let out = await p.redis.fmDispatch(...k.fair(0), k.fairBase(0), 64, 'f0.', 1, 'w', 100, 60_000, 0, 0, N, ...refs);
    const picked = out.slice(3).map((r) => JSON.parse(String(r)).runId);
    expect(picked).toEqual(Array.from({ length: 64 }, (_, i) => `r${i}`));
    expect(await p.redis.llen(ready)).toBe(N - 64);
    expect(await p.redis.lindex(ready, 0)).toBe(refs[64]);
    expect(await p.redis.hlen(k.fair(0)[2]!)).toBe(N);
    // Pushed again in the same call and while dispatched: still once each.
    out = await p.redis.fmDispatch(...k.fair(0), k.fairBase(0), 0, 'f0.', 0, 0, 0, 2, refs[0]!, refs[100]!);
    expect(await p.redis.llen(ready)).toBe(N - 64);
    // The next call picks up to the shared places left (100 places + an eighth, less the
    // express place: 111, less the 64 in flight), then the tenant is held at them: a
    // backlogged tenant never takes the express place.
    out = await p.redis.fmDispatch(...k.fair(0), k.fairBase(0), 64, 'f0.', 0, 0, 0, 0);
    expect(out.slice(3).map((r) => JSON.parse(String(r)).runId)).toEqual(Array.from({ length: 47 }, (_, i) => `r${64 + i}`));
    // Releasing every run at once (still-ready ones are no-ops): only the 111 dispatched leave
    // `where`; r0 was pushed again while dispatched, so it is queued once more.
    const ids = Array.from({ length: N }, (_, i) => `r${i}`);
    await p.redis.fmDispatch(...k.fair(0), k.fairBase(0), 0, 'f0.', 0, 0, N, ...ids, 0);
    expect(await p.redis.hlen(k.fair(0)[2]!)).toBe(N - 111 + 1);
    expect(await p.redis.zcard(k.fair(0)[3]!)).toBe(0);
    expect(await p.redis.hget(k.fair(0)[4]!, 'rt:bulk')).toBeNull();
    expect(JSON.parse((await p.redis.lindex(ready, -1))!)).toEqual({ tenant: 'bulk', runId: 'r0', scenarioId: 's' });
  }, 60_000);
});

describe('lost dispatches', () => {
  it('a run picked by a process that died before adding its job goes back to ready (sweep.lua) and runs once', async () => {
    const p = await production();
    await p.scenarios.deploy('acme', scenarioOf(ONE));
    const run = await p.trigger('acme', 'one', 1, { type: 'manual' });
    const k = p.redisKeys;
    const ready = `${k.fairBase(0)}:ready:acme`;
    expect(await p.redis.llen(ready)).toBe(1);
    // A worker's places, and a process that picks the run and dies before adding its job.
    await p.redis.hset(k.fair(0)[5]!, 'ghost', `1 ${Date.now() + 60_000}`);
    const out = await p.redis.fmDispatch(...k.fair(0), k.fairBase(0), 64, 'f0.', 0, 0, 0, 0);
    expect(out.slice(3).map((r) => JSON.parse(String(r)).runId)).toEqual([run.runId]);
    expect([await p.redis.llen(ready), await p.queue.jobs()]).toEqual([0, 0]);
    // The sweep finds no job naming it: back to the front of its ready list, and dispatched
    // again at once, with its job this time; the next sweep leaves it alone.
    expect(await p.dispatcher.sweep(0)).toBe(1);
    expect([await p.redis.llen(ready), await p.queue.jobs()]).toEqual([0, 1]);
    expect(await p.dispatcher.sweep(0)).toBe(0);
    await p.redis.hdel(k.fair(0)[5]!, 'ghost');
    p.startWorker({ concurrency: 1 });
    const [ended] = await allEnded(p, 'acme', 1);
    expect(ended).toMatchObject({ runId: run.runId, status: 'succeeded', actions: ONE_ACTIONS });
    expect((await p.ledger.usage('acme', new Date())).used).toBe(ONE_ACTIONS);
    await waitUntil('the run to be released', async () => (await p.queue.depth()) === 0, { timeoutMs: 5000 });
    expect(await p.dispatcher.sweep(0)).toBe(0);
  }, 60_000);
});

describe('pushed again while dispatched', () => {
  it('a run queued again before its worker released it (a resume, a second firing) is queued once more on release', async () => {
    const p = await production();
    await p.scenarios.deploy('acme', scenarioOf(ONE));
    const run = await p.trigger('acme', 'one', 1, { type: 'manual' });
    const k = p.redisKeys;
    const ready = `${k.fairBase(0)}:ready:acme`;
    await p.redis.hset(k.fair(0)[5]!, 'ghost', `1 ${Date.now() + 60_000}`);
    await p.dispatcher.kick();
    expect([await p.redis.llen(ready), await p.queue.jobs()]).toEqual([0, 1]);
    const ref = { tenant: 'acme', runId: run.runId, scenarioId: 'one' };
    // Pushed again while dispatched: not a second entry now...
    await p.dispatcher.push([ref]);
    expect(await p.redis.llen(ready)).toBe(0);
    // ...but queued once more when the worker releases it (and only once).
    await p.redis.hdel(k.fair(0)[5]!, 'ghost');
    await p.dispatcher.ended([ref]);
    expect((await p.redis.lrange(ready, 0, -1)).map((r) => JSON.parse(r))).toEqual([ref]);
    await p.dispatcher.push([ref]);
    expect(await p.redis.llen(ready)).toBe(1);
  }, 30_000);
});

describe('flow control', () => {
  it("a tenant's and a scenario's concurrency are never exceeded; runs over them wait and all end", async () => {
    const svc = await holdService();
    const p = await production({ env: { FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
    await p.ledger.setQuota('acme', { concurrency: 2, monthlyActions: 10_000 });
    await p.scenarios.deploy('acme', held('work', svc.base, '/acme'));
    await p.scenarios.deploy('beta', held('capped', svc.base, '/beta-capped', { concurrency: 1 }));
    await p.scenarios.deploy('beta', held('free', svc.base, '/beta-free'));
    await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => p.trigger('acme', 'work', i, { type: 'manual' })),
      ...Array.from({ length: 6 }, (_, i) => p.trigger('beta', 'capped', i, { type: 'manual' })),
      ...Array.from({ length: 6 }, (_, i) => p.trigger('beta', 'free', i, { type: 'manual' })),
    ]);
    p.startWorker({ concurrency: 8 });
    // While acme is at its limit, its queued runs say why they wait.
    const why = await waitUntil(
      'a queued acme run to show why it waits',
      async () => (await p.runs.list('acme', { status: 'queued' })).find((r) => r.waiting)?.waiting ?? null,
      { timeoutMs: 20_000, intervalMs: 10 },
    );
    expect(why).toBe('tenant concurrency 2 reached');
    const acme = await allEnded(p, 'acme', 12);
    const beta = await allEnded(p, 'beta', 12);
    expect([...acme, ...beta].every((r) => r.status === 'succeeded' && r.actions === 2)).toBe(true);
    expect(svc.max.get('/acme')).toBe(2);
    expect(svc.max.get('/beta-capped')).toBe(1);
    // A limit of one scenario does not hold the tenant's other scenarios.
    expect(svc.max.get('/beta-free')).toBeGreaterThan(1);
    expect(svc.requests).toHaveLength(24);
    expect((await p.ledger.usage('acme', new Date())).used).toBe(24);
  }, 90_000);

  it('a throttle limits the starts per period; the rest wait as queued (showing why) and start later', async () => {
    const p = await production({ onRunEnd: () => undefined });
    const doc = { ...ONE, throttle: { limit: 3, periodMs: 60_000 } };
    await p.scenarios.deploy('acme', scenarioOf(doc));
    const runs = await Promise.all(Array.from({ length: 7 }, (_, i) => p.trigger('acme', 'one', i, { type: 'manual' })));
    p.startWorker({ concurrency: 4 });
    const ended = await waitUntil(
      'three runs to end',
      async () => {
        const list = await p.runs.list('acme', { limit: 100 });
        return list.filter((r) => r.status === 'succeeded').length === 3 ? list : null;
      },
      { timeoutMs: 20_000 },
    );
    const queued = ended.filter((r) => r.status === 'queued');
    expect(queued).toHaveLength(4);
    expect(queued.every((r) => r.waiting === 'scenario throttle 3 per 60000 ms')).toBe(true);
    expect((await p.runs.get('acme', queued[0]!.runId))!.waiting).toBe('scenario throttle 3 per 60000 ms');
    // The reason in `runs list` and `runs show` of the command line.
    const env = { FLOWMETER_REDIS_URL: redisUrl() };
    const list = await runCli(['runs', 'list', '--tenant', 'acme', '--prefix', p.redisKeys.prefix, '--status', 'queued'], env);
    expect(list.stdout.split('\n').filter((l) => l.includes('waiting: scenario throttle 3 per 60000 ms'))).toHaveLength(4);
    const show = await runCli(['runs', 'show', queued[0]!.runId, '--tenant', 'acme', '--prefix', p.redisKeys.prefix], env);
    expect(show.stdout).toContain('waiting: scenario throttle 3 per 60000 ms');
    // And in the API's run answers.
    const app = await buildServer(p, { adminKey: ADMIN });
    closers.push(() => app.close());
    const one = await app.inject({ method: 'GET', url: `/api/runs/${queued[0]!.runId}?tenant=acme`, headers: { authorization: `Bearer ${ADMIN}` } });
    expect(one.json()).toMatchObject({ status: 'queued', waiting: 'scenario throttle 3 per 60000 ms' });
    // Still held a little later: the window has not passed.
    expect((await p.runs.list('acme', { status: 'queued' })).length).toBe(4);
    // A shorter period lets the rest go (the worker's heartbeat refreshes the limits): none dropped.
    await p.scenarios.deploy('acme', scenarioOf({ ...doc, throttle: { limit: 3, periodMs: 300 } }));
    const all = await allEnded(p, 'acme', 7, 30_000);
    expect(all.map((r) => r.status)).toEqual(runs.map(() => 'succeeded'));
    expect((await p.ledger.usage('acme', new Date())).used).toBe(7 * ONE_ACTIONS);
  }, 90_000);

  it('embedded mode honours tenant and scenario concurrency: runs wait, none dropped', async () => {
    const svc = await holdService(30);
    const e = createEmbedded({ env: { FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
    closers.push(() => e.close());
    await e.ledger.setQuota('acme', { concurrency: 2 });
    await e.scenarios.deploy('acme', held('work', svc.base, '/e-acme'));
    await e.scenarios.deploy('beta', held('capped', svc.base, '/e-capped', { concurrency: 1 }));
    const runs = await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => e.trigger('acme', 'work', i, { type: 'manual' })),
      ...Array.from({ length: 4 }, (_, i) => e.trigger('beta', 'capped', i, { type: 'manual' })),
    ]);
    await waitUntil('every run to end', async () => {
      const got = await Promise.all(runs.map((r) => e.runs.get(r.tenant, r.runId)));
      return got.every((r) => r?.status === 'succeeded');
    });
    expect(svc.max.get('/e-acme')).toBe(2);
    expect(svc.max.get('/e-capped')).toBe(1);
    expect(svc.requests).toHaveLength(12);
  }, 60_000);

  it('bad weights, concurrencies and throttles are refused with one line, changing nothing', async () => {
    const p = await production();
    await p.ledger.setQuota('acme', { concurrency: 3, weight: 2 });
    const env = { FLOWMETER_REDIS_URL: redisUrl() };
    for (const args of [
      ['--weight', '0'],
      ['--weight', '1.5'],
      ['--weight', 'x'],
      ['--concurrency', '0'],
      ['--concurrency', '-2'],
      ['--concurrency', '2', '--weight', '0'],
    ]) {
      const r = await runCli(['quota', 'set', '--tenant', 'acme', '--prefix', p.redisKeys.prefix, ...args], env);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--(weight|concurrency) must be a positive whole number/);
    }
    for (const patch of [{ weight: 0 }, { concurrency: 2.5 }, { weight: -1 }]) {
      await expect(p.ledger.setQuota('acme', patch)).rejects.toThrow();
    }
    const app = await buildServer(p, { adminKey: ADMIN });
    closers.push(() => app.close());
    for (const body of [{ weight: 0 }, { concurrency: 0 }, { concurrency: 'many' }, { weight: 2.5 }]) {
      const res = await app.inject({ method: 'PUT', url: '/api/quota?tenant=acme', headers: { authorization: `Bearer ${ADMIN}` }, payload: body });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_INPUT');
      expect(res.json().error.message.split('\n')).toHaveLength(1);
      expect(res.json().error.message).toMatch(/weight|concurrency/);
    }
    expect(await p.ledger.getQuota('acme')).toMatchObject({ concurrency: 3, weight: 2 });
    // The API sets them, and `null` unsets the concurrency.
    const put = (body: unknown) =>
      app.inject({ method: 'PUT', url: '/api/quota?tenant=acme', headers: { authorization: `Bearer ${ADMIN}` }, payload: body as object });
    expect((await put({ concurrency: 5, weight: 3 })).json()).toMatchObject({ concurrency: 5, weight: 3 });
    expect((await put({ concurrency: null })).json()).not.toHaveProperty('concurrency');
    await p.ledger.setQuota('acme', { concurrency: 3, weight: 2 });
    expect(await p.ledger.getQuota('acme')).toMatchObject({ concurrency: 3, weight: 2 });
    // `none` unsets the tenant's concurrency.
    const unset = await runCli(['quota', 'set', '--tenant', 'acme', '--prefix', p.redisKeys.prefix, '--concurrency', 'none'], env);
    expect(unset.code).toBe(0);
    expect(await p.ledger.getQuota('acme')).not.toHaveProperty('concurrency');
    expect((await p.ledger.getQuota('acme')).weight).toBe(2);
    // Scenario fields: every problem named.
    for (const [extra, path] of [
      [{ concurrency: 0 }, 'concurrency'],
      [{ concurrency: 'two' }, 'concurrency'],
      [{ throttle: { limit: 0, periodMs: 1000 } }, 'throttle.limit'],
      [{ throttle: { limit: 3 } }, 'throttle.periodMs'],
      [{ throttle: { limit: 3, periodMs: 1000, burst: 2 } }, 'throttle'],
    ] as const) {
      const v = validateScenario({ ...ONE, trigger: { type: 'manual' }, ...extra });
      expect(v.scenario).toBeNull();
      expect(v.problems.join('\n')).toContain(path);
    }
  }, 60_000);
});
