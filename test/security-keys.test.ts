/**
 * SPEC §9 keys and the CLI: `keys create` prints ID KEY, `keys list` never shows a key, a
 * revoked key gets 401 at once (revoked by another process), `secrets` never print a value, and
 * `scenarios deploy` refuses a scenario reading an environment variable it may not.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { Production } from '../redis/production.js';
import { apiKeyId } from '../services/api-keys.js';
import { Processes } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';

const procs = new Processes();
const KEY_HEX = randomBytes(32).toString('hex');
let p: Production;
let app: FastifyInstance;
let cli: (args: string[], env?: Record<string, string>) => ReturnType<Processes['run']>;
beforeAll(async () => {
  p = await useProduction({ env: {} });
  app = await buildServer(p, { adminKey: 'admin-keys-test-key' });
  cli = (args, env = {}) => procs.run(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args], { env });
});
afterAll(async () => {
  await app.close();
  await p.close();
});
afterEach(async () => {
  await procs.killAll();
});

const get = (key: string, url = '/api/runs') => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

describe('keys', () => {
  it('create prints ID KEY, list never shows the key, revoke from another process is 401 at once', async () => {
    const created = await cli(['keys', 'create', '--tenant', 'acme']);
    expect(created.code).toBe(0);
    const [id, key] = created.stdout.trim().split(' ');
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(key).toMatch(/^fmk_/);
    expect((await get(key!)).statusCode).toBe(200);
    const list = await cli(['keys', 'list', '--tenant', 'acme', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([{ id, createdAt: expect.any(String), lastUsedAt: expect.any(String) }]);
    expect(list.stdout).not.toContain(key!);
    const revoked = await cli(['keys', 'revoke', id!]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked key ${id} of tenant acme\n` });
    const after = await get(key!);
    expect(after.statusCode).toBe(401);
    expect(after.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect(await cli(['keys', 'revoke', id!])).toMatchObject({ code: 2, stderr: `flowmeter: no key ${id}\n` });
  });

  it("the API lists and revokes the tenant's own keys only", async () => {
    const a1 = await p.keys.create('alpha');
    const a2 = await p.keys.create('alpha');
    const b = await p.keys.create('beta');
    const listed = (await get(a1, '/api/keys')).json() as { keys: Array<{ id: string }> };
    expect(listed.keys).toHaveLength(2);
    expect(JSON.stringify(listed)).not.toMatch(/fmk_/);
    const bId = ((await get(b, '/api/keys')).json() as { keys: Array<{ id: string }> }).keys[0]!.id;
    // Alpha cannot revoke beta's key: 404, and beta's key still works.
    const cross = await app.inject({ method: 'DELETE', url: `/api/keys/${bId}`, headers: { authorization: `Bearer ${a1}` } });
    expect(cross.statusCode).toBe(404);
    expect((await get(b)).statusCode).toBe(200);
    expect(listed.keys.map((k) => k.id).sort()).toEqual([apiKeyId(a1), apiKeyId(a2)].sort());
    const del = await app.inject({ method: 'DELETE', url: `/api/keys/${apiKeyId(a2)}`, headers: { authorization: `Bearer ${a1}` } });
    expect(del.statusCode).toBe(200);
    expect((await get(a1)).statusCode).toBe(200);
    expect((await get(a2)).statusCode).toBe(401);
  });
});

describe('CLI secrets and deploy', () => {
  it('secrets set/list/delete never print the value; Redis holds it encrypted', async () => {
    const env = { FLOWMETER_SECRETS_KEY: KEY_HEX };
    const value = 'cli-secret-value-Zz81';
    expect(await cli(['secrets', 'set', 'CRM', '--tenant', 'acme', '--value', value], env)).toMatchObject({
      code: 0,
      stdout: 'set secret CRM for tenant acme\n',
    });
    const list = await cli(['secrets', 'list', '--tenant', 'acme', '--json'], env);
    expect(JSON.parse(list.stdout)).toEqual([{ name: 'CRM', updatedAt: expect.any(String) }]);
    const raw = new Redis(redisUrl());
    try {
      expect(JSON.stringify(await raw.hgetall(p.redisKeys.secrets('acme')))).not.toContain(value);
    } finally {
      raw.disconnect();
    }
    const noKey = await cli(['secrets', 'set', 'CRM', '--tenant', 'acme', '--value', value]);
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toMatch(/^flowmeter: FLOWMETER_SECRETS_KEY must be 64 hex characters[^\n]*\n$/);
    expect(await cli(['secrets', 'delete', 'CRM', '--tenant', 'acme'], env)).toMatchObject({ code: 0 });
    expect(await cli(['secrets', 'delete', 'CRM', '--tenant', 'acme'], env)).toMatchObject({ code: 2, stderr: 'flowmeter: no secret CRM for tenant acme\n' });
  });

  it('scenarios deploy naming ${env:FLOWMETER_ADMIN_KEY} exits 2 with one line naming it; nothing stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fm-sec-'));
    const file = join(dir, 'leak.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'leak',
        start: 'c',
        connections: { x: { baseUrl: 'https://example.invalid', headers: { 'X-Leak': '${env:FLOWMETER_ADMIN_KEY}' } } },
        nodes: [{ id: 'c', type: 'connector', connection: 'x', url: '/' }],
      }),
    );
    const r = await cli(['scenarios', 'deploy', file, '--tenant', 'acme'], { FLOWMETER_ADMIN_KEY: 'adm' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^flowmeter: [^\n]*leak\.json: the scenario reads \$\{env:FLOWMETER_ADMIN_KEY\}[^\n]*FLOWMETER_TENANT_ENV\)\n$/);
    expect(await p.scenarios.get('acme', 'leak')).toBeNull();
    const allowed = await cli(['scenarios', 'deploy', file, '--tenant', 'acme'], { FLOWMETER_TENANT_ENV: 'FLOWMETER_ADMIN_KEY' });
    expect(allowed.code).toBe(0);
  });
});
