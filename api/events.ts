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
import { type ApiContext, ApiError } from './routes-common.js';
import { leaveGate } from './tenant-gate.js';

/** How often a heartbeat comment is written. */
export const HEARTBEAT_MS = 15_000;

/**
 * Most bytes a stream may hold unsent (its client reads slower than its events come, or not
 * at all): past it the stream is closed, and EventSource reconnects by itself. Without it a
 * client that stops reading makes the server keep every later event of the tenant in memory.
 */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/**
 * Most event streams one tenant may have open on one server (the admin key's are not counted):
 * past it 429 TOO_MANY_REQUESTS. Each stream holds a socket and up to MAX_UNSENT_BYTES; one key
 * opening 300 streams that never read took the server to 3.5 GB while the tenant's runs went on.
 */
export const MAX_STREAMS_PER_TENANT = 16;

/**
 * Each event's SSE frame, encoded once whatever the number of streams writing it: their unsent
 * buffers share it (before, every stream encoded, and held, a copy of its own).
 */
const frames = new WeakMap<RunEvent, Buffer>();
function frameOf(e: RunEvent): Buffer {
  let f = frames.get(e);
  if (f === undefined) frames.set(e, (f = Buffer.from(`data: ${JSON.stringify(e)}\n\n`)));
  return f;
}

/** The open event streams of a server, ended when it closes, and how many each tenant has. */
export class EventStreams {
  private readonly open = new Set<ServerResponse>();
  private readonly perTenant = new Map<string, number>();

  /** Counts a stream of `tenant` about to open; false (nothing counted) when it has MAX_STREAMS_PER_TENANT. */
  reserve(tenant: string): boolean {
    const n = this.perTenant.get(tenant) ?? 0;
    if (n >= MAX_STREAMS_PER_TENANT) return false;
    this.perTenant.set(tenant, n + 1);
    return true;
  }
  /** Gives back what `reserve` counted. */
  release(tenant: string): void {
    const n = (this.perTenant.get(tenant) ?? 1) - 1;
    if (n <= 0) this.perTenant.delete(tenant);
    else this.perTenant.set(tenant, n);
  }
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
    const { tenant, admin } = principalOf(req);
    const counted = !admin;
    if (counted && !streams.reserve(tenant)) {
      throw new ApiError(
        'TOO_MANY_REQUESTS',
        `tenant ${tenant} has ${MAX_STREAMS_PER_TENANT} event streams open on this server, the most it may; close one first`,
        { headers: { 'retry-after': '5' } },
      );
    }
    const res = reply.raw;
    // Events that come before the headers are written wait here.
    let queue: RunEvent[] | null = [];
    const write = (e: RunEvent) => {
      if (res.destroyed || res.writableEnded) return;
      res.write(frameOf(e));
      if (res.writableLength > MAX_UNSENT_BYTES) res.destroy(); // its buffers go now, not once the client reads
    };
    let stop: () => void;
    try {
      stop = await ctx.platform.subscribe(tenant, (e) => (queue ? queue.push(e) : write(e)));
    } catch (err) {
      if (counted) streams.release(tenant);
      throw err;
    }

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
      if (counted) streams.release(tenant);
    };
    req.raw.on('close', cleanup);
    res.on('close', cleanup);
    res.on('error', cleanup);
    // The client went away while the stream was being set up: its 'close' has been and gone.
    if (res.destroyed || req.raw.socket?.destroyed) cleanup();
  });
}
