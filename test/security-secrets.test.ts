/**
 * SPEC §9 credentials and redaction: ${secret:NAME} from a per-tenant store encrypted at rest
 * (AES-256-GCM), never answered by any route, and scrubbed as [redacted] from every record of a
 * run — also one halted and resumed, in production (a worker process) and embedded.
 */

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { triggerAndWait } from '../api/routes-common.js';
import { buildServer } from '../api/server.js';
import { createEmbedded } from '../engine/embedded.js';
import type { RunEvent } from '../engine/platform.js';
import { SecretBox } from '../services/secrets.js';
import { type Listener, listen } from './helpers/listener.js';
import { Processes, waitUntil } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const KEY_HEX = randomBytes(32).toString('hex');
const SECRET = 'crm-secret-value-7Qx9';
const ADMIN = 'admin-key-for-secrets-test';

let echo: Listener;
const procs = new Processes();
beforeAll(async () => {
  // Echoes the request headers: the response carries the credential back into the message.
  echo = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ seen: req.headers }));
  });
});
afterAll(async () => {
  await echo.close();
});
afterEach(async () => {
  await procs.killAll();
});

const echoing = (id = 'echoing', token = '${secret:CRM}') =>
  scenarioOf({
    id,
    start: 'call',
    connections: { crm: { baseUrl: echo.base, auth: { type: 'bearer', token } } },
    nodes: [
      { id: 'call', type: 'connector', connection: 'crm', url: '/me', next: 'a', retry: { attempts: 1, backoffMs: 0 } },
      fn('a', 'log(JSON.stringify(msg.payload)); return msg;', 'b'),
      fn('b', 'return { payload: msg.payload };'),
    ],
  });

describe('SecretBox', () => {
  it('seals with AES-256-GCM bound to tenant and name; tampering or another tenant fails in one line', () => {
    const box = new SecretBox(KEY_HEX);
    const sealed = box.seal('acme', 'CRM', SECRET);
    expect(sealed).not.toContain(SECRET);
    expect(box.open('acme', 'CRM', sealed)).toBe(SECRET);
    expect(() => box.open('other', 'CRM', sealed)).toThrow(expect.objectContaining({ code: 'SECRETS_KEY_INVALID' }));
    const parts = sealed.split('.');
    parts[3] = Buffer.from(`x${SECRET}`).toString('base64');
    expect(() => box.open('acme', 'CRM', parts.join('.'))).toThrow(/cannot be decrypted/);
    expect(() => new SecretBox('abc')).toThrow(/FLOWMETER_SECRETS_KEY must be 64 hex characters/);
    expect(() => new SecretBox(undefined)).toThrow(/it is not set/);
  });
});

describe('production store and API', () => {
  it('stores values encrypted, lists names only, isolates tenants, and answers no value', async () => {
    const p = await useProduction({ env: { FLOWMETER_SECRETS_KEY: KEY_HEX } });
    const app = await buildServer(p, { adminKey: ADMIN });
    const raw = new Redis(redisUrl());
    try {
      const keyA = await p.keys.create('acme');
      const keyB = await p.keys.create('rival');
      const put = await app.inject({ method: 'PUT', url: '/api/secrets/CRM', headers: { authorization: `Bearer ${keyA}` }, payload: { value: SECRET } });
      expect(put.statusCode).toBe(200);
      expect(put.body).not.toContain(SECRET);
      const stored = await raw.hgetall(p.redisKeys.secrets('acme'));
      expect(Object.keys(stored)).toEqual(['CRM']);
      expect(JSON.stringify(stored)).not.toContain(SECRET);
      const list = await app.inject({ method: 'GET', url: '/api/secrets', headers: { authorization: `Bearer ${keyA}` } });
      expect(list.json()).toEqual({ secrets: [{ name: 'CRM', updatedAt: expect.any(String) }] });
      const rival = await app.inject({ method: 'GET', url: '/api/secrets', headers: { authorization: `Bearer ${keyB}` } });
      expect(rival.json()).toEqual({ secrets: [] });
      const admin = await app.inject({ method: 'GET', url: '/api/secrets?tenant=acme', headers: { authorization: `Bearer ${ADMIN}` } });
      expect(admin.body).not.toContain(SECRET);
      const bad = await app.inject({ method: 'PUT', url: '/api/secrets/__proto__x%24', headers: { authorization: `Bearer ${keyA}` }, payload: { value: 'v' } });
      expect(bad.json()).toMatchObject({ error: { code: 'INVALID_INPUT' } });
      expect((await app.inject({ method: 'DELETE', url: '/api/secrets/CRM', headers: { authorization: `Bearer ${keyB}` } })).statusCode).toBe(404);
      expect((await app.inject({ method: 'DELETE', url: '/api/secrets/CRM', headers: { authorization: `Bearer ${keyA}` } })).statusCode).toBe(200);
      expect(await raw.hlen(p.redisKeys.secrets('acme'))).toBe(0);
    } finally {
      raw.disconnect();
      await app.close();
      await p.close();
    }
  });

  it('a tenant keeps at most 1,000 secrets: the next new name is a 400 naming the bound, a replacement goes through (both stores)', async () => {
    // Values are up to 64 KB each: without a bound on their number one key could fill Redis.
    const p = await useProduction({ env: { FLOWMETER_SECRETS_KEY: KEY_HEX } });
    const embedded = createEmbedded();
    try {
      for (const store of [p.secrets, embedded.secrets]) {
        for (let i = 0; i < 1000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => store.set('acme', `S${i + k}`, 'v')));
        await expect(store.set('acme', 'ONE_MORE', 'v')).rejects.toThrow(
          'secret ONE_MORE was not stored: tenant acme keeps 1000 secrets, the most it may; delete one first (replacing an existing one is allowed)',
        );
        await store.set('acme', 'S0', 'replaced');
        expect((await store.read('acme', ['S0', 'ONE_MORE'])).get('S0')).toBe('replaced');
        expect((await store.list('acme')).length).toBe(1000);
        await store.set('rival', 'ONE_MORE', 'v'); // another tenant's bound is its own
        await store.delete('acme', 'S1');
        await store.set('acme', 'ONE_MORE', 'v');
      }
      const app = await buildServer(p, {});
      try {
        const key = await p.keys.create('acme');
        const res = await app.inject({ method: 'PUT', url: '/api/secrets/TWO_MORE', headers: { authorization: `Bearer ${key}` }, payload: { value: 'v' } });
        expect([res.statusCode, res.json().error.code]).toEqual([400, 'INVALID_INPUT']);
      } finally {
        await app.close();
      }
    } finally {
      await embedded.close();
      await p.close();
    }
  });

  it('without FLOWMETER_SECRETS_KEY setting a secret is 503 SECRETS_KEY_INVALID, one line', async () => {
    const p = await useProduction({ env: {} });
    const app = await buildServer(p, { adminKey: ADMIN });
    try {
      const res = await app.inject({
        method: 'PUT',
        url: '/api/secrets/CRM?tenant=acme',
        headers: { authorization: `Bearer ${ADMIN}` },
        payload: { value: SECRET },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({
        error: { code: 'SECRETS_KEY_INVALID', message: expect.stringMatching(/^FLOWMETER_SECRETS_KEY must be 64 hex characters[^\n]*$/) },
      });
    } finally {
      await app.close();
      await p.close();
    }
  });

  it('a run sends the secret, shows it nowhere, and a missing one fails SECRET_MISSING naming it', async () => {
    const p = await useProduction({ env: { FLOWMETER_SECRETS_KEY: KEY_HEX, FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
    p.startWorker({ concurrency: 1 });
    try {
      await p.scenarios.deploy('acme', echoing());
      const missing = await triggerAndWait(p, 'acme', 'echoing', null, { type: 'manual' }, 20_000);
      expect(missing.error).toMatchObject({ code: 'SECRET_MISSING', message: expect.stringContaining('CRM') });
      await p.secrets.set('acme', 'CRM', SECRET);
      const run = await triggerAndWait(p, 'acme', 'echoing', null, { type: 'manual' }, 20_000);
      expect(run.status).toBe('succeeded');
      expect(echo.requests.at(-1)!.headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(JSON.stringify(run)).not.toContain(SECRET);
      expect(JSON.stringify(run)).toContain('[redacted]');
    } finally {
      await p.close();
    }
  });
});

describe('redaction after a halt and a resume', () => {
  it('production, a worker process: no clear secret in record, task log, outputs or events', async () => {
    const env = { FLOWMETER_SECRETS_KEY: KEY_HEX, FLOWMETER_EGRESS_ALLOW: '127.0.0.1' };
    const p = await useProduction({ env });
    const events: RunEvent[] = [];
    const stop = await p.subscribe('acme', (e) => events.push(e));
    try {
      const worker = await procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, concurrency: 1, env });
      await p.secrets.set('acme', 'CRM', SECRET);
      await p.ledger.setQuota('acme', { monthlyActions: 2, resumeHalted: 'manual' });
      await p.scenarios.deploy('acme', echoing());
      const { runId } = await p.trigger('acme', 'echoing', null, { type: 'manual' });
      await waitUntil('the run to halt', async () => (await p.runs.get('acme', runId))?.status === 'halted');
      await p.ledger.setQuota('acme', { monthlyActions: 100 });
      await p.resume('acme', runId);
      const run = await waitUntil('the resumed run to end', async () => {
        const r = await p.runs.get('acme', runId);
        return r?.status === 'succeeded' && r;
      });
      expect(run.tasks.map((t) => t.nodeId)).toEqual(['$trigger', 'call', 'a', 'a', 'b']);
      expect(run.outputs).toHaveLength(1);
      const all = JSON.stringify({ run, events, log: worker.stderr });
      expect(all).not.toContain(SECRET);
      expect(JSON.stringify(run.outputs)).toContain('Bearer [redacted]');
    } finally {
      stop();
      await p.close();
    }
  });

  it.each(['${secret:CRM}', '${env:CRM_TOKEN}'])('embedded: the same run (token %s) resumed in process shows no clear secret', async (token) => {
    const events: RunEvent[] = [];
    const e = createEmbedded({ env: { FLOWMETER_SECRET_CRM: SECRET, CRM_TOKEN: SECRET } });
    const stop = await e.subscribe('default', (ev) => events.push(ev));
    try {
      await e.ledger.setQuota('default', { monthlyActions: 2, resumeHalted: 'manual' });
      const halted = await e.run(echoing('echoing', token), null);
      expect(halted.status).toBe('halted');
      await e.ledger.setQuota('default', { monthlyActions: 100 });
      const run = await e.resumeRun('default', halted.runId);
      expect(run.status).toBe('succeeded');
      const stored = await e.runs.get('default', run.runId);
      const all = JSON.stringify({ run, stored, events });
      expect(all).not.toContain(SECRET);
      expect(JSON.stringify(run.outputs)).toContain('Bearer [redacted]');
    } finally {
      stop();
      await e.close();
    }
  });
});
