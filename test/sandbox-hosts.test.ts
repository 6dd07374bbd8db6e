/**
 * Function code in sandbox host processes (SPEC §10): real child processes, real isolated-vm,
 * real kills. A host that dies takes only its call down; a long Function never blocks the
 * engine's event loop; `flowmeter run` reports contained failures and exits cleanly.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowError } from '../core/errors.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Scenario } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { createSandboxPool, type SandboxPool } from '../services/sandbox-pool.js';
import { alive } from './helpers/processes.js';

const FIXTURE = resolve('test/fixtures/06-function-memory-contained.json');
const BOMB = "for (let i = 0; i < 10; i++) Symbol.for(i + 'x'.repeat(30 * 1024 * 1024)); return msg;";
const req = (code: string, extra: Record<string, unknown> = {}) => ({
  tenant: 't',
  code,
  msg: { payload: 1 },
  vars: {},
  timeoutMs: 1000,
  memoryMb: 64,
  ...extra,
});
const settle = async (p: Promise<unknown>) =>
  p.then(
    (v) => ({ ok: v }),
    (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message }),
  );

function scenario(doc: unknown): Scenario {
  const r = validateScenario(doc);
  if (!r.scenario) throw new Error(r.problems.join('; '));
  return r.scenario;
}

beforeAll(() => {
  if (!existsSync('dist/services/sandbox-host.js')) throw new Error('build first: npm run build');
});

describe('sandbox pool', () => {
  let pool: SandboxPool;
  beforeAll(() => {
    pool = createSandboxPool({ size: 1, killMarginMs: 300 });
  });
  afterAll(() => pool.dispose());

  it('an allocation isolated-vm cannot bound kills only the host: FUNCTION_MEMORY, and the next call works', async () => {
    expect((await pool.run(req('return { warm: 1 }'))).result).toEqual({ warm: 1 });
    const [before] = pool.pids();
    const e = await settle(pool.run(req(BOMB)));
    expect(e).toMatchObject({ code: 'FUNCTION_MEMORY' });
    expect(String((e as { message: string }).message)).not.toContain('\n');
    expect(alive(before!)).toBe(false);
    expect((await pool.run(req('return { after: msg.payload }'))).result).toEqual({ after: 1 });
    expect(pool.pids()[0]).not.toBe(before);
  });

  it('a host killed from outside (SIGKILL) mid-call is an infrastructure fault: the call runs again on a fresh host', async () => {
    await pool.run(req('return null'));
    const [pid] = pool.pids();
    const died = pool.stats().died;
    const spin = 'const t = Date.now(); while (Date.now() - t < 400) {} return { again: msg.payload };';
    const call = settle(pool.run(req(spin, { timeoutMs: 5000 })));
    await new Promise((r) => setTimeout(r, 100));
    process.kill(pid!, 'SIGKILL');
    expect(await call).toEqual({ ok: { result: { again: 1 }, logs: [], sets: [], chars: expect.any(Number) } });
    expect(pool.stats().died).toBe(died + 1);
    expect(pool.pids()[0]).not.toBe(pid);
  });

  it('a call sent to an idle host killed from outside before its exit is seen (EPIPE) runs again on a fresh host', async () => {
    await pool.run(req('return null'));
    const [pid] = pool.pids();
    process.kill(pid!, 'SIGKILL');
    // Wait, without yielding to the event loop, until the host is dead: the pool has not seen
    // its exit yet, so the call below is written to a dead pipe.
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      let state = '';
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      } catch {
        break;
      }
      if (state === 'Z' || state === 'X') break;
    }
    expect(await settle(pool.run(req('return { again: msg.payload }')))).toEqual({
      ok: { result: { again: 1 }, logs: [], sets: [], chars: expect.any(Number) },
    });
    expect(pool.pids()[0]).not.toBe(pid);
  });

  it('a reply carries results up to 16 MB of JSON: the calls after that are sent again, not parsed in one 30 MB reply', async () => {
    // Before, a host answered a message of up to 64 calls in ONE reply: a tenant's 64 calls
    // returning 10 MB of small objects each were 640 MB of JSON parsed at once in the worker.
    await pool.run(req('return null'));
    const hops = pool.stats().hops;
    const calls = Array.from({ length: 5 }, (_, i) => pool.run(req(`return { payload: { i: ${i}, s: 'x'.repeat(${6 * 1024 * 1024}) } };`)));
    const out = await Promise.all(calls);
    expect(out.map((o) => [(o.result as { payload: { i: number; s: string } }).payload.i, (o.result as { payload: { s: string } }).payload.s.length])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [i, 6 * 1024 * 1024]),
    );
    // 6 + 6 + 6 MB pass 16 MB: the other two calls went in a message of their own.
    expect(pool.stats().hops - hops).toBeGreaterThanOrEqual(2);
  });

  it("a single call's result is admitted by its size before it is parsed: refused, it fails with the admission's error", async () => {
    // Before, a single call's result came back as objects (parsed in this process whatever its
    // wave could hold): a tenant's Fan Outs of 10 MB results were parsed, then refused, and the
    // garbage took a worker to 3.4 GB. Now the result comes as JSON and is asked about first.
    const asked: number[] = [];
    const big = `return { payload: { s: 'x'.repeat(${2 * 1024 * 1024}) } };`;
    const refuse = (chars: number) => {
      asked.push(chars);
      return new FlowError('OUTPUT_TOO_LARGE', `refused ${chars}`);
    };
    expect(await settle(pool.run(req(big, { admit: refuse })))).toMatchObject({ code: 'OUTPUT_TOO_LARGE', message: expect.stringMatching(/^refused \d+$/) });
    expect(asked).toHaveLength(1);
    expect(asked[0]).toBeGreaterThan(2 * 1024 * 1024);
    expect(asked[0]).toBeLessThan(2 * 1024 * 1024 + 200);
    // Admitted, the outcome says it was counted, with the size admitted.
    const admitted: number[] = [];
    const admit = (chars: number) => {
      admitted.push(chars);
      return null;
    };
    const ok = await pool.run(req(big, { admit }));
    expect((ok.result as { payload: { s: string } }).payload.s).toHaveLength(2 * 1024 * 1024);
    expect(ok).toMatchObject({ counted: true, chars: admitted[0] });
    // A small result (under RAW_RESULT_CHARS) is parsed in the host, as before: not asked here,
    // nor counted (its wave counts it once it is parsed).
    const small = await pool.run(req('return { payload: { s: "small" } };', { admit: refuse }));
    expect(small).toMatchObject({ result: { payload: { s: 'small' } }, chars: expect.any(Number) });
    expect(small.counted).toBeUndefined();
    // A failure is not a result: nothing is asked, and its code is kept.
    const failed = await settle(pool.run(req('throw new Error("no")', { admit: refuse })));
    expect(failed).toMatchObject({ code: 'FUNCTION_ERROR' });
    expect(asked).toHaveLength(1);
  });

  it('a call whose host is killed from outside three times fails with FUNCTION_MEMORY; the next call works', async () => {
    await pool.run(req('return null'));
    const call = settle(pool.run(req('for (;;) {}', { timeoutMs: 30_000 })));
    const killed = new Set<number>();
    for (let k = 0; k < 3; k++) {
      // The call's host: a live one not killed yet (a fresh one after each kill).
      const pid = await (async () => {
        for (;;) {
          const live = pool.pids().find((p) => !killed.has(p));
          if (live !== undefined) return live;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await new Promise((r) => setTimeout(r, 50));
      killed.add(pid);
      process.kill(pid, 'SIGKILL');
    }
    const e = await call;
    expect(e).toMatchObject({ code: 'FUNCTION_MEMORY' });
    expect(String((e as { message: string }).message)).toContain('SIGKILL');
    expect((await pool.run(req('return { ok: true }'))).result).toEqual({ ok: true });
  });

  it('a host that stops answering is killed after its timeout plus the margin: FUNCTION_TIMEOUT', async () => {
    await pool.run(req('return null'));
    const [pid] = pool.pids();
    const killed = pool.stats().killedForTime;
    process.kill(pid!, 'SIGSTOP'); // frozen: isolated-vm's own timeout cannot fire
    expect(await settle(pool.run(req('return msg', { timeoutMs: 100 })))).toMatchObject({ code: 'FUNCTION_TIMEOUT' });
    expect(pool.stats().killedForTime).toBe(killed + 1);
    expect((await pool.run(req('return { back: 1 }'))).result).toEqual({ back: 1 });
  });

  it('calls batched with the one that killed the host run again and succeed; only the culprit fails', async () => {
    await pool.run(req('return null'));
    const calls = [req('return { n: 1 }'), req(BOMB), req('return { n: 3 }')].map((r) => settle(pool.run(r)));
    const [a, b, c] = await Promise.all(calls);
    expect(a).toEqual({ ok: { result: { n: 1 }, logs: [], sets: [], chars: expect.any(Number) } });
    expect(b).toMatchObject({ code: 'FUNCTION_MEMORY' });
    expect(c).toEqual({ ok: { result: { n: 3 }, logs: [], sets: [], chars: expect.any(Number) } });
  });

  it('runs a chain in one hop: setVar seen by later steps, stops at null; a death lands on its step', async () => {
    const steps = [
      { code: 'setVar("n", vars.n + 1); return { payload: msg.payload + 1 }', timeoutMs: 1000, memoryMb: 64 },
      { code: 'return { payload: msg.payload * 10, n: vars.n }', timeoutMs: 1000, memoryMb: 64 },
      { code: 'return null', timeoutMs: 1000, memoryMb: 64 },
      { code: 'return { never: true }', timeoutMs: 1000, memoryMb: 64 },
    ];
    const out = await pool.runChain({ tenant: 't', msg: { payload: 1 }, vars: { n: 5 }, steps });
    expect(out.map((s) => (s.ok ? s.outcome.result : s.code))).toEqual([{ payload: 2 }, { payload: 20, n: 6 }, null]);
    expect(out[0]).toMatchObject({ ok: true, outcome: { sets: [['n', 6]] } });
    const died = await pool.runChain({
      tenant: 't',
      msg: { payload: 1 },
      vars: {},
      steps: [steps[1]!, { code: BOMB, timeoutMs: 1000, memoryMb: 64 }, steps[3]!],
    });
    expect(died.map((s) => (s.ok ? s.outcome.result : s.code))).toEqual([{ payload: 10 }, 'FUNCTION_MEMORY']);
  });
});

describe('sandbox pool: hosts on demand', () => {
  it('sequential calls keep to one host; a second starts only when a call finds every host busy', async () => {
    const pool = createSandboxPool({ size: 2 });
    try {
      for (let i = 0; i < 20; i++) expect((await pool.run(req(`return { i: ${i} }`))).result).toEqual({ i });
      expect(pool.stats()).toMatchObject({ hosts: 1, started: 1 });
      const spin = 'const t = Date.now(); while (Date.now() - t < 300) {} return { spun: true };';
      const busy = pool.run(req(spin));
      await new Promise((r) => setTimeout(r, 50));
      expect((await pool.run(req('return { beside: 1 }'))).result).toEqual({ beside: 1 });
      expect((await busy).result).toEqual({ spun: true });
      expect(pool.stats()).toMatchObject({ hosts: 2, started: 2 });
    } finally {
      await pool.dispose();
    }
  });

  it("a call for one message goes before loop batches queued ahead of it (a run waiting for one node is not held behind someone's loops)", async () => {
    const pool = createSandboxPool({ size: 1, spareHosts: 0 });
    try {
      await pool.run(req('return null'));
      const spin = { code: 'const t = Date.now(); while (Date.now() - t < 1) {} return { payload: msg.payload };', timeoutMs: 1000, memoryMb: 64 };
      const batch = (n: number) => ({
        tenant: 'loops',
        msg: { payload: 0 },
        vars: {},
        steps: [spin],
        more: Array.from({ length: n }, (_, i) => ({ payload: i + 1 })),
      });
      const order: string[] = [];
      const first = pool.runChain(batch(15)).then(() => order.push('batch 1'));
      await new Promise((r) => setTimeout(r, 3)); // the host computes the first batch
      const second = pool.runChain(batch(15)).then(() => order.push('batch 2'));
      const call = pool.run({ ...req('return { quick: 1 }'), tenant: 'quiet' }).then(() => order.push('call'));
      await Promise.all([first, second, call]);
      // First in, first out (or one message for both) would have answered the call after batch 2.
      expect(order).toEqual(['batch 1', 'call', 'batch 2']);
    } finally {
      await pool.dispose();
    }
  });

  it('a call that finds every host stuck in a long Function gets a spare host, which stops once idle', async () => {
    const pool = createSandboxPool({ size: 1, spareHosts: 1 });
    try {
      await pool.run(req('return null'));
      let longEnded = false;
      const long = settle(pool.run(req('for (;;) {}', { timeoutMs: 4000 }))).finally(() => (longEnded = true));
      await new Promise((r) => setTimeout(r, 50));
      expect((await pool.run(req('return { beside: 2 }'))).result).toEqual({ beside: 2 });
      expect(longEnded).toBe(false); // answered while the only regular host still computed
      expect(pool.stats()).toMatchObject({ hosts: 2, started: 2 });
      expect(await long).toMatchObject({ code: 'FUNCTION_TIMEOUT' });
      const deadline = Date.now() + 20_000;
      while (pool.stats().hosts > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(pool.stats()).toMatchObject({ hosts: 1, started: 2, died: 0 });
      expect((await pool.run(req('return { still: 3 }'))).result).toEqual({ still: 3 });
    } finally {
      await pool.dispose();
    }
  });
});

describe('embedded engine with sandbox hosts', () => {
  const grow = { id: 'grow', type: 'function', memoryMb: 64, code: BOMB };

  it('contains the Symbol.for crash: the run fails FUNCTION_MEMORY, the process carries on, the next run succeeds', async () => {
    const engine = createEmbedded({ env: {} });
    try {
      const bad = await engine.run(scenario({ id: 'bomb', trigger: { type: 'manual' }, start: 'grow', nodes: [grow] }), null);
      expect(bad.status).toBe('failed');
      expect(bad.error).toMatchObject({ nodeId: 'grow', code: 'FUNCTION_MEMORY' });
      expect(bad.actions).toBe(2);
      const good = await engine.run(
        scenario({ id: 'fine', trigger: { type: 'manual' }, start: 'a', nodes: [{ id: 'a', type: 'function', code: 'return { payload: 7 }' }] }),
        null,
      );
      expect(good.status).toBe('succeeded');
      expect(good.outputs).toEqual([{ payload: 7 }]);
    } finally {
      await engine.close();
    }
  });

  it('the pending conformance case: FUNCTION_MEMORY caught by a Catch, run succeeds with 4 actions', async () => {
    const c = JSON.parse(readFileSync(FIXTURE, 'utf8'));
    const engine = createEmbedded({ env: {} });
    try {
      const run = await engine.run(scenario(c.scenario), null);
      expect(run.status).toBe(c.expect.status);
      expect(run.actions).toBe(c.expect.actions);
      expect(run.outputs.map((o) => (o as { payload: unknown }).payload)).toEqual(c.expect.outputs);
    } finally {
      await engine.close();
    }
  });

  it('a Function looping for(;;) with timeoutMs 5000 does not stop another run of the same process', async () => {
    const engine = createEmbedded({ env: {}, sandbox: { size: 2 } });
    try {
      let slowEnded = false;
      const slow = engine
        .run(
          scenario({ id: 'slow', trigger: { type: 'manual' }, start: 'spin', nodes: [{ id: 'spin', type: 'function', timeoutMs: 5000, code: 'for (;;) {}' }] }),
          null,
        )
        .finally(() => (slowEnded = true));
      await new Promise((r) => setTimeout(r, 50));
      const quick = await engine.run(
        scenario({
          id: 'quick',
          trigger: { type: 'manual' },
          start: 'a',
          nodes: [
            { id: 'a', type: 'function', code: 'return { payload: 1 }', next: 'b' },
            { id: 'b', type: 'function', code: 'return { payload: msg.payload + 1 }' },
          ],
        }),
        null,
      );
      expect(quick.status).toBe('succeeded');
      expect(quick.outputs).toEqual([{ payload: 2 }]);
      expect(slowEnded).toBe(false); // the other run ended while this one was still computing
      const done = await slow;
      expect(done.status).toBe('failed');
      expect(done.error).toMatchObject({ code: 'FUNCTION_TIMEOUT' });
    } finally {
      await engine.close();
    }
  });
});

describe('Function chains in one hop', () => {
  const step = (id: string, next?: string) => ({
    id,
    type: 'function',
    ...(next && { next }),
    code: 'const n = (typeof vars.n === "number" ? vars.n : 0) + 1; setVar("n", n); log("step", n); return { payload: msg.payload * 2, n: vars.n }',
  });
  const chain = scenario({
    id: 'chain',
    trigger: { type: 'manual' },
    start: 'a',
    nodes: [step('a', 'b'), step('b', 'c'), step('c', 'd'), step('d', 'e'), step('e')],
  });
  const shape = (r: { tasks: Array<{ nodeId: string; status: string; actions: number; output: unknown; logs?: string[] }> }) =>
    r.tasks.filter((t) => t.status !== 'halted').map((t) => [t.nodeId, t.status, t.actions, t.output, t.logs]);

  it('a chain of 5 Functions is one round trip, and still 5 tasks and 5 actions in order with setVar seen downstream', async () => {
    const pool = createSandboxPool({ size: 1 });
    const engine = createEmbedded({ env: {}, services: { sandbox: pool } });
    try {
      const run = await engine.run(chain, 1);
      expect(run.status).toBe('succeeded');
      expect(pool.stats().hops).toBe(1);
      expect(run.actions).toBe(6);
      expect(run.tasks.map((t) => [t.seq, t.nodeId])).toEqual([
        [1, '$trigger'],
        [2, 'a'],
        [3, 'b'],
        [4, 'c'],
        [5, 'd'],
        [6, 'e'],
      ]);
      expect(run.tasks.at(-1)!.logs).toEqual(['step 5']);
      expect(run.outputs).toEqual([{ payload: 32, n: 5 }]);
    } finally {
      await engine.close();
      await pool.dispose();
    }
  });

  it('a quota that ends inside the chain halts exactly before the node it cannot pay; resumed, the run ends as one never halted', async () => {
    const pool = createSandboxPool({ size: 1 });
    try {
      const whole = createEmbedded({ env: {}, services: { sandbox: pool } });
      const once = await whole.run(chain, 1);
      await whole.close();
      for (const quota of [2, 3, 5]) {
        const engine = createEmbedded({ env: {}, services: { sandbox: pool } });
        await engine.ledger.setQuota('default', { monthlyActions: quota });
        const halted = await engine.run(chain, 1);
        expect(halted.status).toBe('halted');
        expect(halted.actions).toBe(quota);
        expect(halted.tasks.at(-1)).toMatchObject({ status: 'halted', nodeId: ['a', 'b', 'c', 'd', 'e'][quota - 1], actions: 0 });
        await engine.ledger.setQuota('default', { monthlyActions: 100 });
        const resumed = await engine.resumeRun('default', halted.runId);
        expect(resumed.status).toBe('succeeded');
        expect(resumed.actions).toBe(once.actions);
        expect(shape(resumed)).toEqual(shape(once));
        expect(resumed.outputs).toEqual(once.outputs);
        await engine.close();
      }
    } finally {
      await pool.dispose();
    }
  });

  it('maxActionsPerRun inside a chain fails the node it cannot pay with RUN_BUDGET_EXCEEDED', async () => {
    const pool = createSandboxPool({ size: 1 });
    const engine = createEmbedded({ env: {}, services: { sandbox: pool } });
    try {
      const run = await engine.run(scenario({ ...chain, maxActionsPerRun: 3 }), 1);
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ nodeId: 'c', code: 'RUN_BUDGET_EXCEEDED' });
      expect(run.actions).toBe(3);
      expect(run.tasks.map((t) => [t.nodeId, t.status])).toEqual([
        ['$trigger', 'ok'],
        ['a', 'ok'],
        ['b', 'ok'],
        ['c', 'error'],
      ]);
    } finally {
      await engine.close();
      await pool.dispose();
    }
  });
});

describe('flowmeter run with sandbox hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fm-hosts-'));
  const cli = (file: string) =>
    spawnSync(process.execPath, ['--no-node-snapshot', resolve('bin/flowmeter.js'), 'run', file, '--json'], {
      encoding: 'utf8',
      env: { ...process.env, FLOWMETER_REDIS_URL: '' },
      timeout: 60_000,
    });

  it('an uncaught FUNCTION_MEMORY prints the run record and exits 1; a caught one exits 0', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ id: 'bomb', trigger: { type: 'manual' }, start: 'grow', nodes: [{ id: 'grow', type: 'function', code: BOMB }] }));
    const r = cli(bad);
    expect(r.status).toBe(1);
    const run = JSON.parse(r.stdout);
    expect(run).toMatchObject({ status: 'failed', actions: 2, error: { code: 'FUNCTION_MEMORY', nodeId: 'grow' } });
    const c = JSON.parse(readFileSync(FIXTURE, 'utf8'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(c.scenario));
    const ok = cli(good);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: 'succeeded', actions: 4 });
  });

  it('an engine left open does not keep the process alive, and its hosts leave with it', () => {
    const script = `
      const { createEmbedded } = await import(${JSON.stringify(resolve('dist/engine/embedded.js'))});
      const { validateScenario } = await import(${JSON.stringify(resolve('dist/scenario/validate.js'))});
      const engine = createEmbedded({ env: {} });
      const s = validateScenario({ id: 's', trigger: { type: 'manual' }, start: 'a', nodes: [{ id: 'a', type: 'function', code: 'return { payload: 1 }' }] });
      const run = await engine.run(s.scenario, null);
      process.stdout.write(JSON.stringify({ status: run.status, pids: engine.deps.services.sandbox.pids() }));`;
    const r = spawnSync(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0); // exited by itself (a hanging process would hit the timeout)
    const out = JSON.parse(r.stdout) as { status: string; pids: number[] };
    expect(out.status).toBe('succeeded');
    expect(out.pids.length).toBeGreaterThan(0);
    const deadline = Date.now() + 5000;
    while (out.pids.some(alive) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    expect(out.pids.filter(alive)).toEqual([]);
  });
});
