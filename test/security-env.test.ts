/**
 * SPEC §9 environment: in production a scenario reads with ${env:NAME} only what
 * FLOWMETER_TENANT_ENV lists. Deploying one naming any other is refused (ENV_NOT_ALLOWED, 400),
 * and a run never reads it, even when the scenario was stored by another path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { triggerAndWait } from '../api/routes-common.js';
import { buildServer } from '../api/server.js';
import type { Production } from '../redis/production.js';
import { type Listener, listen } from './helpers/listener.js';
import { useProduction } from './helpers/production.js';
import { scenarioOf } from './helpers/run.js';

const ADMIN = 'operator-admin-key-5f2c9a11';
const REDIS_SECRET = 'redis://:hunter2-redis-pass@10.0.0.9:6379';

let sink: Listener;
let p: Production;
beforeAll(async () => {
  sink = await listen();
  p = await useProduction({
    env: {
      FLOWMETER_ADMIN_KEY: ADMIN,
      FLOWMETER_REDIS_URL: REDIS_SECRET,
      HOME: '/home/operator',
      CRM_TOKEN: 'crm-token-ok-123',
      FLOWMETER_TENANT_ENV: 'CRM_TOKEN',
      FLOWMETER_EGRESS_ALLOW: '127.0.0.1',
    },
  });
  p.startWorker({ concurrency: 2 });
});
afterAll(async () => {
  await p.close();
  await sink.close();
});

const exfil = (id: string, name: string) => ({
  id,
  start: 'send',
  connections: { out: { baseUrl: sink.base, headers: { 'X-Leak': `\${env:${name}}` } } },
  nodes: [{ id: 'send', type: 'connector', connection: 'out', url: '/collect', retry: { attempts: 1, backoffMs: 0 } }],
});

describe('deploy', () => {
  it.each(['FLOWMETER_ADMIN_KEY', 'FLOWMETER_REDIS_URL', 'HOME'])(
    'PUT /api/scenarios naming ${env:%s} is 400 ENV_NOT_ALLOWED, one line naming it; nothing stored',
    async (name) => {
      const app = await buildServer(p, { adminKey: ADMIN });
      try {
        const res = await app.inject({
          method: 'PUT',
          url: '/api/scenarios/leak?tenant=acme',
          headers: { authorization: `Bearer ${ADMIN}` },
          payload: exfil('leak', name),
        });
        expect(res.statusCode).toBe(400);
        const { error } = res.json() as { error: { code: string; message: string } };
        expect(error.code).toBe('ENV_NOT_ALLOWED');
        expect(error.message).toContain(`\${env:${name}}`);
        expect(error.message).not.toContain('\n');
        expect(await p.scenarios.get('acme', 'leak')).toBeNull();
      } finally {
        await app.close();
      }
    },
  );

  it('a variable FLOWMETER_TENANT_ENV lists deploys and is read', async () => {
    const app = await buildServer(p, { adminKey: ADMIN });
    try {
      const res = await app.inject({
        method: 'PUT',
        url: '/api/scenarios/crm?tenant=acme',
        headers: { authorization: `Bearer ${ADMIN}` },
        payload: exfil('crm', 'CRM_TOKEN'),
      });
      expect(res.statusCode).toBe(201);
      const run = await triggerAndWait(p, 'acme', 'crm', null, { type: 'manual' }, 20_000);
      expect(run.status).toBe('succeeded');
      expect(sink.requests.at(-1)!.headers['x-leak']).toBe('crm-token-ok-123');
    } finally {
      await app.close();
    }
  });
});

describe('run', () => {
  it.each(['FLOWMETER_ADMIN_KEY', 'FLOWMETER_REDIS_URL', 'HOME'])(
    'a scenario stored directly naming ${env:%s} fails ENV_NOT_ALLOWED; the value never leaves',
    async (name) => {
      sink.requests.length = 0;
      await p.scenarios.deploy('acme', scenarioOf(exfil('direct', name)));
      const run = await triggerAndWait(p, 'acme', 'direct', null, { type: 'manual' }, 20_000);
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ code: 'ENV_NOT_ALLOWED', message: expect.stringContaining(name) });
      expect(sink.requests).toHaveLength(0);
      const text = JSON.stringify(run);
      for (const v of [ADMIN, 'hunter2-redis-pass', '/home/operator']) expect(text).not.toContain(v);
    },
  );
});
