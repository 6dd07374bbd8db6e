/**
 * A real HTTP peer for tests: a `node:http` server on 127.0.0.1 (port 0) that plays external
 * APIs. Routes are `METHOD /path/:param`; every request is recorded (headers, query, parsed
 * body) so a test can assert what the engine sent.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PeerRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON when it is JSON, else the raw text ('' when empty). */
  body: unknown;
  raw: string;
  /** Values of the route's `:name` segments. */
  params: Record<string, string>;
}

export interface PeerReply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

export type PeerHandler = (req: PeerRequest) => PeerReply | Promise<PeerReply>;

export interface Peer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  base: string;
  /** Every request received since the last `reset()`, in arrival order. */
  requests: PeerRequest[];
  on(method: string, pattern: string, handler: PeerHandler): void;
  /** Forgets the recorded requests (routes stay). */
  reset(): void;
  close(): Promise<void>;
}

interface Route {
  method: string;
  parts: string[];
  handler: PeerHandler;
}

function match(route: Route, method: string, path: string): Record<string, string> | null {
  if (route.method !== method) return null;
  const parts = path.split('/');
  if (parts.length !== route.parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const want = route.parts[i]!;
    if (want.startsWith(':')) params[want.slice(1)] = decodeURIComponent(parts[i]!);
    else if (want !== parts[i]) return null;
  }
  return params;
}

export async function startPeer(): Promise<Peer> {
  const routes: Route[] = [];
  const requests: PeerRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const url = new URL(req.url ?? '/', 'http://peer.invalid');
        let body: unknown = raw;
        try {
          if (raw !== '') body = JSON.parse(raw);
        } catch {
          body = raw;
        }
        const method = req.method ?? 'GET';
        const rec: PeerRequest = { method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body, raw, params: {} };
        requests.push(rec);
        let reply: PeerReply = { status: 404, json: { error: 'not_found', message: `no route ${method} ${url.pathname}` } };
        for (const r of routes) {
          const params = match(r, method, url.pathname);
          if (params) {
            rec.params = params;
            try {
              reply = await r.handler(rec);
            } catch (err) {
              reply = { status: 500, json: { error: 'peer_handler_failed', message: String(err) } };
            }
            break;
          }
        }
        const headers: Record<string, string> = { ...reply.headers };
        let out = '';
        if (reply.json !== undefined) {
          out = JSON.stringify(reply.json);
          headers['content-type'] ??= 'application/json; charset=utf-8';
        } else if (reply.text !== undefined) {
          out = reply.text;
          headers['content-type'] ??= 'text/plain; charset=utf-8';
        }
        res.sendDate = false;
        res.writeHead(reply.status ?? 200, headers);
        res.end(out);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    on(method, pattern, handler) {
      routes.push({ method: method.toUpperCase(), parts: pattern.split('/'), handler });
    },
    reset() {
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
