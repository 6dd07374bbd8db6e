/**
 * SPEC §9 egress and redirects: a Connector in production never reaches loopback, private,
 * link-local or unspecified addresses (checked after DNS, on every hop) unless
 * FLOWMETER_EGRESS_ALLOW opens them, and a redirect to another origin carries no credential.
 */

import type { LookupFunction } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { triggerAndWait } from '../api/routes-common.js';
import { errorCode } from '../core/errors.js';
import type { Message } from '../core/types.js';
import { createEmbedded } from '../engine/embedded.js';
import { connectorNode } from '../nodes/connector.js';
import type { NodeContext, NodeServices, ScenarioLike } from '../nodes/define.js';
import { isDeniedAddress, parseEgressAllow, policedFetch } from '../services/egress.js';
import { type Listener, listen } from './helpers/listener.js';
import { useProduction } from './helpers/production.js';
import { scenarioOf } from './helpers/run.js';

const KEY = 'k-super-secret-api-key-42';

function ctxFor(fields: Record<string, unknown>, o: { fetch: typeof fetch; connections?: ScenarioLike['connections']; env?: Record<string, string> }) {
  const node = { ...connectorNode.config.parse({ retry: { attempts: 2, backoffMs: 0 }, ...fields }), id: 'call', type: 'connector' };
  const env = o.env ?? { K: KEY };
  const services: NodeServices = {
    fetch: o.fetch,
    sleep: async () => undefined,
    env: (n) => env[n],
    mail: { send: async () => null },
    sandbox: {
      run: () => {
        throw new Error('no sandbox');
      },
    },
  };
  const ctx: NodeContext<typeof node> = {
    node,
    runId: 'r1',
    tenant: 't1',
    scenario: { id: 's1', connections: o.connections ?? {} },
    taskKey: '2',
    vars: {},
    setVar: () => {},
    log: () => {},
    secret: () => {},
    meter: () => {},
    services,
    scope: (msg: Message) => ({ msg, vars: {} }),
  };
  return ctx;
}

async function outcome(fields: Record<string, unknown>, o: Parameters<typeof ctxFor>[1]): Promise<{ code: string; message: string } | 'ok'> {
  try {
    await connectorNode.execute({ payload: {} }, ctxFor(fields, o));
    return 'ok';
  } catch (err) {
    return { code: errorCode(err), message: (err as Error).message };
  }
}

/** A lookup that answers from a table (a hostile DNS server), never asking the real one. */
const fakeDns =
  (table: Record<string, string | string[]>): LookupFunction =>
  (hostname, options, cb) => {
    const hit = table[hostname];
    if (!hit) return (cb as (e: Error) => void)(Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    const list = (Array.isArray(hit) ? hit : [hit]).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: typeof list) => void)(null, list);
    else cb(null, list[0]!.address, list[0]!.family);
  };

let sink: Listener;
let other: Listener;
beforeAll(async () => {
  sink = await listen();
  other = await listen();
});
afterAll(async () => {
  await sink.close();
  await other.close();
});
afterEach(() => {
  for (const l of [sink, other]) {
    l.requests.length = 0;
    l.connections = 0;
    l.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
  }
});

describe('address classes', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '100.100.100.200',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    'not-an-ip',
  ])('%s is denied', (ip) => {
    expect(isDeniedAddress(ip)).toBe(true);
  });
  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '192.169.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])('%s is public', (ip) => {
    expect(isDeniedAddress(ip)).toBe(false);
  });
  it('a bad FLOWMETER_EGRESS_ALLOW entry is one line naming it', () => {
    expect(() => parseEgressAllow('ok.example, 10.0.0.0/99')).toThrow(/FLOWMETER_EGRESS_ALLOW: "10.0.0.0\/99" is not a valid CIDR range/);
  });
});

describe('policed fetch', () => {
  it.each([
    ['127.0.0.1', (p: number) => `http://127.0.0.1:${p}/admin`],
    ['localhost', (p: number) => `http://localhost:${p}/admin`],
    ['decimal IPv4', (p: number) => `http://2130706433:${p}/admin`],
    ['hex short IPv4', (p: number) => `http://0x7f.1:${p}/admin`],
    ['short IPv4', (p: number) => `http://127.1:${p}/admin`],
    ['IPv6 loopback', (p: number) => `http://[::1]:${p}/admin`],
    ['IPv4-mapped IPv6', (p: number) => `http://[::ffff:127.0.0.1]:${p}/admin`],
    ['unspecified', (p: number) => `http://0.0.0.0:${p}/admin`],
  ])('a request to %s is refused with EGRESS_DENIED and nothing reaches the listener', async (_name, url) => {
    const f = policedFetch({ allow: '' });
    await expect(f(url(sink.port))).rejects.toMatchObject({ code: 'EGRESS_DENIED' });
    expect(sink.connections).toBe(0);
  });

  it('a host name whose DNS answer is private is refused inside the lookup: no connection', async () => {
    const f = policedFetch({ lookup: fakeDns({ 'evil.test': '127.0.0.1', 'meta.test': '169.254.169.254', 'mixed.test': ['8.8.8.8', '10.0.0.5'] }) });
    for (const host of ['evil.test', 'meta.test', 'mixed.test']) {
      await expect(f(`http://${host}:${sink.port}/`)).rejects.toMatchObject({ code: 'EGRESS_DENIED', message: expect.stringContaining(host) });
    }
    expect(sink.connections).toBe(0);
  });

  it('FLOWMETER_EGRESS_ALLOW opens host:port, a CIDR range or a host name', async () => {
    const dns = fakeDns({ 'peer.test': '127.0.0.1' });
    for (const allow of [`127.0.0.1:${sink.port}`, '127.0.0.0/8', 'peer.test']) {
      const url = allow === 'peer.test' ? `http://peer.test:${sink.port}/x` : `${sink.base}/x`;
      const res = await policedFetch({ allow, lookup: dns })(url);
      expect(res.status).toBe(200);
    }
    expect(sink.requests).toHaveLength(3);
    // host:port opens that port only.
    await expect(policedFetch({ allow: `127.0.0.1:${sink.port}` })(`${other.base}/x`)).rejects.toMatchObject({ code: 'EGRESS_DENIED' });
    expect(other.connections).toBe(0);
  });
});

describe('Connector with the policed fetch', () => {
  it('is refused at once (no retry, one line naming the host) and the internal service receives nothing', async () => {
    const r = await outcome({ url: `${sink.base}/api/quota`, method: 'PUT', body: { monthlyActions: 1e9 } }, { fetch: policedFetch() });
    expect(r).toMatchObject({ code: 'EGRESS_DENIED', message: expect.stringContaining('127.0.0.1') });
    expect((r as { message: string }).message).not.toContain('\n');
    expect(sink.connections).toBe(0);
  });

  it('each redirect hop is checked: an allowed peer redirecting to a denied one fails EGRESS_DENIED', async () => {
    sink.handle = (_req, res) => {
      res.writeHead(302, { location: `${other.base}/internal` });
      res.end();
    };
    const r = await outcome({ url: `${sink.base}/start` }, { fetch: policedFetch({ allow: `127.0.0.1:${sink.port}` }) });
    expect(r).toMatchObject({ code: 'EGRESS_DENIED' });
    expect(sink.requests).toHaveLength(1);
    expect(other.connections).toBe(0);
  });

  for (const [mode, fetcher] of [
    ['embedded (global fetch)', () => globalThis.fetch],
    ['production (policed)', () => policedFetch({ allow: '127.0.0.1' })],
  ] as const) {
    it(`${mode}: a redirect to another origin drops Authorization, the connection's auth header and Cookie`, async () => {
      sink.handle = (req, res) => {
        res.writeHead(req.url === '/start' ? 307 : 302, { location: req.url === '/start' ? '/same' : `${other.base}/land` });
        res.end();
      };
      const connections = {
        a: { baseUrl: sink.base, headers: { Authorization: 'Bearer ${env:K}' }, auth: { type: 'header' as const, name: 'X-Api-Key', value: '${env:K}' } },
      };
      const r = await outcome({ connection: 'a', url: '/start', headers: { Cookie: 'sid=s3cr3t-cookie' } }, { fetch: fetcher(), connections });
      expect(r).toBe('ok');
      // Same origin (307 to /same) keeps the credentials; the cross-origin hop drops them.
      expect(sink.requests.map((q) => q.url)).toEqual(['/start', '/same']);
      expect(sink.requests[1]!.headers['x-api-key']).toBe(KEY);
      expect(other.requests).toHaveLength(1);
      const landed = other.requests[0]!.headers;
      expect(landed['x-api-key']).toBeUndefined();
      expect(landed.authorization).toBeUndefined();
      expect(landed.cookie).toBeUndefined();
      expect(JSON.stringify(landed)).not.toContain(KEY);
      expect(landed['idempotency-key']).toBe('r1:2');
    });
  }

  it('a redirect loop ends as HTTP_NETWORK naming the limit', async () => {
    sink.handle = (_req, res) => {
      res.writeHead(302, { location: '/again' });
      res.end();
    };
    const r = await outcome({ url: `${sink.base}/again`, retry: { attempts: 1, backoffMs: 0 } }, { fetch: globalThis.fetch });
    expect(r).toMatchObject({ code: 'HTTP_NETWORK', message: expect.stringContaining('redirected more than 10 times') });
  });
});

describe('production runs', () => {
  const stealer = (url: string) =>
    scenarioOf({
      id: 'steal',
      start: 'call',
      nodes: [{ id: 'call', type: 'connector', method: 'PUT', url, body: { monthlyActions: 1000000000 }, retry: { attempts: 3, backoffMs: 0 } }],
    });

  it('a Connector to 127.0.0.1:<serve port> without an allow entry fails EGRESS_DENIED; the listener receives nothing', async () => {
    const p = await useProduction({ env: {} });
    p.startWorker({ concurrency: 1 });
    try {
      await p.ledger.setQuota('acme', { monthlyActions: 100 });
      await p.scenarios.deploy('acme', stealer(`${sink.base}/api/quota?tenant=acme`));
      const run = await triggerAndWait(p, 'acme', 'steal', null, { type: 'manual' }, 20_000);
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ code: 'EGRESS_DENIED' });
      expect(sink.connections).toBe(0);
    } finally {
      await p.close();
    }
  });

  it("embedded run allows loopback destinations (a builder's own machine)", async () => {
    const e = createEmbedded({ env: {} });
    try {
      const run = await e.run(stealer(`${sink.base}/local`), null);
      expect(run.status).toBe('succeeded');
      expect(sink.requests).toHaveLength(1);
    } finally {
      await e.close();
    }
  });
});
