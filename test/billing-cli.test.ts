/** The §11 commands as a user meets them: the built binary against the test Redis. */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Processes } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const procs = new Processes();
afterAll(async () => procs.killAll());
const dir = mkdtempSync(join(tmpdir(), 'fm-billing-'));
const file = (name: string, content: unknown) => {
  const f = join(dir, name);
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
};

describe('billing commands', () => {
  it('plan set, invoice, quota add --expires, usage --months and usage export', async () => {
    const p = await useProduction();
    const cli = (...args: string[]) => procs.run(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args]);
    try {
      const bad = await cli('plan', 'set', '--tenant', 'acme', '--file', file('bad.json', { name: 'X', currency: 'ZZZ', basePrice: -1, includedActions: 1 }));
      expect(bad.code).toBe(2);
      expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(/bad\.json: invalid plan: currency: must be an ISO 4217 currency code.*; basePrice: must not be negative/);
      const ok = await cli(
        'plan',
        'set',
        '--tenant',
        'acme',
        '--file',
        file('plan.json', { name: 'Team', currency: 'EUR', basePrice: 19.99, includedActions: 50, overagePrice: 0.1, addOnPrice: 5, addOnActions: 100 }),
      );
      expect(ok.code, ok.stderr).toBe(0);
      expect((await p.ledger.getQuota('acme')).monthlyActions).toBe(50);

      const past = await cli('quota', 'add', '--tenant', 'acme', '--actions', '10', '--expires', '2020-01-01T00:00:00Z');
      expect(past).toMatchObject({ code: 2, stdout: '' });
      expect(past.stderr).toBe('flowmeter: --expires 2020-01-01T00:00:00Z is in the past\n');
      const add = await cli('quota', 'add', '--tenant', 'acme', '--actions', '100', '--expires', '2999-01-01T00:00:00Z');
      expect(add.code, add.stderr).toBe(0);

      await p.scenarios.deploy('acme', scenarioOf({ id: 'one', start: 'a', nodes: [fn('a', 'return msg;')] }));
      p.startWorker({ concurrency: 2 });
      const run = await p.waitFor('acme', (await p.trigger('acme', 'one', { x: 1 }, { type: 'manual' })).runId, async () => undefined);
      expect(run.status).toBe('succeeded');

      const inv = await cli('invoice', '--tenant', 'acme', '--json');
      expect(inv.code, inv.stderr).toBe(0);
      const json = JSON.parse(inv.stdout);
      expect(json).toMatchObject({ tenant: 'acme', currency: 'EUR', preview: true });
      expect(json.lines.map((l: { kind: string }) => l.kind)).toEqual(['base', 'addOn']);
      expect(json.total).toBe(Math.round((19.99 + json.lines[1].amount) * 100) / 100);
      const table = await cli('invoice', '--tenant', 'acme');
      expect(table.stdout).toMatch(/^invoice for acme, period \d{4}-\d{2}, EUR \(preview/);
      expect(table.stdout).toMatch(/\nbase\s+Team plan, 50 actions included\s+1\s+19\.99\s+19\.99\n/);
      const none = await cli('invoice', '--tenant', 'nobody');
      expect(none.code).toBe(2);
      expect(none.stderr).toBe('flowmeter: no tenant "nobody"\n');

      const hist = await cli('usage', '--tenant', 'acme', '--months', '3', '--json');
      expect(hist.code, hist.stderr).toBe(0);
      const rows = JSON.parse(hist.stdout);
      expect(rows).toHaveLength(3);
      expect(rows[0]).toMatchObject({ used: 2, addOns: 100, limit: 50, runs: 1 });
      expect(rows[1].period < rows[0].period).toBe(true);

      const period = rows[0].period as string;
      const csv = await cli('usage', 'export', '--tenant', 'acme', '--period', period, '--format', 'csv');
      expect(csv.code, csv.stderr).toBe(0);
      expect(csv.stdout).toBe(`run_id,scenario,started,actions,billable\n${run.runId},one,${run.startedAt},2,true\n`);
      const ce = await cli('usage', 'export', '--tenant', 'acme', '--period', period, '--format', 'cloudevents');
      expect(JSON.parse(ce.stdout)).toMatchObject({ specversion: '1.0', id: run.runId, data: { actions: 2, billable: true } });
      const fmt = await cli('usage', 'export', '--tenant', 'acme', '--period', period, '--format', 'xml');
      expect(fmt).toMatchObject({ code: 2, stderr: 'flowmeter: --format must be csv or cloudevents, got "xml"\n' });
    } finally {
      await p.close();
    }
  }, 60_000);
});
