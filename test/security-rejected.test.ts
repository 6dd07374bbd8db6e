/**
 * SPEC §9 rejected webhooks: unauthenticated requests to a tenant whose quota is exhausted are
 * answered 429 and recorded, but their payloads are kept only within FLOWMETER_REJECTED_BYTES per
 * tenant per period, and the records expire after 7 days (not the 30 of ended runs). The same
 * bounds hold for the tenant's own trigger and replay routes, and past FLOWMETER_REJECTED_RUNS
 * refused triggers are counted, not recorded (api/rejected.ts).
 */

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createEmbedded } from '../engine/embedded.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

describe('rejected webhook payloads', () => {
  it('are kept within the byte budget, then recorded without payload; every record expires within 7 days', async () => {
    const p = await useProduction({ env: { FLOWMETER_REJECTED_BYTES: '5000' } });
    const app = await buildServer(p, {});
    const raw = new Redis(redisUrl());
    try {
      await p.ledger.setQuota('acme', { monthlyActions: 0 });
      await p.scenarios.deploy('acme', scenarioOf({ id: 'hook', trigger: { type: 'webhook' }, start: 'a', nodes: [fn('a', 'return msg;')] }));
      await p.scenarios.enable('acme', 'hook', undefined);
      const body = JSON.stringify({ blob: 'x'.repeat(1000) });
      const runIds: string[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await app.inject({ method: 'POST', url: '/hooks/acme/hook', headers: { 'content-type': 'application/json' }, payload: body });
        expect(res.statusCode).toBe(429);
        runIds.push((res.json() as { error: { runId: string } }).error.runId);
      }
      let keptBytes = 0;
      const kept: boolean[] = [];
      for (const id of runIds) {
        const stored = await raw.hget(p.redisKeys.run('acme', id), 'payload');
        const run = await p.runs.get('acme', id);
        expect(run?.status).toBe('rejected');
        kept.push(run!.payloadKept !== false);
        if (run!.payloadKept === false) {
          expect(stored).toBe('null');
          expect(run!.error!.message).toContain('the payload was not kept');
        } else keptBytes += stored!.length;
        const ttl = await raw.ttl(p.redisKeys.run('acme', id));
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(7 * 86400);
      }
      expect(kept.slice(0, 3)).toEqual([true, true, true]);
      expect(kept.slice(5)).toEqual([false, false, false, false, false]);
      expect(keptBytes).toBeLessThanOrEqual(5000);
    } finally {
      raw.disconnect();
      await app.close();
      await p.close();
    }
  });

  it("the tenant's own trigger route keeps within the same budget: a 200 KB payload with no action left is not stored (it was, whole, for each request)", async () => {
    // Before, each such trigger was persisted whole and enqueued for a worker to refuse: a free
    // tenant's 200 requests of 0.5 MB added 100 MB to Redis, for nothing billed.
    const p = await useProduction({ env: { FLOWMETER_REJECTED_BYTES: '5000' } });
    const app = await buildServer(p, {});
    const raw = new Redis(redisUrl());
    try {
      await p.ledger.setQuota('acme', { monthlyActions: 0 });
      await p.scenarios.deploy('acme', scenarioOf({ id: 'one', start: 'a', nodes: [fn('a', 'return msg;')] }));
      const key = await p.keys.create('acme');
      const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const body = JSON.stringify({ payload: { blob: 'x'.repeat(200 * 1024) } });
      const before = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await app.inject({ method: 'POST', url: '/api/scenarios/one/trigger', headers, payload: body });
        expect(res.statusCode).toBe(202); // as before: the run exists, and it is rejected
        ids.push((res.json() as { runId: string }).runId);
      }
      const waited = await app.inject({ method: 'POST', url: '/api/scenarios/one/trigger?wait=true', headers, payload: body });
      expect(waited.statusCode).toBe(200);
      expect(waited.json()).toMatchObject({ status: 'rejected', actions: 0, payloadKept: false, error: { code: 'QUOTA_EXHAUSTED' } });
      for (const id of ids) {
        const run = await p.runs.get('acme', id);
        expect(run).toMatchObject({ status: 'rejected', actions: 0, payloadKept: false, error: { code: 'QUOTA_EXHAUSTED' } });
        expect(await raw.hget(p.redisKeys.run('acme', id), 'payload')).toBe('null');
        expect(await raw.ttl(p.redisKeys.run('acme', id))).toBeLessThanOrEqual(7 * 86400);
      }
      const after = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
      expect(after - before).toBeLessThan(2 * 1024 * 1024); // 21 × 200 KB would be 4.2 MB
      // A replay of such a run says why it cannot be replayed; nothing is recorded for it.
      const replay = await app.inject({ method: 'POST', url: `/api/runs/${ids[0]}/replay`, headers });
      expect(replay.json().error.code).toBe('PAYLOAD_NOT_KEPT');
      // A test run does not consume the quota, but it is not free of limits: with a quota of 0,
      // no non-billable action is left either.
      const test = await app.inject({ method: 'POST', url: '/api/scenarios/one/trigger', headers, payload: JSON.stringify({ payload: { n: 1 }, test: true }) });
      expect(test.statusCode).toBe(202);
      const testRun = await p.runs.get('acme', (test.json() as { runId: string }).runId);
      expect(testRun).toMatchObject({ status: 'rejected', billable: false, error: { code: 'QUOTA_EXHAUSTED' } });
      expect(testRun!.error!.message).toContain("tenant acme's non-billable actions (test runs, non-billable scenarios) for this period are used up: 0 of 0");
    } finally {
      raw.disconnect();
      await app.close();
      await p.close();
    }
  });

  it('past FLOWMETER_REJECTED_RUNS a period, refused triggers are counted, not recorded: 429 naming the count', async () => {
    const p = await useProduction({ env: { FLOWMETER_REJECTED_RUNS: '3' } });
    const app = await buildServer(p, {});
    try {
      await p.ledger.setQuota('acme', { monthlyActions: 0 });
      await p.scenarios.deploy('acme', scenarioOf({ id: 'hook', trigger: { type: 'webhook' }, start: 'a', nodes: [fn('a', 'return msg;')] }));
      await p.scenarios.enable('acme', 'hook', undefined);
      const key = await p.keys.create('acme');
      const hook = () => app.inject({ method: 'POST', url: '/hooks/acme/hook', headers: { 'content-type': 'application/json' }, payload: '{}' });
      const api = () =>
        app.inject({
          method: 'POST',
          url: '/api/scenarios/hook/trigger',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          payload: '{}',
        });
      const answers = [await hook(), await api(), await hook(), await hook(), await api(), await hook()];
      expect(answers.map((a) => a.statusCode)).toEqual([429, 202, 429, 429, 429, 429]);
      const last = answers[5]!.json() as { error: { code: string; message: string; runId?: string } };
      expect(last.error.code).toBe('QUOTA_EXHAUSTED');
      expect(last.error.message).toContain('6 triggers were refused this period, and past 3 (FLOWMETER_REJECTED_RUNS) they are counted, not recorded as runs');
      expect(last.error.runId).toBeUndefined();
      expect(answers[3]!.headers['retry-after']).toBeDefined();
      const runs = await p.runs.list('acme', { limit: 100 });
      expect(runs.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    } finally {
      await app.close();
      await p.close();
    }
  });

  it('test runs and non-billable scenarios do not consume the quota, but stop at as many actions as the quota', async () => {
    // Before, a tenant key could run without end for nothing: "test": true on every trigger.
    const p = createEmbedded();
    const app = await buildServer(p, {});
    try {
      await p.ledger.setQuota('acme', { monthlyActions: 4 });
      await p.scenarios.deploy('acme', scenarioOf({ id: 'one', start: 'a', nodes: [fn('a', 'return msg;')] }));
      await p.scenarios.deploy('acme', scenarioOf({ id: 'free', billable: false, trigger: { type: 'webhook' }, start: 'a', nodes: [fn('a', 'return msg;')] }));
      await p.scenarios.enable('acme', 'free', undefined);
      const key = await p.keys.create('acme');
      const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const test = () => app.inject({ method: 'POST', url: '/api/scenarios/one/trigger?wait=true', headers, payload: '{"test":true}' });
      expect((await test()).json()).toMatchObject({ status: 'succeeded', billable: false, actions: 2 });
      expect((await app.inject({ method: 'POST', url: '/hooks/acme/free?wait=true', payload: {} })).json()).toMatchObject({ status: 'succeeded', actions: 2 });
      // 4 non-billable actions: as many as the quota. The next test run and webhook are refused.
      const refused = (await test()).json() as { status: string; actions: number; error: { code: string; message: string } };
      expect(refused).toMatchObject({ status: 'rejected', actions: 0, error: { code: 'QUOTA_EXHAUSTED' } });
      expect(refused.error.message).toContain('4 of 4, as many as its quota');
      const hook = await app.inject({ method: 'POST', url: '/hooks/acme/free', payload: {} });
      expect(hook.statusCode).toBe(429);
      // The quota itself is untouched: a billable run goes through.
      const usage = await p.ledger.usage('acme', new Date());
      expect([usage.used, usage.nonBillable]).toEqual([0, 4]);
      const billable = await app.inject({ method: 'POST', url: '/api/scenarios/one/trigger?wait=true', headers, payload: '{}' });
      expect(billable.json()).toMatchObject({ status: 'succeeded', billable: true, actions: 2 });
    } finally {
      await app.close();
      await p.close();
    }
  });
});
