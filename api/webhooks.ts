/**
 * `POST /hooks/:tenant/:path`: starts a run of the tenant's enabled webhook scenario whose
 * `trigger.path` (default: its id) is `:path` (SPEC §1, §8). `GET` too where the scenario's
 * `trigger.methods` lists it: the query (without `wait`) is the payload, and a `trigger.secret`
 * signs the raw query string (what follows `?`) instead of the body. A method the scenario
 * does not list → 405 with `Allow`.
 *
 * Order of checks, each answering before anything is enqueued: unknown tenant, path or a
 * disabled scenario → 404; `trigger.secret` set and `X-Signature` missing or wrong → 401;
 * quota exhausted → 429 with `Retry-After`. A repeated `Idempotency-Key` (24 h, per tenant and
 * path) answers with the first request's run and starts nothing. The body limit (413) and malformed JSON (400) are
 * enforced while the body is read, before any of these.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasRefs, refNames, resolveRefs } from '../core/redact.js';
import type { TriggerInfo } from '../core/types.js';
import type { Platform } from '../engine/platform.js';
import type { Scenario } from '../scenario/schema.js';
import { exhausted, refuseWhenExhausted } from './rejected.js';
import { type ApiContext, ApiError, idempotencyKeyOf, isJsonContentType, isTrue, publicRun, rawBodyOf, TENANT_RE, triggerAndWait } from './routes-common.js';
import { holdToShare, leaveGate } from './tenant-gate.js';

/** Request headers that never reach `msg.headers` (nor the run record). */
const HIDDEN_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-signature']);

type WebhookTrigger = Extract<Scenario['trigger'], { type: 'webhook' }>;

function notFound(tenant: string, path: string): ApiError {
  return new ApiError('NOT_FOUND', `no enabled webhook scenario at /hooks/${tenant}/${path}`);
}

/** The enabled webhook scenario of the tenant listening at `path`. */
async function findScenario(platform: Platform, tenant: string, path: string): Promise<Scenario & { trigger: WebhookTrigger }> {
  if (!TENANT_RE.test(tenant) || !path) throw notFound(tenant, path);
  const hit = (await platform.scenarios.list(tenant)).find((s) => s.enabled && s.trigger.type === 'webhook' && (s.trigger.path ?? s.id) === path);
  const scenario = hit ? await platform.scenarios.get(tenant, hit.id) : null;
  if (scenario?.trigger.type !== 'webhook') throw notFound(tenant, path);
  return scenario as Scenario & { trigger: WebhookTrigger };
}

/** How far a timestamped signature's `t` may be from now, either way (SPEC §9). */
export const SIGNATURE_TOLERANCE_S = 300;

function sameHex(given: string, expected: Buffer): boolean {
  return /^[0-9a-f]{64}$/i.test(given) && timingSafeEqual(Buffer.from(given, 'hex'), expected);
}

/**
 * Checks `X-Signature`: the hex HMAC-SHA256 of the raw body (`sha256=` prefix allowed), or
 * `t=<unix seconds>,v1=<hex>` with the HMAC of `<t>.<raw body>`, accepted within
 * {@link SIGNATURE_TOLERANCE_S} of `t`. Compared in constant time.
 */
export function verifySignature(raw: Buffer, header: string | string[] | undefined, secret: string, nowMs = Date.now()): void {
  if (typeof header !== 'string' || !header.trim()) throw new ApiError('BAD_SIGNATURE', 'missing X-Signature: the hex HMAC-SHA256 of the body');
  const value = header.trim();
  if (/^t=/i.test(value)) {
    const parts = value.split(',').map((p) => p.trim());
    const t = parts.find((p) => /^t=/i.test(p))!.slice(2);
    const v1 = parts.filter((p) => /^v1=/i.test(p)).map((p) => p.slice(3));
    if (!/^\d{1,12}$/.test(t) || v1.length === 0)
      throw new ApiError('BAD_SIGNATURE', 'X-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">');
    if (Math.abs(nowMs / 1000 - Number(t)) > SIGNATURE_TOLERANCE_S)
      throw new ApiError('BAD_SIGNATURE', `X-Signature timestamp is more than ${SIGNATURE_TOLERANCE_S} s from now`);
    const expected = createHmac('sha256', secret).update(`${t}.`).update(raw).digest();
    let ok = false;
    for (const sig of v1) ok = sameHex(sig, expected) || ok;
    if (!ok) throw new ApiError('BAD_SIGNATURE', 'X-Signature does not match the timestamp and body');
    return;
  }
  const expected = createHmac('sha256', secret).update(raw).digest();
  if (!sameHex(value.replace(/^sha256=/i, ''), expected)) throw new ApiError('BAD_SIGNATURE', 'X-Signature does not match the body');
}

/**
 * The scenario's signing key with `${secret:NAME}` / `${env:NAME}` resolved (env only where
 * production lets tenants read it). A missing one refuses every request (401 SECRET_MISSING,
 * fail closed); the answer does not name it, the server log does.
 */
async function signingKey(platform: Platform, req: FastifyRequest, tenant: string, secret: string): Promise<string> {
  if (!hasRefs(secret)) return secret;
  const names = [...refNames(secret, 'secret')];
  const loaded = names.length ? await platform.secrets.read(tenant, names) : new Map<string, string>();
  const allowed = platform.tenantEnv;
  try {
    return resolveRefs(secret, { env: (n) => (allowed && !allowed.has(n) ? undefined : process.env[n]), secret: (n) => loaded.get(n) }, () => undefined);
  } catch (err) {
    req.log.warn({ tenant, err: (err as Error).message }, 'webhook signing secret missing');
    throw new ApiError('SECRET_MISSING', "the webhook's signing secret is not stored; no request is accepted until it is");
  }
}

/**
 * `msg.payload`: the parsed JSON body, a form body as an object (a repeated field as an
 * array), else the body as text; null when empty.
 */
function payloadOf(req: FastifyRequest, raw: Buffer): unknown {
  if (raw.length === 0) return null;
  if (isJsonContentType(req.headers['content-type'])) return req.body ?? null;
  const text = raw.toString('utf8');
  if (/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return formFields(text);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function formFields(text: string): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>; // a `__proto__` field stays a field
  for (const [k, v] of new URLSearchParams(text)) {
    const had = out[k];
    out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return out;
}

function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HIDDEN_HEADERS.has(k)) out[k] = v;
  return out;
}

/** The query of a GET webhook as its payload: a repeated field as an array; no prototype keys. */
function queryPayload(query: Record<string, string | string[]>): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [k, v] of Object.entries(query)) out[k] = v;
  return out;
}

/** 405 unless the scenario's `trigger.methods` (default POST) lists `method`. */
function checkMethod(trigger: WebhookTrigger, method: 'GET' | 'POST', tenant: string, path: string): void {
  const allowed = trigger.methods ?? ['POST'];
  if (allowed.includes(method)) return;
  throw new ApiError(
    'METHOD_NOT_ALLOWED',
    `/hooks/${tenant}/${path} accepts ${allowed.join(', ')}, not ${method}${method === 'GET' ? ' (list GET in trigger.methods to allow it)' : ''}`,
    { headers: { allow: allowed.join(', ') } },
  );
}

type HookRequest = FastifyRequest<{ Params: { tenant: string; '*': string }; Querystring: Record<string, string | string[]> }>;

export function registerWebhooks(app: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  const handle = async (req: HookRequest, reply: FastifyReply, method: 'GET' | 'POST') => {
    const { tenant } = req.params;
    const path = req.params['*'];
    const scenario = await findScenario(platform, tenant, path);
    checkMethod(scenario.trigger, method, tenant, path);
    const raw = method === 'GET' ? Buffer.from(req.url.slice(req.url.indexOf('?') + 1 || req.url.length)) : rawBodyOf(req);
    if (scenario.trigger.secret) verifySignature(raw, req.headers['x-signature'], await signingKey(platform, req, tenant, scenario.trigger.secret));
    await ctx.metrics.watch(tenant).catch(() => undefined);

    const { wait, ...query } = req.query;
    const trigger: TriggerInfo = { type: 'webhook', headers: forwardedHeaders(req.headers), query };
    const payload = method === 'GET' ? queryPayload(query) : payloadOf(req, raw);
    // A repeated Idempotency-Key answers with the first request's run, quota or not.
    const idempotencyKey = idempotencyKeyOf(req, `hook:${path}`);
    const first = idempotencyKey === undefined ? null : await platform.idempotentRun(tenant, idempotencyKey);
    if (first && !isTrue(wait)) return reply.code(202).send({ runId: first });

    // Quota: a webhook must answer 429 at once, before a run would end. So the usage is checked
    // first: with the quota exhausted the attempt is recorded as a `rejected` run (SPEC §4:
    // operators see every refused trigger), within the bounds of api/rejected.ts, and nothing is
    // enqueued. A non-billable scenario is refused once the tenant's non-billable actions reach its quota.
    if (!first) {
      const refused = await refuseWhenExhausted({ platform, scenario, tenant, trigger, payload, bytes: raw.length });
      if (refused) throw refused.error;
    }
    if (!isTrue(wait)) {
      const run = await platform.trigger(tenant, scenario.id, payload, trigger, { idempotencyKey });
      return reply.code(202).send({ runId: run.runId });
    }
    leaveGate(req); // waiting for the run's end is no work of this process
    const run = await triggerAndWait(platform, tenant, scenario.id, payload, trigger, ctx.waitTimeoutMs, { idempotencyKey });
    if (run.status === 'rejected') {
      const usage = await platform.ledger.usage(tenant, new Date());
      throw exhausted(usage.period.end, run.runId);
    }
    return reply.code(200).send(publicRun(run));
  };
  // Each request waits for a place of its tenant's share first (tenant-gate.ts), before its body is read.
  const onRequest = async (req: FastifyRequest<{ Params: { tenant: string } }>) => holdToShare(req, ctx.gate, req.params.tenant);
  app.post<{ Params: { tenant: string; '*': string }; Querystring: Record<string, string | string[]> }>('/hooks/:tenant/*', { onRequest }, (req, reply) =>
    handle(req, reply, 'POST'),
  );
  // No automatic HEAD route: a HEAD request must not start a run.
  app.get<{ Params: { tenant: string; '*': string }; Querystring: Record<string, string | string[]> }>(
    '/hooks/:tenant/*',
    { exposeHeadRoute: false, onRequest },
    (req, reply) => handle(req, reply, 'GET'),
  );
}
