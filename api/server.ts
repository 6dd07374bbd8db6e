/**
 * The HTTP server of `flowmeter serve` (SPEC §8): webhooks, the JSON API under `/api`, Server-
 * Sent Events, Prometheus metrics, health and the dashboard, on any Platform (embedded or Redis).
 *
 * Every error is answered as JSON `{ "error": { "code", "message" } }` with a stable code from
 * engine/errors.ts (plus fields such as `problems` where they help); never a stack trace, and
 * the message of an unexpected error is not shown (it is logged).
 */

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { errorMessage, httpStatusOf } from '../core/errors.js';
import type { Platform } from '../engine/platform.js';
import { isRedisUnavailable } from '../redis/client.js';
import { createAuthHook, principalOf, sameSecret } from './auth.js';
import { registerDashboard } from './dashboard.js';
import { EventStreams, registerEventsRoute } from './events.js';
import { Metrics } from './metrics.js';
import { registerBillingRoutes } from './routes-billing.js';
import { type ApiContext, ApiError, isJsonContentType, setRawBody } from './routes-common.js';
import { registerGraphRoutes } from './routes-graph.js';
import { registerKeyRoutes } from './routes-keys.js';
import { registerLifecycleRoutes } from './routes-lifecycle.js';
import { registerRunRoutes } from './routes-runs.js';
import { registerScenarioRoutes } from './routes-scenarios.js';
import { registerSecretRoutes } from './routes-secrets.js';
import { registerUsageRoutes } from './routes-usage.js';
import { holdToShare, MAX_WAITING, releaseOnSend, TenantGate } from './tenant-gate.js';
import { registerWebhooks } from './webhooks.js';

export interface ServerOptions {
  /** The admin key (FLOWMETER_ADMIN_KEY): any tenant's data, named with `?tenant=T`. Unset: tenant keys only. */
  adminKey?: string;
  /** The largest request body accepted, in bytes (default 1 MB); larger ones get 413 PAYLOAD_TOO_LARGE. */
  bodyLimit?: number;
  /** Log requests and unexpected errors (pino, level from FLOWMETER_LOG_LEVEL; default off). */
  logger?: boolean;
  /** How long `?wait=true` waits for the run to end before 504 TIMEOUT (default 60 s). */
  waitTimeoutMs?: number;
  /**
   * Requests of one tenant (API and webhooks) handled at once by this server (default 4,
   * FLOWMETER_TENANT_REQUESTS); up to 1,000 more wait in order, then 429 TOO_MANY_REQUESTS.
   */
  tenantRequests?: number;
}

/** 1 MB. */
import { DEFAULT_BODY_LIMIT, DEFAULT_TENANT_REQUESTS } from './limits.js';

export { DEFAULT_BODY_LIMIT };

/** How long `/healthz` lets the store answer. */
const HEALTH_TIMEOUT_MS = 1500;

interface HttpError {
  status: number;
  body: { error: { code: string; message: string } & Record<string, unknown> };
  headers?: Record<string, string>;
}

/** Maps any thrown value to a status and a safe JSON answer. */
function toHttpError(err: unknown, bodyLimit: number): HttpError {
  const e = (err ?? {}) as Partial<FastifyError> & { code?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const answer = (status: number, c: string, message: string, extra?: Record<string, unknown>, headers?: Record<string, string>): HttpError => ({
    status,
    body: { error: { code: c, message, ...extra } },
    headers,
  });
  if (isRedisUnavailable(err))
    return answer(503, 'REDIS_UNAVAILABLE', `Redis cannot be reached; nothing was done, retry later (${firstLine(errorMessage(err))})`);
  if (err instanceof ApiError) return answer(httpStatusOf(err.code), err.code, err.message, err.extra.details, err.extra.headers);
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413)
    return answer(413, 'PAYLOAD_TOO_LARGE', `the request body is over the limit of ${bodyLimit} bytes`);
  if (code.startsWith('FST_') && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return answer(e.statusCode, 'INVALID_INPUT', errorMessage(err));
  }
  if (e.validation) return answer(400, 'INVALID_INPUT', errorMessage(err));
  const status = httpStatusOf(code);
  if (status < 500) return answer(status, code, errorMessage(err));
  if (code === 'REDIS_UNAVAILABLE' || code === 'TIMEOUT' || code === 'SECRETS_KEY_INVALID') return answer(status, code, errorMessage(err));
  return answer(500, 'INTERNAL', 'an unexpected error; it has been logged');
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]!.slice(0, 200);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** The longest route parameter (a tenant, id or name); longer ones are 404 like any unknown route. */
const MAX_PARAM_LENGTH = 512;

/**
 * Errors Node's HTTP parser meets before Fastify sees a request (headers or URL over the size
 * limit, malformed request lines): answered in the API's JSON shape, then the socket is closed.
 */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const message =
    status === 431
      ? 'the request line or headers are over the size limit'
      : status === 408
        ? 'the request took too long to arrive'
        : 'the request is malformed';
  const body = JSON.stringify({ error: { code: 'INVALID_INPUT', message } });
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  } else socket.destroy();
}

/** Hides `?access_token=` values in logged URLs. */
function safeUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&]*/gi, '$1***');
}

/**
 * Builds the server (not listening yet: call `listen`). The platform stays the caller's: closing
 * the server ends event streams and metric subscriptions, not the platform.
 */
export async function buildServer(platform: Platform, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: clientError,
    // A URL Fastify cannot decode (bad percent-encoding) is 400, a path parameter over the
    // limit 414, both in the API's shape.
    frameworkErrors: (err, _req, reply) => {
      const long = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const message = long
        ? `a path parameter is over ${MAX_PARAM_LENGTH} characters`
        : err.code === 'FST_ERR_BAD_URL'
          ? 'the URL is not valid (bad percent-encoding)'
          : 'the request could not be routed';
      void (reply as unknown as { code(n: number): { send(b: unknown): unknown } }).code(long ? 414 : 400).send({ error: { code: 'INVALID_INPUT', message } });
    },
    logger: opts.logger
      ? {
          level: process.env.FLOWMETER_LOG_LEVEL ?? 'info',
          serializers: { req: (req: { method: string; url: string }) => ({ method: req.method, url: safeUrl(req.url) }) },
        }
      : false,
  });
  const metrics = new Metrics(platform);
  const streams = new EventStreams();
  const gate = new TenantGate({ inProgress: opts.tenantRequests ?? DEFAULT_TENANT_REQUESTS, waiting: MAX_WAITING });
  const ctx: ApiContext = { platform, metrics, waitTimeoutMs: opts.waitTimeoutMs ?? 60_000, gate };
  releaseOnSend(app);

  app.setErrorHandler((err, req, reply) => {
    const out = toHttpError(err, bodyLimit);
    if (out.status >= 500) req.log.error({ code: (err as { code?: unknown }).code, err: errorMessage(err) }, 'request failed');
    void reply
      .code(out.status)
      .headers(out.headers ?? {})
      .send(out.body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${safeUrl(req.url.split('?')[0]!)}` } });
  });

  // One parser for every body: it keeps the raw bytes (webhook signatures), parses JSON media
  // types (malformed → 400 INVALID_INPUT) and leaves anything else as the raw Buffer.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const buf = body as Buffer;
    setRawBody(req, buf);
    if (!isJsonContentType(req.headers['content-type'])) return done(null, buf);
    if (buf.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(buf.toString('utf8')));
    } catch (err) {
      done(new ApiError('INVALID_INPUT', `the body is not valid JSON: ${(err as Error).message}`));
    }
  });

  app.addHook('preClose', async () => {
    streams.endAll();
  });
  app.addHook('onClose', async () => {
    await metrics.close();
  });

  app.get('/healthz', async (_req, reply) => {
    try {
      await withTimeout(platform.scenarios.tenants(), HEALTH_TIMEOUT_MS);
      return { ok: true, mode: platform.mode };
    } catch (err) {
      return reply
        .code(503)
        .send({ ok: false, mode: platform.mode, error: { code: 'REDIS_UNAVAILABLE', message: `the store did not answer: ${errorMessage(err)}` } });
    }
  });

  // Metrics name every tenant, scenario and remaining quota: the operator's (admin key) only.
  app.get('/metrics', async (req, reply) => {
    if (opts.adminKey) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m || !sameSecret(m[1]!, opts.adminKey)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({ error: { code: 'UNAUTHORIZED', message: '/metrics needs the admin key: send Authorization: Bearer <FLOWMETER_ADMIN_KEY>' } });
      }
    }
    const text = await metrics.render();
    return reply.header('content-type', metrics.contentType).send(text);
  });

  registerWebhooks(app, ctx);

  const auth = createAuthHook(platform, {
    adminKey: opts.adminKey,
    allowQueryToken: (req) => req.routeOptions.url === '/api/events',
  });
  await app.register(
    async (api) => {
      api.addHook('onRequest', async (req) => {
        await auth(req);
        const { tenant, admin } = principalOf(req);
        // The operator's requests are never held behind a tenant's.
        if (!admin) await holdToShare(req, gate, tenant);
        await metrics.watch(tenant).catch(() => undefined);
      });
      // API bodies are JSON; anything else (kept as raw bytes by the parser) is refused here.
      api.addHook('preValidation', async (req) => {
        if (Buffer.isBuffer(req.body))
          throw new ApiError(
            'INVALID_INPUT',
            `the body must be JSON (Content-Type: application/json), got ${JSON.stringify(String(req.headers['content-type'] ?? '').slice(0, 80))}`,
          );
      });
      registerRunRoutes(api, ctx);
      registerScenarioRoutes(api, ctx);
      registerGraphRoutes(api, ctx);
      registerLifecycleRoutes(api, ctx);
      registerUsageRoutes(api, ctx);
      registerSecretRoutes(api, ctx);
      registerKeyRoutes(api, ctx);
      registerBillingRoutes(api, ctx);
      registerEventsRoute(api, ctx, streams);
    },
    { prefix: '/api' },
  );

  await registerDashboard(app, platform);

  // Count the events of tenants that already have scenarios; more are watched as they appear.
  await withTimeout(metrics.refresh(), 3000).catch((err) => app.log.warn({ err: errorMessage(err) }, 'metrics: could not list tenants yet'));
  return app;
}
