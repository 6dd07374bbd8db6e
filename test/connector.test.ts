import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errorCode } from '../core/errors.js';
import { Redactor, resolveEnvRefs } from '../core/redact.js';
import type { Message } from '../core/types.js';
import { connectorNode, joinUrl, parseRetryAfter, safeUrl } from '../nodes/connector.js';
import type { MeterName, NodeContext, NodeServices, ScenarioLike } from '../nodes/define.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let base: string;
let handler: Handler;
let seen: Seen[];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen = [];
  handler = (_req, _body, res) => json(res, 200, { ok: true });
});

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

const TOKEN = 'tok-very-secret-123';

/** A NodeContext built by hand, recording secrets, meters and requested sleeps. */
function makeCtx(fields: Record<string, unknown>, opts: { env?: Record<string, string>; connections?: ScenarioLike['connections'] } = {}) {
  const node = { ...connectorNode.config.parse(fields), id: 'call', type: 'connector' };
  const env = opts.env ?? { API_TOKEN: TOKEN };
  const secrets: string[] = [];
  const meters: Array<[MeterName, number]> = [];
  const sleeps: number[] = [];
  const services: NodeServices = {
    fetch: globalThis.fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    env: (n) => env[n],
    mail: { send: async () => null },
    sandbox: {
      run: () => {
        throw new Error('no sandbox in connector tests');
      },
    },
  };
  const ctx: NodeContext<typeof node> = {
    node,
    runId: 'run-1',
    tenant: 't1',
    scenario: { id: 's1', connections: opts.connections ?? { api: { baseUrl: `${base}/api/`, auth: { type: 'bearer', token: '${env:API_TOKEN}' } } } },
    taskKey: 'task-7',
    vars: {},
    setVar: () => {},
    log: () => {},
    secret: (v) => secrets.push(v),
    meter: (name, n) => meters.push([name, n]),
    services,
    scope: (msg: Message) => ({ msg, vars: {} }),
  };
  const total = (name: MeterName) => meters.filter(([n]) => n === name).reduce((a, [, v]) => a + v, 0);
  return { ctx, secrets, meters, sleeps, total };
}

async function run(fields: Record<string, unknown>, input: Message, opts?: Parameters<typeof makeCtx>[1]) {
  const c = makeCtx(fields, opts);
  const result = await connectorNode.execute(input, c.ctx);
  if (result.kind !== 'emit') throw new Error('expected emit');
  return { ...c, out: result.messages[0]! };
}

async function fail(fields: Record<string, unknown>, input: Message = { payload: {} }, opts?: Parameters<typeof makeCtx>[1]) {
  const c = makeCtx(fields, opts);
  const err = await Promise.resolve(connectorNode.execute(input, c.ctx)).then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as Error & { code: string; status?: number },
  );
  return { ...c, err };
}

describe('connector node', () => {
  it('GETs through the connection baseUrl with a bearer token from env', async () => {
    handler = (_req, _body, res) => json(res, 200, { name: 'Ada', score: 70 }, { 'X-Custom': 'yes' });
    const input = { payload: { email: 'ada@example.com' } };
    const before = structuredClone(input);
    const { out, secrets } = await run({ connection: 'api', url: '/people/{{msg.payload.email}}' }, input);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.url).toBe('/api/people/ada@example.com');
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(seen[0]!.headers['idempotency-key']).toBe('run-1:task-7');
    expect(out.payload).toEqual({ name: 'Ada', score: 70 });
    expect(out.http).toMatchObject({ status: 200, headers: { 'content-type': 'application/json', 'x-custom': 'yes' } });
    expect(secrets).toContain(TOKEN);
    expect(input).toEqual(before);
  });

  it("reports the response body's size with its result, for its wave to count (engine/kept.ts)", async () => {
    const body = JSON.stringify({ rows: 'x'.repeat(100_000) });
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    };
    const c = makeCtx({ connection: 'api', method: 'GET', url: 'rows' });
    const result = await connectorNode.execute({ payload: {} }, c.ctx);
    expect(result).toMatchObject({ kind: 'emit', chars: Buffer.byteLength(body) });
  });

  it('renders query, headers and a JSON body', async () => {
    handler = (req, body, res) => json(res, 201, { got: JSON.parse(body), ct: req.headers['content-type'] });
    const { out } = await run(
      {
        connection: 'api',
        method: 'POST',
        url: 'people',
        query: { q: '{{msg.payload.name}} x&y', limit: '10' },
        headers: { 'X-Trace': 'id-{{msg.payload.id}}' },
        body: { name: '{{msg.payload.name}}', n: '{{msg.payload.n}}', tags: ['a', '{{msg.payload.id}}'] },
      },
      { payload: { name: 'Ada', id: 42, n: 3 } },
    );
    const u = new URL(seen[0]!.url, base);
    expect(u.pathname).toBe('/api/people');
    expect(u.searchParams.get('q')).toBe('Ada x&y');
    expect(u.searchParams.get('limit')).toBe('10');
    expect(seen[0]!.headers['x-trace']).toBe('id-42');
    expect(out.payload).toEqual({ got: { name: 'Ada', n: 3, tags: ['a', 42] }, ct: 'application/json' });
    expect((out.http as { status: number }).status).toBe(201);
  });

  it('sends a string body as is, and returns a text response as text', async () => {
    handler = (req, body, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${req.headers['content-type']}|${body}`);
    };
    const { out } = await run({ url: `${base}/echo`, method: 'PUT', body: 'hello {{msg.payload.name}}' }, { payload: { name: 'Ada' } });
    expect(out.payload).toBe('text/plain;charset=UTF-8|hello Ada');
  });

  it('retries a 503 and sends the same Idempotency-Key on every attempt', async () => {
    let n = 0;
    handler = (_req, _body, res) => (++n === 1 ? json(res, 503, { busy: true }) : json(res, 200, { ok: n }));
    const { out, sleeps, total } = await run({ connection: 'api', method: 'POST', url: '/orders', body: { a: 1 } }, { payload: {} });
    expect(seen).toHaveLength(2);
    expect(seen[0]!.headers['idempotency-key']).toBe('run-1:task-7');
    expect(seen[1]!.headers['idempotency-key']).toBe(seen[0]!.headers['idempotency-key']);
    expect(sleeps).toEqual([500]);
    expect(out.payload).toEqual({ ok: 2 });
    expect(total('connectorRequests')).toBe(2);
  });

  it('honours Retry-After on a 429 (capped at 60 s) and doubles the backoff otherwise', async () => {
    let n = 0;
    handler = (_req, _body, res) => (++n === 1 ? json(res, 429, {}, { 'Retry-After': '1' }) : json(res, 200, { n }));
    const a = await run({ connection: 'api', url: '/x' }, { payload: {} });
    expect(a.sleeps).toEqual([1000]);
    expect(a.out.payload).toEqual({ n: 2 });

    seen = [];
    handler = (_req, _body, res) => json(res, 429, {}, { 'Retry-After': '3600' });
    const b = await fail({ connection: 'api', url: '/x', retry: { attempts: 2 } });
    expect(b.sleeps).toEqual([60_000]);
    expect(b.err.code).toBe('HTTP_ERROR');
    expect(b.err.status).toBe(429);

    seen = [];
    handler = (_req, _body, res) => json(res, 500, {});
    const c = await fail({ connection: 'api', url: '/x', retry: { attempts: 3, backoffMs: 100 } });
    expect(seen).toHaveLength(3);
    expect(c.sleeps).toEqual([100, 200]);
    expect(c.err.status).toBe(500);
  });

  it('fails a final 404 with HTTP_ERROR, the status, and no secret or query in the message', async () => {
    handler = (_req, _body, res) => json(res, 404, { error: 'nope' });
    const env = { API_TOKEN: TOKEN, PATH_KEY: 'path-secret-xyz' };
    const connections = { api: { baseUrl: `${base}/k/\${env:PATH_KEY}`, auth: { type: 'bearer' as const, token: '${env:API_TOKEN}' } } };
    const { err, secrets } = await fail({ connection: 'api', url: '/missing', query: { apiKey: 'query-secret-456' } }, { payload: {} }, { env, connections });
    expect(seen).toHaveLength(1); // 404 is not retried
    expect(seen[0]!.url).toBe('/k/path-secret-xyz/missing?apiKey=query-secret-456');
    expect(errorCode(err)).toBe('HTTP_ERROR');
    expect(err.status).toBe(404);
    expect(err.message).toBe(`GET ${base}/k/[redacted]/missing → 404 Not Found`);
    for (const s of [TOKEN, 'path-secret-xyz', 'query-secret-456']) expect(err.message).not.toContain(s);
    expect(secrets).toEqual(expect.arrayContaining([TOKEN, 'path-secret-xyz']));
  });

  it('fails with HTTP_TIMEOUT when every attempt times out', async () => {
    handler = () => {}; // never answers
    const { err, sleeps, total } = await fail({ url: `${base}/slow?token=abc123`, timeoutMs: 100, retry: { attempts: 2, backoffMs: 10 } });
    expect(err.code).toBe('HTTP_TIMEOUT');
    expect(err.message).toContain(`GET ${base}/slow timed out after 100 ms`);
    expect(err.message).not.toContain('abc123');
    expect(seen).toHaveLength(2);
    expect(sleeps).toEqual([10]);
    expect(total('connectorRequests')).toBe(2);
  });

  it('fails with HTTP_NETWORK when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { err, sleeps, total } = await fail({ url: `http://127.0.0.1:${port}/x`, retry: { attempts: 2, backoffMs: 5 } });
    expect(err.code).toBe('HTTP_NETWORK');
    expect(err.message).toContain('ECONNREFUSED');
    expect(sleeps).toEqual([5]);
    expect(total('connectorRequests')).toBe(2);
  });

  it('stops reading a response body past 10 MB: HTTP_ERROR with the status, no retry, the connection let go', async () => {
    // A server that streams without end (no Content-Length): the old Connector buffered it
    // until its timeout, as much memory as the peer could send.
    let sent = 0;
    let closed!: Promise<void>;
    handler = (_req, _body, res) => {
      closed = new Promise((r) => res.on('close', () => r()));
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && sent < 1024 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
    };
    const { err, total } = await fail({ connection: 'api', url: '/stream', timeoutMs: 20_000 });
    expect(err.code).toBe('HTTP_ERROR');
    expect(err.status).toBe(200);
    expect(err.message).toBe(`GET ${base}/api/stream → 200: the response body is larger than 10,485,760 bytes; it was not read`);
    expect(seen).toHaveLength(1);
    expect(total('connectorRequests')).toBe(1);
    expect(total('connectorBytes')).toBeGreaterThan(10 * 1024 * 1024);
    await closed;
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a response whose Content-Length is over 10 MB before reading it', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) });
      res.write('[');
    };
    const { err, total } = await fail({ connection: 'api', url: '/big', timeoutMs: 20_000 });
    expect([err.code, err.status]).toEqual(['HTTP_ERROR', 200]);
    expect(err.message).toMatch(/→ 200: the response body is larger than 10,485,760 bytes; it was not read$/);
    expect(total('connectorBytes')).toBe(0);
  });

  it('writes the response to `into` and keeps the payload', async () => {
    handler = (_req, _body, res) => json(res, 200, [1, 2]);
    const { out } = await run({ url: `${base}/list`, into: 'msg.result.items' }, { payload: { keep: true }, result: { other: 1 } });
    expect(out.payload).toEqual({ keep: true });
    expect(out.result).toEqual({ other: 1, items: [1, 2] });
  });

  it('counts a request and its request + response body bytes per attempt', async () => {
    let n = 0;
    handler = (_req, _body, res) => {
      res.writeHead(++n === 1 ? 502 : 200, { 'content-type': 'text/plain' });
      res.end(n === 1 ? 'bad' : 'fine!');
    };
    const { total, out } = await run({ url: `${base}/m`, method: 'POST', body: { é: 'ü' } }, { payload: {} });
    const reqBytes = Buffer.byteLength(JSON.stringify({ é: 'ü' }));
    expect(total('connectorRequests')).toBe(2);
    expect(total('connectorBytes')).toBe(reqBytes + 3 + reqBytes + 5);
    expect(out.payload).toBe('fine!');
  });

  it('supports basic and header auth and registers their secrets', async () => {
    const env = { U: 'user', P: 'pass-word-1', K: 'key-value-2' };
    const basic = await run(
      { connection: 'b', url: '/a' },
      { payload: {} },
      {
        env,
        connections: { b: { baseUrl: base, headers: { 'X-Env': 'e-${env:K}' }, auth: { type: 'basic', username: '${env:U}', password: '${env:P}' } } },
      },
    );
    const b64 = Buffer.from('user:pass-word-1').toString('base64');
    expect(seen[0]!.headers.authorization).toBe(`Basic ${b64}`);
    expect(seen[0]!.headers['x-env']).toBe('e-key-value-2');
    expect(basic.secrets).toEqual(expect.arrayContaining(['pass-word-1', 'key-value-2', b64]));
    const header = await run(
      { connection: 'h', url: 'a' },
      { payload: {} },
      {
        env,
        connections: { h: { baseUrl: `${base}/`, auth: { type: 'header', name: 'X-Api-Key', value: '${env:K}' } } },
      },
    );
    expect(seen[1]!.url).toBe('/a');
    expect(seen[1]!.headers['x-api-key']).toBe('key-value-2');
    expect(header.secrets).toContain('key-value-2');
  });

  it('fails with ENV_MISSING, naming the variable, before sending anything', async () => {
    const { err } = await fail({ connection: 'api', url: '/x' }, { payload: {} }, { env: {} });
    expect(err.code).toBe('ENV_MISSING');
    expect(err.message).toBe('environment variable API_TOKEN is not set');
    expect(seen).toHaveLength(0);
  });

  it('reports its references', () => {
    const n = connectorNode.config.parse({ connection: 'api', url: '/x', next: 'after' });
    expect(connectorNode.refs(n)).toEqual([
      { path: 'connection', kind: 'connection', name: 'api' },
      { path: 'next', kind: 'node', name: 'after' },
    ]);
    expect(connectorNode.refs(connectorNode.config.parse({ url: 'https://x.test/' }))).toEqual([]);
    expect(n).toMatchObject({ method: 'GET', timeoutMs: 10_000, retry: { attempts: 3, backoffMs: 500 }, into: 'msg.payload' });
  });
});

describe('connector helpers and secrets', () => {
  it('joins, strips and parses', () => {
    expect(joinUrl('http://h/api/', '/x')).toBe('http://h/api/x');
    expect(joinUrl('http://h/api', 'x')).toBe('http://h/api/x');
    expect(safeUrl('https://u:p@h.test/a/b?token=1#f')).toBe('https://h.test/a/b');
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('resolves ${env:NAME} references and redacts their values', () => {
    const found: string[] = [];
    const env = (n: string) => ({ A: 'alpha-1', B: 'bb' })[n];
    expect(resolveEnvRefs('x ${env:A} y ${env:B} ${env:1bad}', env, (v) => found.push(v))).toBe('x alpha-1 y bb ${env:1bad}');
    expect(found).toEqual(['alpha-1', 'bb']);
    expect(() => resolveEnvRefs('${env:NOPE}', env, () => {})).toThrow(expect.objectContaining({ code: 'ENV_MISSING' }));
    const r = new Redactor();
    for (const s of found) r.add(s);
    r.add('alpha-1-longer');
    expect(r.size).toBe(2); // 'bb' is too short to redact
    expect(r.redact('alpha-1 and alpha-1-longer, bb')).toBe('[redacted] and [redacted], bb');
    expect(r.redactDeep({ a: ['alpha-1'], n: 1, k: { 'alpha-1': null } })).toEqual({ a: ['[redacted]'], n: 1, k: { '[redacted]': null } });
  });
});

describe('connection credentials stay on their host', () => {
  it('an absolute URL on another host is refused before any request when the connection has a baseUrl', async () => {
    let hits = 0;
    const other = createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as { port: number }).port;
    const { ctx } = makeCtx({ connection: 'api', url: `http://localhost:${port}/steal` });
    const err = await Promise.resolve(connectorNode.execute({ payload: null }, ctx)).then(
      () => null,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('INVALID_INPUT');
    expect(err?.message).toMatch(/not on connection api's host/);
    expect(hits).toBe(0);
    other.close();
  });
});
