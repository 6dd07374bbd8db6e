/**
 * SPEC §9 operator surfaces and webhook replay, on a real listening server: /metrics needs the
 * admin key, webhook secrets show as "[set]", every error (the framework's own too) is
 * { error: { code, message } }, and timestamped signatures hold only within 300 s.
 */

import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { fn, scenarioOf } from './helpers/run.js';

const ADMIN = 'admin-http-test-key-123456';
const HOOK_SECRET = 'whsec-plain-signing-key-99';
let e: Embedded;
let app: FastifyInstance;
let base: string;
let port: number;
let tenantKey: string;

beforeAll(async () => {
  e = createEmbedded({ env: {} });
  app = await buildServer(e, { adminKey: ADMIN });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  tenantKey = await e.keys.create('acme');
  await e.ledger.setQuota('acme', { monthlyActions: 1000 });
  for (const [id, secret] of [
    ['signed', HOOK_SECRET],
    ['stored', '${secret:HOOK}'],
  ] as const) {
    await e.scenarios.deploy('acme', scenarioOf({ id, trigger: { type: 'webhook', secret }, start: 'a', nodes: [fn('a', 'return msg;')] }));
    await e.scenarios.enable('acme', id, undefined);
  }
});
afterAll(async () => {
  await app.close();
  await e.close();
});

/** Raw bytes to the server; resolves with what it answered before closing. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.setEncoding('utf8').on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

function jsonError(answer: string): { status: number; error: { code: string; message: string } } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
  return { status, ...(JSON.parse(body) as { error: { code: string; message: string } }) };
}

const shape = { error: { code: expect.stringMatching(/^[A-Z_]+$/), message: expect.any(String) } };

describe('operator surfaces', () => {
  it('/metrics is 401 without the admin key (and with a tenant key), 200 with it', async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const tenant = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${tenantKey}` } });
    expect(tenant.status).toBe(401);
    expect(await tenant.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
  });

  it('API scenario documents show a webhook secret as "[set]"', async () => {
    const got = await (await fetch(`${base}/api/scenarios/signed`, { headers: { authorization: `Bearer ${tenantKey}` } })).text();
    expect(JSON.parse(got).scenario.trigger.secret).toBe('[set]');
    expect(got).not.toContain(HOOK_SECRET);
    const put = await fetch(`${base}/api/scenarios/other`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tenantKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ trigger: { type: 'webhook', secret: 'another-plain-secret-1' }, start: 'a', nodes: [fn('a', 'return msg;')] }),
    });
    const text = await put.text();
    expect(put.status).toBe(201);
    expect(text).not.toContain('another-plain-secret-1');
    expect(JSON.parse(text).scenario.trigger.secret).toBe('[set]');
  });
});

describe('every error in the JSON shape', () => {
  it.each([
    ['bad percent-encoding', '/api/runs/%E0%A4%A', 400],
    ['bad percent-encoding in a hook path', '/hooks/acme/%ZZ', 400],
    ['unknown route', '/nope/nothing', 404],
    ['a parameter over the length limit', `/api/runs/${'r'.repeat(600)}`, 414],
  ])('%s', async (_what, path, status) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${tenantKey}` } });
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual(shape);
  });

  it('headers over the size limit: 431 in the JSON shape', async () => {
    const answer = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(jsonError(answer)).toEqual({ status: 431, ...shape });
  });

  it('a URL over the size limit: 431 in the JSON shape', async () => {
    const answer = await raw(`GET /api/runs?x=${'b'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(jsonError(answer)).toEqual({ status: 431, ...shape });
  });

  it('a malformed request line: 400 in the JSON shape', async () => {
    expect(jsonError(await raw('THIS IS NOT HTTP\r\n\r\n'))).toEqual({ status: 400, ...shape });
  });

  it('malformed JSON and a body of another media type: 400 in the JSON shape', async () => {
    for (const [type, body] of [
      ['application/json', '{"nope'],
      ['text/plain', 'hello'],
      ['application/x-www-form-urlencoded', 'a=b'],
    ]) {
      const res = await fetch(`${base}/api/scenarios/x`, { method: 'PUT', headers: { authorization: `Bearer ${tenantKey}`, 'content-type': type! }, body });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(shape);
    }
  });
});

describe('webhook signatures with a timestamp', () => {
  const body = '{"order":1}';
  const sign = (t: number, secret = HOOK_SECRET, b = body) => `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${b}`).digest('hex')}`;
  const hook = (sig: string, path = 'signed', b = body) =>
    fetch(`${base}/hooks/acme/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': sig }, body: b });
  const now = () => Math.floor(Date.now() / 1000);

  it('within 300 s either way is accepted; the plain signature still is', async () => {
    expect((await hook(sign(now()))).status).toBe(202);
    expect((await hook(sign(now() - 290))).status).toBe(202);
    expect((await hook(sign(now() + 290))).status).toBe(202);
    expect((await hook(createHmac('sha256', HOOK_SECRET).update(body).digest('hex'))).status).toBe(202);
  });

  it.each([
    ['a replay older than 300 s', () => sign(now() - 400)],
    ['a timestamp far in the future', () => sign(now() + 400)],
    ['a wrong key', () => sign(now(), 'not-the-key')],
    ['a signature of another body', () => sign(now(), HOOK_SECRET, '{"order":2}')],
    ['a non-numeric t', () => `t=abc,v1=${'0'.repeat(64)}`],
    ['t without v1', () => `t=${now()}`],
    ['v1 of the right t but shifted t', () => sign(now()).replace(/^t=(\d+)/, (_, t: string) => `t=${Number(t) + 1}`)],
  ])('%s is 401 BAD_SIGNATURE', async (_what, sig) => {
    const res = await hook(sig());
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'BAD_SIGNATURE' } });
  });

  it('trigger.secret ${secret:HOOK}: 401 SECRET_MISSING (not naming it) until stored, then its value signs', async () => {
    const missing = await hook(sign(now(), 'anything'), 'stored');
    expect(missing.status).toBe(401);
    const answer = (await missing.json()) as { error: { code: string; message: string } };
    expect(answer.error.code).toBe('SECRET_MISSING');
    expect(answer.error.message).not.toContain('HOOK');
    await e.secrets.set('acme', 'HOOK', 'stored-hook-key-abc');
    expect((await hook(sign(now(), 'stored-hook-key-abc'), 'stored')).status).toBe(202);
    expect((await hook(sign(now(), '${secret:HOOK}'), 'stored')).status).toBe(401);
  });
});
