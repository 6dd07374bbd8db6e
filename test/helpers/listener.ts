/**
 * Loopback listeners for security tests: an HTTP server on 127.0.0.1 that records every TCP
 * connection and request it receives (an attacker's sink, or an internal service that must
 * receive nothing), with a handler per test.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Listener {
  port: number;
  base: string;
  /** TCP connections accepted (a denied destination must show 0). */
  connections: number;
  requests: Seen[];
  handle: (req: Seen, res: ServerResponse) => void;
  close(): Promise<void>;
}

export async function listen(handle?: Listener['handle']): Promise<Listener> {
  let server: Server;
  const l: Listener = {
    port: 0,
    base: '',
    connections: 0,
    requests: [],
    handle:
      handle ??
      ((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      l.requests.push(seen);
      l.handle(seen, res);
    });
  });
  server.on('connection', () => l.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  l.port = (server.address() as AddressInfo).port;
  l.base = `http://127.0.0.1:${l.port}`;
  return l;
}

/** Every string in a JSON value, joined: a secret must appear in none of them. */
export function everyString(value: unknown): string {
  return JSON.stringify(value ?? null);
}
