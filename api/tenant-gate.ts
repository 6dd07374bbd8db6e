/**
 * A tenant's fair share of one server process. Every request of the API and of the webhooks is
 * handled on this process's one event loop, so a tenant sending hundreds of requests at once
 * (an API key in a tight loop, a flood at its webhook) would put every other tenant's request
 * behind its own: a request waits, at each of its awaits, for the work queued before it. Here
 * at most `inProgress` requests of a tenant are handled at once (FLOWMETER_TENANT_REQUESTS,
 * default 4); its next ones wait in order (before their bodies are read), at most `waiting` of
 * them, and past that the request is refused at once with 429 TOO_MANY_REQUESTS and
 * `Retry-After: 1`. What a request costs before its tenant is known (parsing, the API key's
 * lookup) is not bounded here: that is a reverse proxy's rate limit.
 *
 * A place is taken in an `onRequest` hook and given back when the answer is sent (`onSend`,
 * which also runs for errors and after the client went away), so a client that disconnects
 * cannot have more handlers running than its share. Routes that hold a request open without
 * working (Server-Sent Events, `?wait=true` once the run is enqueued) give their place back
 * first: `leaveGate(req)`. Requests with the admin key are the operator's: never held.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './routes-common.js';

/** Requests of one tenant that may wait for a place (each holds a socket and its unread body). */
export const MAX_WAITING = 1000;

/** Options of {@link TenantGate}. */
export interface TenantGateOptions {
  /** Requests of one tenant handled at once. */
  inProgress: number;
  /** Requests of one tenant that may wait for a place (more are refused, 429). */
  waiting: number;
}

interface Lane {
  active: number;
  queue: Array<() => void>;
}

/** The places of each tenant in this process. */
export class TenantGate {
  private readonly lanes = new Map<string, Lane>();

  constructor(readonly opts: TenantGateOptions) {}

  /** Takes a place of `tenant` (waiting for one when all are taken); resolves to its release, which may be called more than once. */
  async enter(tenant: string): Promise<() => void> {
    let lane = this.lanes.get(tenant);
    if (!lane) this.lanes.set(tenant, (lane = { active: 0, queue: [] }));
    if (lane.active >= this.opts.inProgress) {
      if (lane.queue.length >= this.opts.waiting) {
        throw new ApiError(
          'TOO_MANY_REQUESTS',
          `tenant ${tenant} has ${lane.active} requests in progress on this server and ${lane.queue.length} waiting, the most it may; retry later`,
          { headers: { 'retry-after': '1' } },
        );
      }
      const l = lane;
      await new Promise<void>((resolve) => l.queue.push(resolve));
    } else lane.active++;
    let held = true;
    const l = lane;
    return () => {
      if (!held) return;
      held = false;
      const next = l.queue.shift();
      if (next)
        next(); // the place passes on: `active` stays
      else if (--l.active === 0) this.lanes.delete(tenant);
    };
  }

  /** Requests of `tenant` in progress and waiting (tests, diagnostics). */
  load(tenant: string): { active: number; waiting: number } {
    const lane = this.lanes.get(tenant);
    return { active: lane?.active ?? 0, waiting: lane?.queue.length ?? 0 };
  }
}

const releases = new WeakMap<FastifyRequest, () => void>();

/** Gives the request's place back (a route about to wait without working); nothing if it holds none. */
export function leaveGate(req: FastifyRequest): void {
  releases.get(req)?.();
}

/**
 * Holds a request to `tenant`'s share (null: not held), waiting for a place when all are
 * taken. Call it from an `onRequest` hook where the tenant is known (after authentication).
 */
export async function holdToShare(req: FastifyRequest, gate: TenantGate, tenant: string | null): Promise<void> {
  if (tenant === null || releases.has(req)) return;
  const release = await gate.enter(tenant);
  releases.set(req, release);
  // The client went away while this request waited: nothing is done for it.
  if (req.raw.socket?.destroyed) {
    release();
    throw new ApiError('INVALID_INPUT', 'the client went away while the request waited for a place');
  }
}

/** Gives places back when answers are sent (errors included). */
export function releaseOnSend(app: FastifyInstance): void {
  app.addHook('onSend', async (req: FastifyRequest, _reply: FastifyReply, payload: unknown) => {
    leaveGate(req);
    return payload;
  });
  app.addHook('onResponse', async (req: FastifyRequest) => leaveGate(req));
}
