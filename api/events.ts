/**
 * `GET /api/events`: Server-Sent Events of the tenant's task and run events as they happen.
 *
 * Each event is one unnamed SSE message (so `EventSource.onmessage` gets it) whose `data` is
 * the platform's RunEvent as JSON: `{ "type": "tasks", runId, scenarioId, tasks: [...] }` or
 * `{ "type": "run", runId, scenarioId, status, actions }`. A comment line is sent every 15 s
 * so proxies keep the connection open. `?access_token=KEY` may replace the Authorization
 * header, since EventSource cannot set headers.
 */

import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { RunEvent } from '../engine/platform.js';
import { principalOf } from './auth.js';
import type { ApiContext } from './routes-common.js';
import { leaveGate } from './tenant-gate.js';

/** How often a heartbeat comment is written. */
export const HEARTBEAT_MS = 15_000;

/**
 * Most bytes a stream may hold unsent (its client reads slower than its events come, or not
 * at all): past it the stream is closed, and EventSource reconnects by itself. Without it a
 * client that stops reading makes the server keep every later event of the tenant in memory.
 */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** The open event streams of a server, ended when it closes. */
export class EventStreams {
  private readonly open = new Set<ServerResponse>();

  add(res: ServerResponse): void {
    this.open.add(res);
  }
  delete(res: ServerResponse): void {
    this.open.delete(res);
  }
  /** Ends every stream (the server is closing). */
  endAll(): void {
    for (const res of this.open) res.end();
    this.open.clear();
  }
}

export function registerEventsRoute(api: FastifyInstance, ctx: ApiContext, streams: EventStreams): void {
  api.get('/events', async (req, reply) => {
    const { tenant } = principalOf(req);
    const res = reply.raw;
    // Events that come before the headers are written wait here.
    let queue: RunEvent[] | null = [];
    const write = (e: RunEvent) => {
      if (res.destroyed || res.writableEnded) return;
      res.write(`data: ${JSON.stringify(e)}\n\n`);
      if (res.writableLength > MAX_UNSENT_BYTES) res.destroy(); // its buffers go now, not once the client reads
    };
    const stop = await ctx.platform.subscribe(tenant, (e) => (queue ? queue.push(e) : write(e)));

    leaveGate(req); // a stream holds its request open without working: its place goes back
    reply.hijack();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 3000\n: events of tenant ${tenant}\n\n`);
    for (const e of queue) write(e);
    queue = null;
    streams.add(res);

    const heartbeat = setInterval(() => res.destroyed || res.writableEnded || res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    let cleaned = false;
    const cleanup = () => {
      if (cleaned) return;
      cleaned = true;
      clearInterval(heartbeat);
      stop();
      streams.delete(res);
    };
    req.raw.on('close', cleanup);
    res.on('close', cleanup);
    res.on('error', cleanup);
  });
}
