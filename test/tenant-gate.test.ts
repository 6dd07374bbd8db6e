/**
 * A tenant's fair share of a server process (api/tenant-gate.ts). The API and the webhooks run
 * on one event loop: a request waits, at each of its awaits, for the work queued before it. One
 * tenant reading 1,000-task pages on 64 connections made another tenant's trigger take 5 s
 * (measured); now at most FLOWMETER_TENANT_REQUESTS (default 4) requests of a tenant are handled
 * at once per process, its others wait in order, and another tenant's request goes at once.
 *
 * The places are held here with requests whose bodies have not all arrived (a place is taken
 * before the body is read), so the test needs no timing of work.
 */
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT_REQUESTS, tenantRequestsSetting } from '../api/limits.js';
import { buildServer } from '../api/server.js';
import { TenantGate } from '../api/tenant-gate.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { fn, scenarioOf } from './helpers/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('TenantGate', () => {
  it('lets `inProgress` requests of a tenant in, queues the next in order, refuses past `waiting`', async () => {
    const gate = new TenantGate({ inProgress: 2, waiting: 2 });
    const r1 = await gate.enter('a');
    const r2 = await gate.enter('a');
    const order: number[] = [];
    const entered = (n: number) => (release: () => void) => {
      order.push(n);
      return release;
    };
    const w3 = gate.enter('a').then(entered(3));
    const w4 = gate.enter('a').then(entered(4));
    await expect(gate.enter('a')).rejects.toMatchObject({ code: 'TOO_MANY_REQUESTS' });
    expect(gate.load('a')).toEqual({ active: 2, waiting: 2 });
    // Another tenant is not behind a's.
    const b = await gate.enter('b');
    expect(gate.load('b')).toEqual({ active: 1, waiting: 0 });
    r1();
    r1(); // a second release gives nothing back again
    const r3 = await w3;
    expect(order).toEqual([3]);
    expect(gate.load('a')).toEqual({ active: 2, waiting: 1 });
    r2();
    const r4 = await w4;
    expect(order).toEqual([3, 4]);
    for (const r of [r3, r4, b]) r();
    expect(gate.load('a')).toEqual({ active: 0, waiting: 0 });
    expect(gate.load('b')).toEqual({ active: 0, waiting: 0 });
  });

  it('reads FLOWMETER_TENANT_REQUESTS, refusing a bad value in one line', () => {
    expect(tenantRequestsSetting({})).toBe(DEFAULT_TENANT_REQUESTS);
    expect(tenantRequestsSetting({ FLOWMETER_TENANT_REQUESTS: '9' })).toBe(9);
    for (const bad of ['0', '-1', '1.5', 'many'])
      expect(() => tenantRequestsSetting({ FLOWMETER_TENANT_REQUESTS: bad })).toThrow(/^FLOWMETER_TENANT_REQUESTS must be a whole number/);
  });
});

describe('a server holds each tenant to its share of requests', () => {
  let platform: Embedded;
  let app: Awaited<ReturnType<typeof buildServer>>;
  let port: number;
  const keys: Record<string, string> = {};
  const open: Socket[] = [];
  beforeAll(async () => {
    platform = createEmbedded();
    app = await buildServer(platform, { adminKey: 'admin-key-0123456789abcdef', tenantRequests: 2 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    for (const t of ['big', 'small']) {
      await platform.ledger.setQuota(t, { monthlyActions: 1e6 });
      keys[t] = await platform.keys.create(t);
      await platform.scenarios.deploy(t, scenarioOf({ id: 'hook', start: 'f', trigger: { type: 'webhook' }, nodes: [fn('f', 'return msg;')] }));
      await platform.scenarios.enable(t, 'hook', undefined);
    }
  });
  afterAll(async () => {
    for (const s of open) s.destroy();
    await app.close();
    await platform.close();
  });

  /** A request whose body stops half way: it holds its place until `finish()`. */
  async function stalled(path: string, key?: string): Promise<{ finish(): void; answer: Promise<string> }> {
    const socket = connect(port, '127.0.0.1');
    open.push(socket);
    await new Promise((r) => socket.once('connect', r));
    let text = '';
    const answer = new Promise<string>((resolve) => {
      socket.on('data', (c: Buffer) => {
        text += c.toString();
        if (/\r\n\r\n[\s\S]*\}/.test(text)) resolve(text);
      });
      socket.on('close', () => resolve(text));
    });
    socket.on('error', () => undefined);
    const body = '{"payload":{"n":1}}';
    const auth = key ? `Authorization: Bearer ${key}\r\n` : '';
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    return { finish: () => socket.write(body.slice(5)), answer };
  }

  const api = (tenant: string, path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${keys[tenant]}`, 'content-type': 'application/json', ...init.headers },
    });

  it("a tenant's requests past its share wait; another tenant's go at once; then the waiting ones are answered", async () => {
    const held = [await stalled('/api/scenarios/hook/trigger', keys.big), await stalled('/hooks/big/hook')];
    await sleep(100);
    // big's third request (API) waits for a place; small's request is answered meanwhile.
    let third: Response | null = null;
    const thirdDone = api('big', '/api/runs').then((r) => (third = r));
    const t0 = performance.now();
    const small = await api('small', '/api/scenarios/hook/trigger', { method: 'POST', body: '{"payload":{}}' });
    expect(small.status, await small.clone().text()).toBe(202);
    const hook = await fetch(`http://127.0.0.1:${port}/hooks/small/hook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(hook.status).toBe(202);
    expect(performance.now() - t0).toBeLessThan(5000);
    await sleep(300);
    // On a server without shares it was answered long ago (a list of runs takes milliseconds).
    expect(third).toBeNull();
    for (const h of held) h.finish();
    for (const h of held) expect(await h.answer).toMatch(/^HTTP\/1\.1 202/);
    await thirdDone;
    expect(third!.status).toBe(200);
  });

  it('gives places back after errors, event streams and ?wait=true, so none is lost', async () => {
    // Errors of every kind: unknown run, bad body, unknown webhook, malformed JSON.
    for (let i = 0; i < 5; i++) {
      expect((await api('big', '/api/runs/run_nope')).status).toBe(404);
      expect((await api('big', '/api/scenarios/hook/trigger', { method: 'POST', body: '{"nope":1}' })).status).toBe(400);
      expect((await fetch(`http://127.0.0.1:${port}/hooks/big/nope`, { method: 'POST', body: '{}' })).status).toBe(404);
      expect((await api('big', '/api/scenarios/hook/trigger', { method: 'POST', body: '{' })).status).toBe(400);
    }
    // Three event streams stay open, and a wait=true trigger waits for its run.
    const streams = await Promise.all([0, 1, 2].map(() => api('big', '/api/events')));
    for (const s of streams) expect(s.status).toBe(200);
    const waited = await api('big', '/api/scenarios/hook/trigger?wait=true', { method: 'POST', body: '{"payload":{}}' });
    expect(waited.status).toBe(200);
    // Both places are free: two requests go together.
    const [a, b] = await Promise.all([api('big', '/api/runs'), api('big', '/api/scenarios')]);
    expect([a.status, b.status]).toEqual([200, 200]);
    for (const s of streams) await s.body?.cancel();
  });

  it('gives a place back when its client goes away, also while the request waited for one', async () => {
    const sockets = open.length;
    await stalled('/api/scenarios/hook/trigger', keys.big);
    await stalled('/hooks/big/hook');
    await stalled('/api/scenarios/hook/trigger', keys.big); // waits for a place
    await sleep(100);
    for (const s of open.slice(sockets)) s.destroy();
    await sleep(200);
    // Had a place been lost, these would wait for ever (a tenant with flaky clients locked out).
    const [a, b] = await Promise.all([api('big', '/api/runs'), api('big', '/api/scenarios')]);
    expect([a.status, b.status]).toEqual([200, 200]);
  });

  it("the admin key's requests are not held behind a tenant's", async () => {
    const held = [await stalled('/api/scenarios/hook/trigger', keys.big), await stalled('/api/scenarios/hook/trigger', keys.big)];
    await sleep(100);
    const r = await fetch(`http://127.0.0.1:${port}/api/runs?tenant=big`, { headers: { authorization: 'Bearer admin-key-0123456789abcdef' } });
    expect(r.status).toBe(200);
    for (const h of held) h.finish();
    for (const h of held) expect(await h.answer).toMatch(/^HTTP\/1\.1 202/);
  });
});
