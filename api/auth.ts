/**
 * Who is calling `/api`: `Authorization: Bearer KEY` with a tenant key (that tenant's data
 * only) or the admin key (any tenant, named with `?tenant=T`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Platform } from '../engine/platform.js';
import { ApiError, TENANT_RE } from './routes-common.js';

/** The caller of an API request. */
export interface Principal {
  /** The tenant whose data the request sees and changes. */
  tenant: string;
  /** Whether the admin key was used (quota changes need it). */
  admin: boolean;
}

const principals = new WeakMap<FastifyRequest, Principal>();

/** The caller of an authenticated request. */
export function principalOf(req: FastifyRequest): Principal {
  const p = principals.get(req);
  if (!p) throw new ApiError('UNAUTHORIZED', 'this request is not authenticated');
  return p;
}

/** Refuses the request unless the admin key was used. */
export function requireAdmin(req: FastifyRequest): Principal {
  const p = principalOf(req);
  if (!p.admin)
    throw new ApiError('FORBIDDEN', `${req.method} ${req.routeOptions.url ?? req.url} needs the admin key (FLOWMETER_ADMIN_KEY); a tenant key cannot do this`);
  return p;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Compares two secrets in constant time (over their hashes, so lengths leak nothing either). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : null;
}

export interface AuthOptions {
  adminKey?: string;
  /** Whether `?access_token=KEY` may replace the header (EventSource cannot set headers). */
  allowQueryToken: (req: FastifyRequest) => boolean;
}

/** An `onRequest` hook that authenticates the request and records its Principal. */
export function createAuthHook(platform: Platform, opts: AuthOptions): (req: FastifyRequest) => Promise<void> {
  const adminKey = opts.adminKey || undefined;
  return async (req) => {
    const query = (req.query ?? {}) as Record<string, unknown>;
    let key = bearer(req);
    if (!key && typeof query.access_token === 'string' && query.access_token && opts.allowQueryToken(req)) key = query.access_token;
    if (!key) {
      throw new ApiError(
        'UNAUTHORIZED',
        req.headers.authorization ? 'the Authorization header must be "Bearer KEY"' : 'missing API key: send Authorization: Bearer KEY',
      );
    }
    const named = query.tenant;
    if (named !== undefined && (typeof named !== 'string' || !TENANT_RE.test(named))) {
      throw new ApiError('INVALID_INPUT', '?tenant must be 1-64 of a-z 0-9 - _');
    }
    if (adminKey && sameSecret(key, adminKey)) {
      if (!named) throw new ApiError('INVALID_INPUT', 'the admin key needs ?tenant=T to name the tenant');
      principals.set(req, { tenant: named, admin: true });
      return;
    }
    const tenant = key.length <= 512 ? await platform.keys.resolve(key) : null;
    if (!tenant) throw new ApiError('UNAUTHORIZED', 'invalid API key');
    if (named && named !== tenant) throw new ApiError('FORBIDDEN', "a tenant key sees only its own tenant's data");
    principals.set(req, { tenant, admin: false });
  };
}
