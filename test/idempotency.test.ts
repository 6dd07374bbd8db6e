/**
 * Idempotent triggers (SPEC §10): `POST /hooks/:tenant/:path` and `POST /api/scenarios/:id/trigger`
 * with an `Idempotency-Key` header: a repeat returns the first request's runId and starts
 * nothing; keys are per tenant and per route target. On both platforms (Redis: create.lua; in
 * memory: the embedded twin), over real HTTP.
 */

import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import type { Production } from '../redis/production.js';
import { useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

let app: FastifyInstance | null = null;
let platform: Platform | null = null;

afterEach(async () => {
  await app?.close();
  await platform?.close();
  app = null;
  platform = null;
});

interface Answer {
  status: number;
  body: { runId?: string; error?: { code: string; message: string } };
}

describe.each(['embedded', 'redis'] as const)('idempotent triggers (%s)', (mode) => {
  it('a repeated Idempotency-Key returns the first runId and starts nothing; keys are per tenant and route target', async () => {
    platform = mode === 'redis' ? await useProduction() : createEmbedded();
    const p = platform;
    for (const tenant of ['acme', 'beta']) {
      await p.scenarios.deploy(tenant, scenarioOf({ id: 'hook', trigger: { type: 'webhook' }, start: 'a', nodes: [fn('a', 'return msg;')] }));
      await p.scenarios.enable(tenant, 'hook', undefined);
    }
    await p.scenarios.deploy('acme', scenarioOf({ id: 'job', start: 'a', nodes: [fn('a', 'return msg;')] }));
    const key = await p.keys.create('acme');
    app = await buildServer(p);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const post = async (path: string, idem: string | undefined, body: unknown = { n: 1 }): Promise<Answer> => {
      const res = await fetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(idem !== undefined && { 'idempotency-key': idem }) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: (await res.json()) as Answer['body'] };
    };
    const hook = (idem?: string, tenant = 'acme') => post(`/hooks/${tenant}/hook`, idem);
    const trigger = (idem?: string) => post('/api/scenarios/job/trigger', idem, { payload: { n: 1 } });

    // Webhook: same key → same run; another key → a new run; repeats at once → one run.
    const a1 = await hook('order-1');
    const a2 = await hook('order-1');
    expect([a1.status, a2.status]).toEqual([202, 202]);
    expect(a2.body.runId).toBe(a1.body.runId);
    const b = await hook('order-2');
    expect(b.body.runId).not.toBe(a1.body.runId);
    const burst = await Promise.all(Array.from({ length: 6 }, () => hook('order-3')));
    expect(new Set(burst.map((r) => r.body.runId)).size).toBe(1);
    expect(burst.every((r) => r.status === 202)).toBe(true);
    // Without a key, every request is a run of its own.
    const plain = await Promise.all([hook(), hook()]);
    expect(plain[0]!.body.runId).not.toBe(plain[1]!.body.runId);

    // Another tenant, another route target: the same key names another run.
    const other = await hook('order-1', 'beta');
    expect(other.status).toBe(202);
    expect(other.body.runId).not.toBe(a1.body.runId);
    const t1 = await trigger('order-1');
    const t2 = await trigger('order-1');
    expect([t1.status, t2.status]).toEqual([202, 202]);
    expect(t1.body.runId).not.toBe(a1.body.runId);
    expect(t2.body.runId).toBe(t1.body.runId);
    expect((await trigger('order-9')).body.runId).not.toBe(t1.body.runId);

    // A malformed key: 400, one line, nothing started.
    for (const bad of ['x'.repeat(256), 'with space', 'caf\u00e9']) {
      for (const r of [await hook(bad), await trigger(bad)]) {
        expect(r.status).toBe(400);
        expect(r.body.error!.code).toBe('INVALID_INPUT');
        expect(r.body.error!.message.split('\n')).toHaveLength(1);
      }
    }

    // One run per distinct request: acme's hook runs 1, 2, 3 and the two without a key; job 2.
    const hookRuns = await p.runs.list('acme', { scenarioId: 'hook' });
    expect(hookRuns.map((r) => r.runId).sort()).toEqual([a1, b, burst[0]!, ...plain].map((r) => r.body.runId!).sort());
    expect(await p.runs.list('acme', { scenarioId: 'job' })).toHaveLength(2);
    expect(await p.runs.list('beta', {})).toHaveLength(1);
    if (mode === 'redis') {
      // Nothing was enqueued for a repeat: each run is queued exactly once (no worker: in the
      // ready lists of the fair dispatcher).
      const prod = p as Production;
      const ready = await Promise.all(['acme', 'beta'].map((t) => prod.redis.lrange(`${prod.redisKeys.fairBase(0)}:ready:${t}`, 0, -1)));
      const queued = ready.flat().map((ref) => (JSON.parse(ref) as { runId: string }).runId);
      expect(queued).toHaveLength(new Set(queued).size);
      expect(queued.length).toBe(8);
      expect(await prod.queue.depth()).toBe(8);
    }
  }, 60_000);
});
