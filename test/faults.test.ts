/**
 * Faults injected into real processes (real Redis, `flowmeter worker` and `flowmeter scheduler`
 * processes spawned from the build):
 *
 * 1. Workers SIGKILLed at random moments while 200 runs of a mix of scenarios are in flight
 *    (three times, each followed by a replacement worker): every run ends as the scenario
 *    dictates, nothing is billed twice, the ledger equals the task logs, and every run (and
 *    every halted-then-resumed run) ends exactly as the same scenario and input do in
 *    embedded mode.
 * 2. Scheduler processes SIGKILLed and restarted across firing instants: each instant fires
 *    once; with catch-up, an instant passed while every scheduler was down fires once too.
 *
 * (Redis killed and restarted with AOF while runs are in flight: test/production.test.ts.)
 *
 * FM_FAULTS_SEED=<n> replays the inputs and kill points of a run (kill moments still depend
 * on timing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord, RunStatus, TaskRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { faultRandom, taskShape, unluckyLoop, useFaultPlatform } from './helpers/faults.js';
import { ENDED } from './helpers/guarantees.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { type Proc, sleep, waitUntil } from './helpers/processes.js';
import { redisUrl } from './helpers/production.js';
import { fn, postToPeer, scenarioOf } from './helpers/run.js';

const { procs, production, worker } = useFaultPlatform();
let embedded: Embedded;
/** The HTTP peer the scenarios call (`${env:FM_TEST_PEER}`), shared by both modes. */
let peer: Peer;
let peerEnv: Record<string, string>;

beforeAll(async () => {
  peer = await startPeer();
  // A slow peer: runs stay in flight long enough to checkpoint and to be caught by a kill.
  peer.on('POST', '/slow', async (req) => {
    const { v, at } = req.body as { v: number; at: number };
    await sleep(30 + ((v + at) % 9) * 10);
    return { json: { y: (v * 7 + at) % 1000 } };
  });
  peer.on('POST', '/flaky', async (req) => {
    const { k } = req.body as { k: number };
    await sleep(100 + (k % 5) * 20);
    return k % 3 === 0 ? { status: 500, json: { error: 'flaky' } } : { json: { k2: k + 1 } };
  });
  // The peer is on loopback and named through ${env:…}: both opened explicitly for production (SPEC §9).
  peerEnv = { FM_TEST_PEER: peer.base, FLOWMETER_TENANT_ENV: 'FM_TEST_PEER', FLOWMETER_EGRESS_ALLOW: '127.0.0.1' };
  embedded = createEmbedded({ env: peerEnv });
});
afterAll(async () => {
  await embedded?.close();
  await peer?.close();
});

const taskSum = (tasks: TaskRecord[]): number => tasks.reduce((a, t) => a + t.actions, 0);

// ---------------------------------------------------------------------------------------------
// 1. Workers killed at random moments.
// ---------------------------------------------------------------------------------------------

/** Work done by a Function: a little CPU, a result that depends on the input. */
const SPIN = 2000;
const spin = (expr: string) => `let x = ${expr}; for (let i = 0; i < ${SPIN}; i++) x = (x * 31 + i) % 1000003;`;

type Doc = Record<string, unknown> & { id: string };

/** The HTTP peer of the scenarios, named through ${env:…}. */
const PEER = { peer: { baseUrl: '${env:FM_TEST_PEER}' } };

/**
 * A loop whose body is Function `work` and then a call to the (slow) HTTP peer with `body`, so
 * that runs take long enough to checkpoint mid-run and to be in flight when a worker dies;
 * Function `sum` takes the collected answers: 1 + 1 + 3n + 1 actions.
 */
function slowLoop(id: string, work: { id: string }, body: Record<string, string>, sum: { id: string }): Doc {
  return {
    id,
    start: 'each',
    connections: PEER,
    nodes: [
      { id: 'each', type: 'loop', over: 'msg.payload.items', body: work.id, collect: true, next: sum.id },
      work,
      postToPeer('call', '/slow', body, { retry: { attempts: 3, backoffMs: 50 } }),
      sum,
    ],
  };
}

const LOOP = slowLoop(
  'loopfn',
  fn('work', `${spin('msg.payload')} return { payload: { v: msg.payload, x, at: msg.loop.index } };`, 'call'),
  { v: '{{msg.payload.x}}', at: '{{msg.payload.at}}' },
  fn('sum', 'return { payload: { n: msg.payload.length, total: msg.payload.reduce((a, b) => a + b.y, 0), first: msg.payload[0] } };'),
);

/**
 * A fan-out: branch `b` calls the peer, which answers 500 for k % 3 == 0, and a Catch
 * recovers it; branch `c` loops over items and fails (uncaught: the run fails) on an item 13.
 */
const FAN = {
  id: 'fan',
  start: 'split',
  connections: PEER,
  nodes: [
    { id: 'split', type: 'fanOut', branches: ['a', 'b', 'c'] },
    fn('a', `${spin('msg.payload.k')} return { payload: { a: x } };`),
    postToPeer('b', '/flaky', { k: '{{msg.payload.k}}' }, { retry: { attempts: 2, backoffMs: 0 }, next: 'b2' }),
    fn('b2', 'return { payload: { b: msg.payload.k2 * 10 } };'),
    ...unluckyLoop({ loop: 'c', body: 'cw', sum: 'c2' }, spin('msg.payload')),
    { id: 'catchb', type: 'catch', scope: ['b'], next: 'recover' },
    fn('recover', 'return { payload: { recovered: msg.error.code, k: msg.payload.k } };'),
  ],
};

/**
 * Runs of this one halt on the quota (of their own tenant) when they need more than QUOTA:
 * 1 + 1 + 3n + 1 actions, a halt possibly between a Function and its call.
 */
const METERED = slowLoop(
  'metered',
  fn('step', `${spin('msg.payload + msg.loop.index')} return { payload: { v: x % 997, at: msg.loop.index } };`, 'call'),
  { v: '{{msg.payload.v}}', at: '{{msg.payload.at}}' },
  fn('total', 'return { payload: { sum: msg.payload.reduce((a, b) => a + b.y, 0), n: msg.payload.length } };'),
);
const QUOTA = 20;
/** Runs per worker process: few, so the queue keeps a backlog and every worker is busy when killed. */
const WORKER_CONCURRENCY = 2;

interface Case {
  i: number;
  tenant: string;
  doc: Doc;
  payload: unknown;
  quota?: number;
}

function makeCases(count: number, rnd: () => number): Case[] {
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 10 < 4 ? 'loop' : i % 10 < 7 ? 'fan' : 'metered';
    if (kind === 'loop') {
      const n = int(1, 12); // 6–39 actions
      cases.push({ i, tenant: 'acme', doc: LOOP, payload: { items: Array.from({ length: n }, () => int(0, 999)) } });
    } else if (kind === 'fan') {
      const m = int(0, 12); // 8–34 actions; about a third fail on an item 13
      const items = Array.from({ length: m }, () => (rnd() < 0.04 ? 13 : int(0, 99)));
      cases.push({ i, tenant: 'acme', doc: FAN, payload: { k: int(0, 50), items } });
    } else {
      // A tenant of its own per run, with a quota of QUOTA: whether (and where) the run halts
      // depends on its input alone, so it can be compared with an embedded run under the same
      // quota, and with that run resumed.
      const n = int(2, 12); // 9–39 actions: above QUOTA (20), from 6 items, the run halts
      cases.push({ i, tenant: `q${i}`, doc: METERED, payload: { items: Array.from({ length: n }, () => int(0, 99)) }, quota: QUOTA });
    }
  }
  return cases;
}

/** The embedded reference: a run of the same scenario and input (quota as given), and its resumption. */
async function reference(c: Case): Promise<{ first: RunRecord; final: RunRecord }> {
  const tenant = `ref-${c.tenant}`;
  await embedded.ledger.setQuota(tenant, { monthlyActions: c.quota ?? 1_000_000 });
  const first = structuredClone(await embedded.run(scenarioOf(c.doc), c.payload, { tenant }));
  if (first.status !== 'halted') return { first, final: first };
  await embedded.ledger.setQuota(tenant, { monthlyActions: 1_000_000 });
  const final = await embedded.resumeRun(tenant, first.runId);
  return { first, final };
}

describe('faults: worker processes SIGKILLed at random moments', () => {
  it('200 runs of mixed scenarios, 3 kills: every run ends as in embedded mode, billed once', async () => {
    const rnd = faultRandom('faults');
    const RUNS = 200;
    const cases = makeCases(RUNS, rnd);
    const t0 = Date.now();

    // References first (this process's CPU is then free for the workers).
    const refs = await Promise.all(cases.map(reference));
    const tRefs = Date.now();

    const p = await production();
    const tenants = [...new Set(cases.map((c) => c.tenant))];
    await p.ledger.setQuota('acme', { monthlyActions: 10_000_000 });
    await p.scenarios.deploy('acme', scenarioOf(LOOP));
    await p.scenarios.deploy('acme', scenarioOf(FAN));
    for (const c of cases) {
      if (c.quota === undefined) continue;
      await p.ledger.setQuota(c.tenant, { monthlyActions: c.quota, resumeHalted: 'manual' });
      await p.scenarios.deploy(c.tenant, scenarioOf(METERED));
    }

    let nextWorker = 0;
    const live: Proc[] = [];
    const startWorker = async () => {
      // Kills are random here: a run in flight on two killed workers would be given up as a
      // poison run (WORKER_CRASHED, test/poison.test.ts); this test is about checkpoint recovery.
      const w = await worker({
        concurrency: WORKER_CONCURRENCY,
        lockMs: 2000,
        crashLimit: 10,
        env: peerEnv,
        name: `worker${nextWorker++}`,
      });
      live.push(w);
      return w;
    };
    await Promise.all([0, 1, 2].map(() => startWorker()));
    const tReady = Date.now();

    const runs = await Promise.all(cases.map((c) => p.trigger(c.tenant, c.doc.id, c.payload, { type: 'manual' })));
    const ids = runs.map((r) => r.runId);
    const k = p.redisKeys;
    const statuses = async () => {
      const pipe = p.redis.pipeline();
      for (const [i, id] of ids.entries()) pipe.hmget(k.run(cases[i]!.tenant, id), 'status', 'owner');
      for (const [i, id] of ids.entries()) pipe.llen(k.runTasks(cases[i]!.tenant, id));
      const rows = (await pipe.exec())!.map(([, v]) => v);
      return ids.map((_, i) => {
        const [status, owner] = rows[i] as [string, string | null];
        return { status, owner, stored: rows[RUNS + i] as number };
      });
    };
    const endedCount = async () => (await statuses()).filter((s) => ENDED.includes(s.status as RunStatus)).length;

    // Three kills, at random points of the batch's progress (between 10% and 75% of the runs
    // ended, so runs are always in flight), each of a random live worker, then a replacement.
    const marks = [rnd(), rnd(), rnd()].map((x) => Math.floor(RUNS * (0.1 + 0.65 * x))).sort((a, b) => a - b);
    const kills: Array<{ at: number; victim: string; ended: number; running: number; checkpointed: number; snapshot: Awaited<ReturnType<typeof statuses>> }> =
      [];
    for (const mark of marks) {
      await waitUntil(`${mark} runs to end`, async () => (await endedCount()) >= mark, { timeoutMs: 40_000, intervalMs: 25 });
      const victim = live.splice(Math.floor(rnd() * live.length), 1)[0]!;
      await sleep(Math.floor(rnd() * 100));
      const exit = await victim.stop('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      const snapshot = await statuses();
      // Claimed (an owner) and not ended: running somewhere (its status field says 'queued'
      // until its first checkpoint).
      const running = snapshot.filter((s) => s.owner !== null && !ENDED.includes(s.status as RunStatus));
      kills.push({
        at: Date.now() - tReady,
        victim: victim.name,
        ended: snapshot.filter((s) => ENDED.includes(s.status as RunStatus)).length,
        running: running.length,
        checkpointed: running.filter((s) => s.stored > 0).length,
        snapshot,
      });
      await startWorker();
    }

    await waitUntil(`all ${RUNS} runs to end`, async () => (await endedCount()) === RUNS, { timeoutMs: 40_000, intervalMs: 100 });
    const tEnded = Date.now();
    const final = await statuses();
    // Runs that were running at a kill and were claimed again afterwards: taken over.
    const takenOver = new Set<number>();
    /** Taken over with tasks already stored: continued from a checkpoint, not from the start. */
    const fromCheckpoint = new Set<number>();
    for (const kill of kills) {
      for (const [i, s] of kill.snapshot.entries()) {
        if (s.owner === null || ENDED.includes(s.status as RunStatus) || s.owner === final[i]!.owner) continue;
        takenOver.add(i);
        if (s.stored > 0) fromCheckpoint.add(i);
      }
    }

    const check = async (c: Case, run: RunRecord, want: RunRecord, what: string) => {
      const label = `${what} ${run.runId} (case ${c.i}, ${c.doc.id}, ${JSON.stringify(c.payload)})`;
      expect(run.status, label).toBe(want.status);
      expect(run.error?.code, label).toBe(want.error?.code);
      expect(run.actions, label).toBe(want.actions);
      expect(taskSum(run.tasks), label).toBe(run.actions);
      const seqs = run.tasks.map((t) => t.seq);
      expect(new Set(seqs).size, `${label}: a task recorded twice`).toBe(seqs.length);
      expect(run.tasks.map(taskShape), label).toEqual(want.tasks.map(taskShape));
      expect(run.outputs, label).toEqual(want.outputs);
      expect(run.pending ?? null, label).toEqual(want.pending ?? null);
      // The billed set holds exactly the task keys that cost an action, and `n:<node>` for each
      // node the run billed (its per-node run count, lib-settle.lua).
      const billed = await p.redis.smembers(k.billed(c.tenant, run.runId));
      const paid = run.tasks.filter((t) => t.actions === 1);
      expect(billed.filter((m) => !m.startsWith('n:')).length, `${label}: billed set`).toBe(paid.length);
      const nodes = new Set(paid.filter((t) => t.nodeId !== '$trigger').map((t) => `n:${t.nodeId}`));
      expect(billed.filter((m) => m.startsWith('n:')).sort(), `${label}: billed nodes`).toEqual([...nodes].sort());
    };

    const records = await Promise.all(cases.map(async (c, i) => (await p.runs.get(c.tenant, ids[i]!))!));
    const counts: Record<string, number> = {};
    for (const [i, c] of cases.entries()) {
      const run = records[i]!;
      counts[`${c.doc.id}:${run.status}`] = (counts[`${c.doc.id}:${run.status}`] ?? 0) + 1;
      await check(c, run, refs[i]!.first, 'first');
    }
    // The mix did what it is for.
    expect(counts['loopfn:succeeded']).toBeGreaterThan(0);
    expect(counts['fan:succeeded']).toBeGreaterThan(0);
    expect(counts['fan:failed']).toBeGreaterThan(0);
    expect(counts['metered:halted']).toBeGreaterThan(0);
    expect(counts['metered:succeeded']).toBeGreaterThan(0);

    // Ledger == task logs, per tenant; a halted tenant used its whole quota.
    const usedBy = async (tenant: string) => (await p.ledger.usage(tenant, new Date())).used;
    for (const tenant of tenants) {
      const sum = records.filter((_, i) => cases[i]!.tenant === tenant).reduce((a, r) => a + taskSum(r.tasks), 0);
      expect(await usedBy(tenant), tenant).toBe(sum);
    }
    for (const r of records) if (r.status === 'halted') expect(await usedBy(r.tenant)).toBe(QUOTA);
    // Per node too (the scenario graph): actions and runs per node == the task logs, kills or not.
    const groups = new Map<string, { tenant: string; scenario: string; runs: typeof records }>();
    for (const [i, c] of cases.entries()) {
      const g = groups.get(`${c.tenant}/${c.doc.id}`) ?? { tenant: c.tenant, scenario: c.doc.id, runs: [] };
      groups.set(`${c.tenant}/${c.doc.id}`, g);
      g.runs.push(records[i]!);
    }
    for (const g of groups.values()) {
      const want: Record<string, { actions: number; runs: number }> = {};
      for (const r of g.runs) {
        const seen = new Set<string>();
        for (const t of r.tasks.filter((x) => x.actions === 1)) {
          const w = (want[t.nodeId] ??= { actions: 0, runs: 0 });
          w.actions++;
          if (!seen.has(t.nodeId)) w.runs++;
          seen.add(t.nodeId);
        }
      }
      const got = await p.ledger.nodeUsage(g.tenant, g.scenario, Object.keys(want), new Date());
      expect({ ...got.nodes }, `${g.tenant}/${g.scenario}: per node`).toEqual(want);
    }

    // Raise the quotas and resume the halted runs: each ends as the embedded run resumed.
    const halted = cases.filter((_, i) => records[i]!.status === 'halted');
    for (const c of halted) await p.ledger.setQuota(c.tenant, { monthlyActions: 1_000_000 });
    const tResume = Date.now();
    await Promise.all(halted.map((c) => p.resume(c.tenant, ids[c.i]!)));
    await waitUntil(
      'the resumed runs to end',
      async () => {
        const st = await statuses();
        return halted.every((c) => ['succeeded', 'failed', 'rejected'].includes(st[c.i]!.status));
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const tResumed = Date.now();
    for (const c of halted) {
      const run = (await p.runs.get(c.tenant, ids[c.i]!))!;
      await check(c, run, refs[c.i]!.final, 'resumed');
      expect(await usedBy(c.tenant)).toBe(taskSum(run.tasks));
    }

    // The peer saw, per run, exactly the keys of the run's connector tasks; a key sent again
    // (a retry, or a task re-run after a kill) carried the same request.
    const sent = new Map<string, Map<string, string>>();
    const ours = new Set(ids);
    let repeated = 0;
    for (const req of peer.requests) {
      const key = String(req.headers['idempotency-key'] ?? '');
      const runId = key.slice(0, key.indexOf(':'));
      if (!ours.has(runId)) continue; // the embedded references
      let keys = sent.get(runId);
      if (!keys) sent.set(runId, (keys = new Map()));
      if (keys.has(key)) {
        repeated++;
        expect(req.raw, key).toBe(keys.get(key));
      } else keys.set(key, req.raw);
    }
    for (const [i, c] of cases.entries()) {
      const run = (await p.runs.get(c.tenant, ids[i]!))!;
      const calls = run.tasks.filter((t) => t.type === 'connector' && t.actions === 1).map((t) => `${run.runId}:${t.seq}`);
      expect([...(sent.get(run.runId)?.keys() ?? [])].sort(), run.runId).toEqual(calls.sort());
    }

    const actions = records.reduce((a, r) => a + r.actions, 0);
    console.log(
      `faults: ${RUNS} runs (${actions} actions before resumes), statuses ${JSON.stringify(counts)}; references ${tRefs - t0} ms, ` +
        `workers ready ${tReady - tRefs} ms, all ended ${tEnded - tReady} ms after the triggers, ${halted.length} resumed in ${tResumed - tResume} ms; ` +
        `kills ${JSON.stringify(kills.map(({ snapshot: _s, ...rest }) => rest))}; ${takenOver.size} runs taken over (${[...takenOver].map((i) => cases[i]!.doc.id).join(', ')}), ${fromCheckpoint.size} of them from a checkpoint; ${repeated} HTTP requests sent again (retries of 500s, tasks re-run)`,
    );
    expect(takenOver.size).toBeGreaterThan(0);
  }, 90_000);
});

// ---------------------------------------------------------------------------------------------
// 2. Scheduler processes killed and restarted across firing instants.
// ---------------------------------------------------------------------------------------------

const EVERY_MS = 2000;
/** The first instant of `*\/2 * * * * *` strictly after `t` (ms). */
const instantAfter = (t: number) => Math.floor(t / EVERY_MS) * EVERY_MS + EVERY_MS;
const sleepUntil = (t: number) => sleep(Math.max(0, t - Date.now()));
const iso = (t: number) => new Date(t).toISOString();

describe('faults: scheduler processes SIGKILLed across firing instants', () => {
  it('every instant fires exactly once: one of two killed around an instant, then both killed (catch-up)', async () => {
    const p = await production();
    const prefix = p.redisKeys.prefix;
    const tenant = 'acme';
    const CATCH_UP = 10_000; // covers the longest downtime below (about 3 s) with room to spare
    await p.scenarios.deploy(
      tenant,
      scenarioOf({
        id: 'tick2',
        trigger: { type: 'cron', schedule: '*/2 * * * * *', catchUp: CATCH_UP, input: { hello: 'cron' } },
        start: 'echo',
        nodes: [fn('echo', 'return { payload: { firedAt: msg.firedAt, hello: msg.payload.hello } };')],
      }),
    );
    await p.scenarios.enable(tenant, 'tick2', undefined);
    p.startWorker({ concurrency: 2 }); // runs the fired runs (closed with p)

    const all: Proc[] = [];
    const startScheduler = async (name: string): Promise<Proc> => {
      const s = procs.spawn(['--redis', redisUrl(), '--prefix', prefix, 'scheduler'], { name });
      all.push(s);
      await s.waitFor('"msg":"scheduler ready"', 15_000);
      return s;
    };
    const firedAts = async (): Promise<number[]> =>
      (await p.runs.list(tenant, { scenarioId: 'tick2', limit: 10_000 })).map((r) => Date.parse(String(r.trigger.firedAt)));
    /** Waits until the instant `t` has a run (one scheduler fires it within a tick of it). */
    const firedBy = async (t: number, what: string) =>
      waitUntil(`${iso(t)} to fire (${what})`, async () => (await firedAts()).includes(t), { timeoutMs: 8_000, intervalMs: 50 });
    const timeline: string[] = [];
    const note = (what: string) => timeline.push(`${iso(Date.now()).slice(17, 23)} ${what}`);

    const spawnedAt = Date.now();
    let [a, b] = await Promise.all([startScheduler('schedulerA'), startScheduler('schedulerB')]);
    note('A and B ready');
    // Both up: the next instant fires.
    const first = instantAfter(Date.now());
    await firedBy(first, 'both up');

    /** Kills scheduler `s` (called `what`) just before an instant and starts `name` just after it: the other one fires it. */
    const killAcrossInstant = async (s: Proc, what: string, name: string, other: string): Promise<Proc> => {
      const t = instantAfter(Date.now() + 600);
      await sleepUntil(t - 400);
      await s.stop('SIGKILL');
      note(`${what} killed before ${iso(t)}`);
      await sleepUntil(t + 300);
      const restarted = await startScheduler(name);
      note(`${what} restarted`);
      await firedBy(t, `${other} up, ${what} down`);
      return restarted;
    };
    // A killed just before an instant, restarted just after it: B fires it.
    a = await killAcrossInstant(a, 'A', 'schedulerA2', 'B');
    // The same with B.
    b = await killAcrossInstant(b, 'B', 'schedulerB2', 'A');

    // Both killed before an instant; one restarted after the next one has passed too: its
    // start catches both up, once each.
    const t3 = instantAfter(Date.now() + 600);
    await sleepUntil(t3 - 400);
    await Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]);
    const downAt = Date.now(); // both have exited: nothing after this was fired by them
    note(`A and B killed before ${iso(t3)}`);
    const missed = [instantAfter(downAt), instantAfter(downAt) + EVERY_MS];
    await sleepUntil(missed[1]! + 300);
    expect(
      (await firedAts()).filter((t) => missed.includes(t)),
      'fired while every scheduler was down',
    ).toEqual([]);
    const c = await startScheduler('schedulerC');
    note('C started');
    for (const t of missed) await firedBy(t, 'caught up by C');
    // And it goes on firing live.
    const last = instantAfter(Date.now());
    await firedBy(last, 'C up');
    // The run is visible before C has logged its firing (it enqueues it first): wait for the line.
    await c.waitFor(`"instant":"${iso(last)}"`, 8_000);
    await c.stop('SIGKILL');
    note('C killed');
    const stoppedAt = Date.now();

    // Every instant from before the first start (catch-up of the first start) to the last one
    // observed fired exactly once: no duplicates, no gaps.
    const fired = (await firedAts()).sort((x, y) => x - y);
    expect(new Set(fired).size, `duplicates in ${fired.map(iso).join(', ')}`).toBe(fired.length);
    for (const t of fired) expect(t % EVERY_MS, iso(t)).toBe(0);
    const expected = Array.from({ length: (fired.at(-1)! - fired[0]!) / EVERY_MS + 1 }, (_, i) => fired[0]! + i * EVERY_MS);
    expect(fired.map(iso)).toEqual(expected.map(iso));
    expect(fired[0]!).toBeLessThanOrEqual(instantAfter(spawnedAt));
    expect(fired[0]!).toBeGreaterThanOrEqual(spawnedAt - CATCH_UP - EVERY_MS);
    expect(fired.at(-1)!).toBeGreaterThanOrEqual(last);
    expect(fired.at(-1)!).toBeLessThanOrEqual(stoppedAt);

    // The processes' own logs agree: each instant was fired by exactly one of them, the two
    // missed while all were down by C (from its catch-up).
    const firedBy_: Record<string, string[]> = {};
    for (const s of all) for (const l of s.logs()) if (l.msg === 'scheduler: fired') (firedBy_[String(l.instant)] ??= []).push(s.name);
    expect(Object.keys(firedBy_).sort()).toEqual(fired.map(iso));
    for (const [t, names] of Object.entries(firedBy_)) expect(names, t).toHaveLength(1);
    for (const t of missed) expect(firedBy_[iso(t)]).toEqual(['schedulerC']);

    // The runs themselves ran, each with its own instant.
    const runs = await waitUntil(
      'every fired run to end',
      async () => {
        const list = await p.runs.list(tenant, { scenarioId: 'tick2', limit: 10_000 });
        return list.every((r) => ENDED.includes(r.status)) ? list : null;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    for (const r of runs) expect(r.status).toBe('succeeded');
    for (const r of runs.slice(0, 3)) {
      const rec = (await p.runs.get(tenant, r.runId))!;
      expect(rec.outputs.map((m) => m.payload)).toEqual([{ firedAt: r.trigger.firedAt, hello: 'cron' }]);
    }
    console.log(`faults (scheduler): ${fired.length} instants ${iso(fired[0]!)} … ${iso(fired.at(-1)!)}, each once; ${timeline.join('; ')}`);
  }, 60_000);
});
