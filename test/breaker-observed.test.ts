/** Production mode: the runaway breaker, and `estimate` with the observed cost of past runs. */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { observedCost } from '../engine/observed.js';
import { createProduction, type Production } from '../redis/production.js';
import { redisUrl, uniquePrefix } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const doc = {
  id: 'looper',
  maxActionsPerRun: 8,
  start: 'each',
  nodes: [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'f' }, fn('f', 'return msg;')],
};
// 1 + 1 + n × 2: 2 items → 6 (within 8); 5 items → would be 12, stops before the 9th action.

let p: Production | null = null;
afterEach(async () => {
  await p?.close();
  p = null;
});

describe('production: breaker and observed cost', () => {
  it('RUN_BUDGET_EXCEEDED fails the run before the action that would pass maxActionsPerRun', async () => {
    const prefix = uniquePrefix();
    p = await createProduction({ redisUrl: redisUrl(), prefix });
    const worker = p.startWorker({ concurrency: 2 });
    await p.ledger.setQuota('t', { monthlyActions: 1000 });
    await p.scenarios.deploy('t', scenarioOf(doc));
    const start = async (payload: unknown) => {
      const run = await p!.trigger('t', 'looper', payload, { type: 'manual' });
      return p!.waitFor('t', run.runId, async () => undefined, 20_000);
    };
    const small = await start([1, 2]);
    const big = await start([1, 2, 3, 4, 5]);
    const mid = await start([1, 2, 3]);
    expect(small).toMatchObject({ status: 'succeeded', actions: 6 });
    expect(mid).toMatchObject({ status: 'succeeded', actions: 8 });
    expect(big).toMatchObject({ status: 'failed', actions: 8, error: { code: 'RUN_BUDGET_EXCEEDED' } });
    expect(big.tasks.at(-1)).toMatchObject({ status: 'error', actions: 0, error: { code: 'RUN_BUDGET_EXCEEDED' } });
    expect((await p.ledger.usage('t', new Date())).used).toBe(6 + 8 + 8);

    const observed = await observedCost(p.runs, 't', 'looper', new Date());
    expect(observed).toMatchObject({ runs: 3, meanActions: 7.3, minActions: 6, maxActions: 8 });
    await worker.close();

    const dir = mkdtempSync(join(tmpdir(), 'fm-est-'));
    const file = join(dir, 'looper.json');
    writeFileSync(file, JSON.stringify(doc));
    const r = spawnSync(
      process.execPath,
      ['--no-node-snapshot', resolve('bin/flowmeter.js'), '--redis', redisUrl(), '--prefix', prefix, 'estimate', file, '--tenant', 't', '--json'],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.perRun).toEqual({ min: 2, max: 8 });
    expect(out.observed).toMatchObject({ runs: 3, meanActions: 7.3 });
    const text = spawnSync(
      process.execPath,
      ['--no-node-snapshot', resolve('bin/flowmeter.js'), '--redis', redisUrl(), '--prefix', prefix, 'estimate', file, '--tenant', 't'],
      { encoding: 'utf8' },
    );
    expect(text.stdout).toMatch(/observed: 7\.3 actions per run on average over 3 runs since/);
  });

  it('variables persist across runs on workers, and come with the claim once their defaults are stored', async () => {
    p = await createProduction({ redisUrl: redisUrl(), prefix: uniquePrefix() });
    const counter = scenarioOf({
      id: 'counter',
      variables: { n: 0 },
      start: 'inc',
      nodes: [fn('inc', 'setVar("n", vars.n + 1); return { payload: vars.n };')],
    });
    await p.scenarios.deploy('t', counter);
    let loads = 0;
    const load = p.vars.load.bind(p.vars);
    p.vars.load = (...args) => {
      loads++;
      return load(...args);
    };
    const worker = p.startWorker({ concurrency: 1 });
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await p.trigger('t', 'counter', null, { type: 'manual' });
      const done = await p.waitFor('t', run.runId, async () => undefined, 20_000);
      seen.push(done.outputs[0]?.payload);
    }
    await worker.close();
    expect(seen).toEqual([1, 2, 3]);
    expect(loads).toBe(1); // the first run stores the default; later runs get the variables with their claim
  });
});
