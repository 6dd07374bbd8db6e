/**
 * SPEC §9 rejected webhooks: unauthenticated requests to a tenant whose quota is exhausted are
 * answered 429 and recorded, but their payloads are kept only within FLOWMETER_REJECTED_BYTES per
 * tenant per period, and the records expire after 7 days (not the 30 of ended runs).
 */

import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
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
});
