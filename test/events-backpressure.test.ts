/**
 * An event stream whose client does not read (SPEC §10: nothing one tenant does may crash the
 * shared server). `GET /api/events` writes each event as it comes; a client that stops reading
 * made the server buffer every later event in memory, without bound: one tenant's key, one
 * socket and a few large runs could grow the API server until it died. A stream holding more
 * than MAX_UNSENT_BYTES unsent is now closed (EventSource reconnects by itself).
 */
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_STREAMS_PER_TENANT, MAX_UNSENT_BYTES } from '../api/events.js';
import { buildServer } from '../api/server.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { fn, scenarioOf } from './helpers/run.js';

describe('event streams: a client that does not read', () => {
  let platform: Embedded;
  let app: Awaited<ReturnType<typeof buildServer>>;
  let key: string;
  beforeAll(async () => {
    platform = createEmbedded();
    await platform.ledger.setQuota('acme', { monthlyActions: 1e6 });
    app = await buildServer(platform, { adminKey: 'admin-key-0123456789abcdef' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    key = await platform.keys.create('acme');
  });
  afterAll(async () => {
    await app.close();
    await platform.close();
  });

  it('is closed once it holds more than MAX_UNSENT_BYTES unsent, instead of keeping every later event', async () => {
    const port = (app.server.address() as AddressInfo).port;
    const socket = connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(`GET /api/events?access_token=${key} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 100));
    socket.pause(); // reads nothing more: the kernel's buffers fill, then the server's
    let closed = false;
    let received = 0;
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await platform.scenarios.deploy(
      'acme',
      scenarioOf({ id: 'big', start: 'each', nodes: [{ id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f' }, fn('f', 'return msg;')] }),
    );
    // 30 runs of 60 tasks with 12 KB in and out: ~2 MB of task events each, ~65 MB in all.
    const big = 'x'.repeat(12 * 1024);
    for (let i = 0; i < 30; i++) {
      const { runId } = await platform.trigger('acme', 'big', { items: Array.from({ length: 60 }, () => big) }, { type: 'manual' });
      for (let t = 0; (await platform.runs.get('acme', runId))?.status !== 'succeeded'; t++) {
        if (t > 500) throw new Error(`run ${runId} did not succeed`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    socket.resume();
    for (let t = 0; !closed && t < 100; t++) await new Promise((r) => setTimeout(r, 20));
    // The old server had kept all of it for this client, and sent it all now (~65 MB, stream open).
    expect(closed).toBe(true);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(MAX_UNSENT_BYTES + 24 * 1024 * 1024); // the cap and the kernel's buffers
    socket.destroy();
  });

  it('a tenant has at most MAX_STREAMS_PER_TENANT streams open on a server; another tenant and the admin key are not held by them', async () => {
    // Before, one key could open any number: 300 streams that never read took the server to 3.5 GB.
    const port = (app.server.address() as AddressInfo).port;
    const open = (k: string, q = '') => fetch(`http://127.0.0.1:${port}/api/events?access_token=${k}${q}`);
    const mine = await Promise.all(Array.from({ length: MAX_STREAMS_PER_TENANT }, () => open(key)));
    expect(mine.map((r) => r.status)).toEqual(mine.map(() => 200));
    const over = await open(key);
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('5');
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_REQUESTS');
    await platform.ledger.setQuota('other', { monthlyActions: 10 });
    const theirs = await open(await platform.keys.create('other'));
    expect(theirs.status).toBe(200);
    const admin = await open('admin-key-0123456789abcdef', '&tenant=acme');
    expect(admin.status).toBe(200);
    // A stream closed gives its place back.
    await mine.pop()!.body!.cancel();
    let again = await open(key);
    for (let t = 0; again.status === 429 && t < 50; t++) {
      await new Promise((r) => setTimeout(r, 50));
      again = await open(key);
    }
    expect(again.status).toBe(200);
    for (const r of [...mine, theirs, admin, again]) await r.body!.cancel();
  });
});
