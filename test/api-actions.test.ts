/**
 * What the dashboard's actions call (SPEC §8, §12), on a real server over an embedded platform:
 * the resume route refuses a resume that would only halt again (the CLI's code and message,
 * with the numbers), keys list/revoke and scenario delete stay within the caller's tenant, and
 * the scenario list names each enabled cron scenario's next firing.
 */
import type { FastifyInstance } from 'fastify';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { nextInstants } from '../core/cron.js';
import type { RunRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { apiKeyId } from '../services/api-keys.js';
import { fn, scenarioOf } from './helpers/run.js';

let platform: Embedded;
let app: FastifyInstance;
let acme: string;
let beta: string;

const THREE = scenarioOf({ id: 'three', start: 'a', nodes: [fn('a', 'return msg;', 'b'), fn('b', 'return msg;', 'c'), fn('c', 'return msg;')] });
const NIGHTLY = scenarioOf({
  id: 'nightly',
  trigger: { type: 'cron', schedule: '30 9 * * *', timezone: 'Asia/Kolkata' },
  start: 'a',
  nodes: [fn('a', 'return msg;')],
});

function call(key: string, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) {
  return app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { payload: JSON.stringify(body) }),
  });
}

beforeAll(async () => {
  platform = createEmbedded();
  for (const t of ['acme', 'beta']) {
    await platform.scenarios.deploy(t, THREE);
    await platform.scenarios.deploy(t, NIGHTLY);
  }
  acme = await platform.keys.create('acme');
  beta = await platform.keys.create('beta');
  app = await buildServer(platform);
});

afterAll(async () => {
  await app?.close();
  await platform?.close();
});

describe('POST /api/runs/:id/resume', () => {
  it('refuses a resume that would halt again with how many actions are missing, and adds no second halted row', async () => {
    await platform.ledger.setQuota('acme', { monthlyActions: 2, overage: 'halt', resumeHalted: 'manual' });
    const started = await call(acme, 'POST', '/api/scenarios/three/trigger?wait=true', { payload: { n: 1 } });
    const run = started.json() as RunRecord & { resumable: boolean };
    expect([started.statusCode, run.status, run.resumable]).toEqual([200, 'halted', true]);
    const period = (await platform.ledger.usage('acme', new Date())).period;

    // Another tenant's run is as unknown as one that does not exist.
    const other = await call(beta, 'POST', `/api/runs/${run.runId}/resume`);
    expect([other.statusCode, other.json().error.code]).toEqual([404, 'NOT_FOUND']);

    const refused = await call(acme, 'POST', `/api/runs/${run.runId}/resume`);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: {
        code: 'QUOTA_EXHAUSTED',
        // The CLI's `runs resume` message, word for word (test/friction.test.ts).
        message: `run ${run.runId} would halt again: tenant acme has 0 actions left in ${period.key} and the run needs at least 1 more; add some with \`flowmeter quota add --tenant acme --actions N\``,
        period: period.key,
        periodEnd: period.end,
        remaining: 0,
        needed: 1,
      },
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    const after = (await platform.runs.get('acme', run.runId))!;
    expect(after.status).toBe('halted');
    expect(after.tasks.filter((t) => t.status === 'halted')).toHaveLength(1);
    expect((await platform.runs.list('acme')).map((r) => r.runId)).toEqual([run.runId]);

    // With actions bought, the same request resumes it.
    await platform.ledger.addActions('acme', 5, new Date());
    const resumed = await call(acme, 'POST', `/api/runs/${run.runId}/resume`);
    expect([resumed.statusCode, resumed.json()]).toEqual([202, { runId: run.runId, status: 'queued' }]);
    let done = (await platform.runs.get('acme', run.runId))!;
    for (const end = Date.now() + 10_000; done.status !== 'succeeded' && Date.now() < end; done = (await platform.runs.get('acme', run.runId))!)
      await new Promise((r) => setTimeout(r, 10));
    expect(done.status).toBe('succeeded');
  });
});

describe('keys and scenario delete through the API', () => {
  it("lists and revokes the caller's own keys; another tenant's key id is a 404", async () => {
    const second = await platform.keys.create('acme');
    const listed = (await call(acme, 'GET', '/api/keys')).json() as { keys: Array<{ id: string; createdAt: string }> };
    expect(listed.keys.map((k) => k.id).sort()).toEqual([apiKeyId(acme), apiKeyId(second)].sort());
    expect(JSON.stringify(listed)).not.toContain('fmk_');
    const cross = await call(beta, 'DELETE', `/api/keys/${apiKeyId(second)}`);
    expect([cross.statusCode, cross.json().error.code]).toEqual([404, 'NOT_FOUND']);
    expect((await call(second, 'GET', '/api/keys')).statusCode).toBe(200);
    const revoked = await call(acme, 'DELETE', `/api/keys/${apiKeyId(second)}`);
    expect([revoked.statusCode, revoked.json()]).toEqual([200, { id: apiKeyId(second), revoked: true }]);
    expect((await call(second, 'GET', '/api/keys')).statusCode).toBe(401);
    expect((await call(acme, 'DELETE', `/api/keys/${apiKeyId(second)}`)).statusCode).toBe(404);
  });

  it("deletes the caller's scenario only: another tenant's delete is a 404 and changes nothing", async () => {
    await platform.scenarios.deploy('acme', scenarioOf({ id: 'gone', start: 'a', nodes: [fn('a', 'return msg;')] }));
    const cross = await call(beta, 'DELETE', '/api/scenarios/gone');
    expect([cross.statusCode, cross.json().error.code]).toEqual([404, 'NOT_FOUND']);
    expect(await platform.scenarios.get('acme', 'gone')).not.toBeNull();
    const del = await call(acme, 'DELETE', '/api/scenarios/gone');
    expect([del.statusCode, del.json()]).toEqual([200, { id: 'gone', deleted: true }]);
    const ids = ((await call(acme, 'GET', '/api/scenarios')).json() as Array<{ id: string }>).map((s) => s.id);
    expect(ids).not.toContain('gone');
    expect((await call(acme, 'POST', '/api/scenarios/gone/trigger', {})).statusCode).toBe(404);
  });
});

describe('GET /api/scenarios', () => {
  it("names an enabled cron scenario's next firing in its timezone; null while disabled; none for other triggers", async () => {
    const list = async () => (await call(acme, 'GET', '/api/scenarios')).json() as Array<{ id: string; nextFiring?: string | null }>;
    expect((await list()).find((s) => s.id === 'nightly')!.nextFiring).toBeNull();
    expect((await call(acme, 'POST', '/api/scenarios/nightly/enable')).statusCode).toBe(200);
    const before = new Date();
    const scenarios = await list();
    const after = new Date();
    const next = scenarios.find((s) => s.id === 'nightly')!.nextFiring!;
    expect(next).toMatch(/^\d{4}-\d{2}-\d{2}T09:30:00\+05:30$/);
    const expected = [before, after].map((d) =>
      DateTime.fromJSDate(nextInstants('30 9 * * *', 'Asia/Kolkata', d, 1)[0]!, { zone: 'Asia/Kolkata' }).toISO({ suppressMilliseconds: true }),
    );
    expect(expected).toContain(next);
    expect(Date.parse(next)).toBeGreaterThan(before.getTime());
    expect(Date.parse(next) - before.getTime()).toBeLessThanOrEqual(86_400_000);
    expect(scenarios.find((s) => s.id === 'three')).not.toHaveProperty('nextFiring');
  });
});
