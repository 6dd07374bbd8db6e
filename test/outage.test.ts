/**
 * Redis outage (SPEC §10): while Redis is unreachable the API and webhooks answer 503
 * REDIS_UNAVAILABLE at once (bounded here by a generous 5 s), /healthz keeps answering, and a
 * request answered with an error is never acted on later (no replay of queued commands once
 * Redis is back). A private redis-server, killed and restarted on the same port with its AOF;
 * the server on real HTTP.
 */

import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createProduction, type Production } from '../redis/production.js';
import { startRedis } from './global-setup.js';
import { redisServerAt, waitUntil } from './helpers/processes.js';
import { uniquePrefix } from './helpers/production.js';
import { scenarioOf } from './helpers/run.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
let app: FastifyInstance | null = null;
let p: Production | null = null;
let stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  await app?.close();
  await p?.close();
  for (const stop of stops) await stop();
  app = null;
  p = null;
  stops = [];
});

/** A request with a 5 s bound: an answer that does not come in time fails the test. */
async function call(
  base: string,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown } = {},
): Promise<{ status: number; body: { error?: { code: string; message: string }; runId?: string } & Record<string, unknown> }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(opts.key && { authorization: `Bearer ${opts.key}` }), ...(opts.body !== undefined && { 'content-type': 'application/json' }) },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: (await res.json()) as never };
}

describe('Redis outage: the server answers 503 at once and does nothing later', () => {
  it('webhook, trigger and /api/runs answer 503 REDIS_UNAVAILABLE; none of them starts a run once Redis is back', async () => {
    const first = await startRedis(AOF);
    // startRedis's stop() waits for an exit: only for a server still running.
    stops.push(async () => void (first.child.exitCode === null && first.child.signalCode === null && (await first.stop())));
    const tenant = 'acme';
    p = await createProduction({ redisUrl: first.url, prefix: uniquePrefix(), persistent: true, failFast: true });
    await p.scenarios.deploy(
      tenant,
      scenarioOf({ id: 'hook', trigger: { type: 'webhook' }, start: 'a', nodes: [{ id: 'a', type: 'function', code: 'return msg;' }] }),
    );
    await p.scenarios.enable(tenant, 'hook', undefined);
    const key = await p.keys.create(tenant);
    app = await buildServer(p);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    expect((await call(base, 'GET', '/api/runs', { key })).status).toBe(200);

    await first.stop();
    const hook = await call(base, 'POST', '/hooks/acme/hook', { body: { n: 1 } });
    expect(hook.status).toBe(503);
    expect(hook.body.error!.code).toBe('REDIS_UNAVAILABLE');
    expect(hook.body.error!.message.split('\n')).toHaveLength(1);
    const trigger = await call(base, 'POST', '/api/scenarios/hook/trigger', { key, body: { payload: { n: 2 } } });
    expect([trigger.status, trigger.body.error?.code]).toEqual([503, 'REDIS_UNAVAILABLE']);
    const runs = await call(base, 'GET', '/api/runs', { key });
    expect([runs.status, runs.body.error?.code]).toEqual([503, 'REDIS_UNAVAILABLE']);
    const health = await call(base, 'GET', '/healthz');
    expect(health.status).toBe(503);

    // Back on the same port with its data: the server reconnects by itself.
    const second = await redisServerAt(first.port, first.dir, AOF);
    stops.push(() => second.stop());
    await waitUntil('the server to reconnect', async () => (await call(base, 'GET', '/healthz')).status === 200, { timeoutMs: 20_000, intervalMs: 200 });
    const again = await call(base, 'POST', '/hooks/acme/hook', { body: { n: 3 } });
    expect(again.status).toBe(202);
    // Commands run in order on a connection: anything replayed would be stored by now.
    const list = await call(base, 'GET', '/api/runs', { key });
    expect(list.status).toBe(200);
    const ids = (list.body as unknown as Array<{ runId: string }>).map((r) => r.runId);
    expect(ids).toEqual([again.body.runId]);
    // One run queued (no worker: in its tenant's ready list), none in BullMQ.
    expect(await p.queue.depth()).toBe(1);
    expect(await p.queue.jobs()).toBe(0);
  }, 60_000);
});
