/**
 * Sandbox host processes SIGKILLed at random (SPEC §10): a real `flowmeter worker` process
 * executes 200 runs of scenarios made of Function nodes (fused chains with `setVar`, loops
 * whose bodies are chains, a fan-out of both, and a few memory bombs that abort their own
 * host), while a killer SIGKILLs random sandbox hosts of that worker (its child processes
 * started with --flowmeter-sandbox-host) at random intervals. A host killed from outside is an
 * infrastructure fault: the pool runs its calls again on a fresh host (services/sandbox-pool.ts),
 * so every run ends exactly as the same scenario and input do in embedded mode (status, error,
 * tasks, logs, outputs, actions), and the ledger bills exactly what the embedded runs bill.
 * The bombs still fail their node with FUNCTION_MEMORY, as they do embedded.
 *
 * FM_FAULTS_SEED=<n> replays the inputs and the killer's choices (kill moments still depend
 * on timing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord, RunStatus, TaskRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { faultRandom, taskShape, unluckyLoop, useFaultPlatform } from './helpers/faults.js';
import { ENDED } from './helpers/guarantees.js';
import { sandboxHostsOf, sleep, waitUntil } from './helpers/processes.js';
import { fn, scenarioOf } from './helpers/run.js';

const { production, worker: startWorker } = useFaultPlatform();
let embedded: Embedded;

beforeAll(() => {
  embedded = createEmbedded({ env: {} });
});
afterAll(async () => {
  await embedded?.close();
});

const tenant = 'acme';

/** CPU work in a Function: a result that depends on the input. */
const spin = (expr: string) => `let x = ${expr}; for (let i = 0; i < 10000; i++) x = (x * 31 + i) % 1000003;`;

/**
 * A fused chain of four Functions carrying a variable: 1 + 4 actions. Variables persist across
 * runs (SPEC §1) and runs here overlap: each run sets only its own variable (named by its case).
 */
const CHAIN = {
  id: 'chain',
  start: 'a',
  nodes: ['a', 'b', 'c', 'd'].map((id, i, all) =>
    fn(
      id,
      'const key = "n" + msg.payload.id; const n = (typeof vars[key] === "number" ? vars[key] : 0) + 1; setVar(key, n); ' +
        `${spin('msg.payload.v + n')} log("${id}", n, x % 97); ` +
        'return { payload: { id: msg.payload.id, v: x % 1000, n, trail: [...(msg.payload.trail ?? []), x % 97] } };',
      all[i + 1],
    ),
  ),
};

/** A loop whose body is a chain of two Functions (a loop batch); the second drops multiples of 7 and throws on 13 (the run fails). */
const LOOP = {
  id: 'loop',
  start: 'each',
  nodes: [
    { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1', collect: true, next: 'sum' },
    fn('f1', `${spin('msg.payload')} return { payload: { v: msg.payload, x, at: msg.loop.index } };`, 'f2'),
    fn('f2', 'if (msg.payload.v === 13) throw new Error("unlucky"); if (msg.payload.v % 7 === 0) return null; return { payload: msg.payload.x % 1000 };'),
    fn('sum', 'return { payload: { n: msg.payload.length, total: msg.payload.reduce((a, b) => a + b, 0) } };'),
  ],
};

/** A fan-out to a chain and a loop, and a Catch that recovers the loop's failure. */
const FAN = {
  id: 'fan',
  start: 'split',
  nodes: [
    { id: 'split', type: 'fanOut', branches: ['p1', 'l'] },
    fn('p1', `${spin('msg.payload.k')} setVar("k" + msg.payload.id, x); return { payload: { id: msg.payload.id, p: x } };`, 'p2'),
    fn('p2', `${spin('msg.payload.p')} return { payload: { p: msg.payload.p, q: x, k: vars["k" + msg.payload.id] } };`),
    ...unluckyLoop({ loop: 'l', body: 'lw', sum: 'l2' }, spin('msg.payload')),
    { id: 'catchl', type: 'catch', scope: ['lw'], next: 'recover' },
    fn('recover', 'return { payload: { recovered: msg.error.code } };'),
  ],
};

/** A Function that aborts its own host (an allocation isolated-vm cannot bound): FUNCTION_MEMORY, caught. */
const BOMB = {
  id: 'bomb',
  start: 'pre',
  nodes: [
    fn('pre', `${spin('msg.payload.v')} return { payload: { v: x } };`, 'grow'),
    fn('grow', "for (let i = 0; i < 10; i++) Symbol.for(i + 'x'.repeat(30 * 1024 * 1024)); return msg;"),
    { id: 'caught', type: 'catch', scope: ['grow'], next: 'after' },
    fn('after', 'return { payload: { code: msg.error.code, v: msg.payload.v } };'),
  ],
};

const DOCS = [CHAIN, LOOP, FAN, BOMB];

interface Case {
  i: number;
  doc: (typeof DOCS)[number];
  payload: unknown;
}

function makeCases(count: number, rnd: () => number): Case[] {
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const items = (n: number) => Array.from({ length: n }, () => (rnd() < 0.03 ? 13 : int(0, 99)));
  return Array.from({ length: count }, (_, i) => {
    const k = i % 20;
    if (k === 19) return { i, doc: BOMB, payload: { v: int(0, 999) } }; // 10 bombs
    if (k < 7) return { i, doc: CHAIN, payload: { id: i, v: int(0, 999) } };
    if (k < 14) return { i, doc: LOOP, payload: { items: items(int(0, 20)) } };
    return { i, doc: FAN, payload: { id: i, k: int(0, 99), items: items(int(0, 20)) } };
  });
}

/** What a task is, without timings, its logs included: what must be the same in both modes. */
const shape = (t: TaskRecord) => ({ ...taskShape(t), logs: t.logs });

describe('faults: sandbox host processes SIGKILLed at random', () => {
  it('200 runs of Function scenarios while hosts are killed: every run ends as in embedded mode, billed exactly', async () => {
    const rnd = faultRandom('sandbox-faults');
    const RUNS = 200;
    const cases = makeCases(RUNS, rnd);

    // The embedded references first (this process's CPU is then free for the worker).
    const refs: RunRecord[] = [];
    await embedded.ledger.setQuota('ref', { monthlyActions: 1_000_000 });
    for (const c of cases) refs.push(structuredClone(await embedded.run(scenarioOf(c.doc), c.payload, { tenant: 'ref' })));

    const p = await production();
    await p.ledger.setQuota(tenant, { monthlyActions: 1_000_000 });
    for (const doc of DOCS) await p.scenarios.deploy(tenant, scenarioOf(doc));
    const worker = await startWorker({ concurrency: 4, lockMs: 5000 });

    const k = p.redisKeys;
    const ids: string[] = [];
    const endedCount = async (of: string[]) => {
      const pipe = p.redis.pipeline();
      for (const id of of) pipe.hget(k.run(tenant, id), 'status');
      return (await pipe.exec())!.filter(([, s]) => ENDED.includes(s as RunStatus)).length;
    };

    // The killer: every 100–400 ms, SIGKILL one of the worker's hosts that is computing (state
    // R), is up (its modules loaded: a host that is still starting is not the point, and a call
    // killed again and again while hosts start is the bound tested in test/sandbox-hosts.test.ts:
    // 3 kills of a call running alone) and has lived at least 0.15 s. Age alone was not enough:
    // a host takes 0.15–0.2 s to start here, up to 0.5 s on a loaded machine, so a call's fresh
    // hosts could be killed while starting (once: FUNCTION_MEMORY where embedded succeeded).
    // Hosts live about one wave, as each wave's memory bomb aborts one, so no longer bound.
    let stop = false;
    const kills: number[] = [];
    const killer = (async () => {
      let next = Date.now() + 100 + Math.floor(rnd() * 300);
      while (!stop) {
        await sleep(10);
        if (Date.now() < next) continue;
        const busy = sandboxHostsOf(worker.pid).filter((h) => h.state === 'R' && h.up && h.ageTicks >= 15);
        if (busy.length === 0) continue;
        const victim = busy[Math.floor(rnd() * busy.length)]!;
        try {
          process.kill(victim.pid, 'SIGKILL');
          kills.push(victim.pid);
          next = Date.now() + 100 + Math.floor(rnd() * 300);
        } catch {
          /* exited meanwhile */
        }
      }
    })();
    try {
      // In waves of 20, each let run until a host was killed during it (or it ended), so
      // kills land all along, whatever the machine's speed.
      for (let w = 0; w < RUNS; w += 20) {
        const wave = cases.slice(w, w + 20);
        const before = kills.length;
        const started = await Promise.all(wave.map((c) => p.trigger(tenant, c.doc.id, c.payload, { type: 'manual' })));
        ids.push(...started.map((r) => r.runId));
        const mine = started.map((r) => r.runId);
        await waitUntil(`a kill during wave ${w / 20}, or its end`, async () => kills.length > before || (await endedCount(mine)) === mine.length, {
          timeoutMs: 60_000,
          intervalMs: 20,
        });
      }
    } finally {
      stop = true;
      await killer;
    }
    let seen = -1;
    await waitUntil(
      `all ${RUNS} runs to end`,
      async () => {
        const n = await endedCount(ids);
        if (n !== seen) console.log(`sandbox-faults: ${n} runs ended after ${kills.length} kills`);
        seen = n;
        return n === RUNS;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(async (err) => {
      const open = [];
      for (const id of ids) {
        const r = await p.runs.get(tenant, id);
        if (r && !ENDED.includes(r.status)) open.push(`${id} ${r.status} ${r.tasks.length} tasks`);
      }
      throw new Error(`${(err as Error).message}; not ended: ${open.slice(0, 5).join(', ')}; worker stderr tail: ${worker.stderr.slice(-1500)}`);
    });
    expect(worker.child.exitCode).toBeNull(); // the worker lived through it all

    const counts: Record<string, number> = {};
    const killedThrice: string[] = [];
    let billed = 0;
    for (const [i, c] of cases.entries()) {
      const run = (await p.runs.get(tenant, ids[i]!))!;
      const want = refs[i]!;
      const label = `run ${run.runId} (case ${c.i}, ${c.doc.id}, ${JSON.stringify(c.payload)}, error ${run.error?.message})`;
      counts[`${c.doc.id}:${run.status}`] = (counts[`${c.doc.id}:${run.status}`] ?? 0) + 1;
      if (run.error?.code === 'FUNCTION_MEMORY' && /\(signal SIGKILL\)/.test(run.error.message) && want.error?.code !== 'FUNCTION_MEMORY') {
        // The killer hit one call 3 times while it ran alone: the pool's rule (a host killed
        // again and again, as by the OOM killer, fails the call; test/sandbox-hosts.test.ts).
        // Seen once in about 15 runs of this test, under load. Billed exactly what it recorded.
        killedThrice.push(label);
        expect(
          run.tasks.reduce((a, t) => a + t.actions, 0),
          label,
        ).toBe(run.actions);
        billed += run.actions;
        continue;
      }
      expect([run.status, run.error?.code, run.error?.nodeId], label).toEqual([want.status, want.error?.code, want.error?.nodeId]);
      // A bomb's host may be killed by the killer too before it aborts: FUNCTION_MEMORY either
      // way, its message naming the signal the host died of (SIGABRT or SIGKILL).
      const same = (x: unknown) => JSON.parse(JSON.stringify(x).replace(/\(signal SIG(ABRT|KILL)\)/g, '(signal)'));
      expect(same(run.tasks.map(shape)), label).toEqual(same(want.tasks.map(shape)));
      expect(run.outputs, label).toEqual(want.outputs);
      expect(run.actions, label).toBe(want.actions);
      expect(
        run.tasks.reduce((a, t) => a + t.actions, 0),
        label,
      ).toBe(run.actions);
      billed += want.actions;
    }
    // Billing exact: the ledger holds what the embedded runs bill, nothing more.
    expect((await p.ledger.usage(tenant, new Date())).used).toBe(billed);
    // The mix did what it is for.
    expect(counts['chain:succeeded']).toBeGreaterThan(0);
    expect(counts['loop:succeeded']).toBeGreaterThan(0);
    expect(counts['fan:succeeded']).toBeGreaterThan(0);
    expect(counts['bomb:succeeded']).toBe(10); // FUNCTION_MEMORY caught, as embedded
    console.log(`sandbox-faults: ${RUNS} runs ${JSON.stringify(counts)}, ${billed} actions; ${kills.length} hosts killed while computing`);
    expect(killedThrice.length, killedThrice.join('\n')).toBeLessThanOrEqual(1);
    expect(kills.length).toBeGreaterThanOrEqual(5);
  }, 200_000);
});
