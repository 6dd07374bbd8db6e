import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { errorCode, FlowError } from '../core/errors.js';
import { textNestsDeeper } from '../core/json-depth.js';
import { setPath } from '../core/paths.js';
import { Redactor, type RefSources, resolveRefs } from '../core/redact.js';
import { renderDeep, renderText } from '../core/templates.js';
import type { Message } from '../core/types.js';
import { alt, one } from './cost.js';
import { type ConnectionConfig, defineNode, type NodeContext, nextRef } from './define.js';
import { msgPath, nodeId, template } from './fields.js';
import { readBody } from './http-body.js';

/** Redirects followed per attempt, at most. */
export const MAX_REDIRECTS = 10;

/** The longest wait between two attempts, whatever the backoff or `Retry-After` says. */
export const MAX_RETRY_WAIT_MS = 60_000;

const config = z.object({
  /** Name of an entry of the scenario's `connections` (base URL, headers, auth). */
  connection: z.string().min(1).optional(),
  /** HTTP method (default GET). */
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('GET'),
  /** Template: an absolute http(s) URL, or a path relative to the connection's `baseUrl`. */
  url: template,
  /** Request headers (templates); they override the connection's headers. */
  headers: z.record(z.string(), template).optional(),
  /** Query parameters (templates), appended to the URL. */
  query: z.record(z.string(), template).optional(),
  /** Any JSON, rendered with templates; sent as JSON unless it renders to a string. */
  body: z.unknown().optional(),
  /** Limit for one attempt, in ms (default 10000). */
  timeoutMs: z.number().int().min(1).max(300_000).default(10_000),
  /** `attempts`: tries in all, the first included (default 3); `backoffMs`: first wait, doubling (default 500). */
  retry: z
    .object({
      attempts: z.number().int().min(1).max(10).default(3),
      backoffMs: z.number().int().min(0).max(MAX_RETRY_WAIT_MS).default(500),
    })
    .default({ attempts: 3, backoffMs: 500 }),
  /** Where the parsed response body goes (default `msg.payload`). */
  into: msgPath.default('msg.payload'),
  next: nodeId.optional(),
});

type ConnectorConfig = z.infer<typeof config>;

/** A URL fit for messages: no credentials, query or fragment (they can carry tokens). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/s, '');
  }
}

/** `base` and `path` joined with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  if (!path) return base;
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** Milliseconds to wait according to a `Retry-After` value (seconds or HTTP date), if valid. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function isRetryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/** The body parsed as JSON, or as text when it is not JSON or nests deeper than MAX_JSON_DEPTH. */
function parseBody(text: string, contentType: string): unknown {
  if (text.trim() === '') return contentType.includes('json') ? null : text;
  if (textNestsDeeper(text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Sets a header; a bad name or value fails without echoing the value (it may be a secret). */
function setHeader(headers: Headers, name: string, value: string): void {
  try {
    headers.set(name, value);
  } catch {
    throw new FlowError('INVALID_INPUT', `header ${/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) ? name : '(invalid name)'} has an invalid name or value`);
  }
}

interface Prepared {
  url: string;
  headers: Headers;
  body: string | undefined;
  /** Headers that carry credentials: dropped on a redirect to another origin (SPEC §9). */
  credentials: Set<string>;
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** Builds the request: URL, headers (connection, auth, node, idempotency key) and body. */
function prepare(input: Message, ctx: NodeContext<ConnectorConfig>, redactor: Redactor): Prepared {
  const { node } = ctx;
  const onSecret = (v: string) => {
    ctx.secret(v);
    redactor.add(v);
  };
  // Credentials (tokens, passwords, header values) are secrets. A base URL or user name read
  // whole from the environment is configuration, not a secret: scrubbing it would rewrite
  // ordinary data that happens to contain it. A ${env:…} inside a base URL (a token in a path)
  // is a secret.
  const from: RefSources = { env: ctx.services.env, secret: ctx.services.secret };
  const env = (s: string) => resolveRefs(s, from, onSecret);
  const plain = (s: string) => resolveRefs(s, from, () => undefined);
  // A stored credential (${secret:…}) is a secret wherever it is used.
  const wholeRef = (s: string) => /^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/.test(s.trim());
  let conn: ConnectionConfig | undefined;
  if (node.connection) {
    conn = ctx.scenario.connections?.[node.connection];
    if (!conn) throw new FlowError('INVALID_SCENARIO', `connection ${node.connection} is not defined`);
  }
  const scope = ctx.scope(input);
  const rendered = renderText(node.url, scope).trim();
  let url: string;
  const base = conn?.baseUrl ? (wholeRef(conn.baseUrl) ? plain(conn.baseUrl) : env(conn.baseUrl)) : undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rendered)) {
    url = rendered;
    // A connection's credentials go to its own host only: an absolute URL (perhaps built from
    // message data) must not carry them elsewhere.
    if (base && originOf(url) !== originOf(base)) {
      throw new FlowError('INVALID_INPUT', `url ${safeUrl(url)} is not on connection ${node.connection}'s host; use a path relative to its baseUrl`);
    }
  } else if (base) url = joinUrl(base, rendered);
  else throw new FlowError('INVALID_INPUT', `url ${safeUrl(rendered)} is not absolute and there is no connection baseUrl`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FlowError('INVALID_INPUT', redactor.redact(`url ${safeUrl(url)} is not a valid URL`));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new FlowError('INVALID_INPUT', `url scheme ${parsed.protocol} is not allowed; use http or https`);
  }
  for (const [k, v] of Object.entries(node.query ?? {})) parsed.searchParams.append(k, renderText(v, scope));

  const headers = new Headers();
  const credentials = new Set(['authorization', 'proxy-authorization', 'cookie']);
  // fetch refuses URLs with credentials: they become Basic auth (unless auth is configured).
  if (parsed.username || parsed.password) {
    const user = decodeURIComponent(parsed.username);
    const pass = decodeURIComponent(parsed.password);
    if (pass) onSecret(pass);
    const token = Buffer.from(`${user}:${pass}`).toString('base64');
    onSecret(token);
    setHeader(headers, 'authorization', `Basic ${token}`);
    parsed.username = '';
    parsed.password = '';
  }
  for (const [k, v] of Object.entries(conn?.headers ?? {})) {
    setHeader(headers, k, env(v));
    credentials.add(k.toLowerCase());
  }
  const auth = conn?.auth;
  if (auth?.type === 'bearer') setHeader(headers, 'authorization', `Bearer ${env(auth.token)}`);
  else if (auth?.type === 'basic') {
    const token = Buffer.from(`${plain(auth.username)}:${env(auth.password)}`).toString('base64');
    onSecret(token);
    setHeader(headers, 'authorization', `Basic ${token}`);
  } else if (auth?.type === 'header') {
    const name = env(auth.name);
    setHeader(headers, name, env(auth.value));
    credentials.add(name.toLowerCase());
  }
  for (const [k, v] of Object.entries(node.headers ?? {})) setHeader(headers, k, renderText(v, scope));
  setHeader(headers, 'idempotency-key', `${ctx.runId}:${ctx.taskKey}`);

  let body: string | undefined;
  const value = node.body === undefined ? undefined : renderDeep(node.body, scope);
  if (value !== undefined && value !== null) {
    if (node.method === 'GET' || node.method === 'HEAD') {
      throw new FlowError('INVALID_INPUT', `a ${node.method} request cannot have a body`);
    }
    if (typeof value === 'string') body = value;
    else {
      body = JSON.stringify(value);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
  }
  // Any other header holding a secret value (a node header rendered from one) is a credential too.
  headers.forEach((v, k) => {
    if (redactor.size > 0 && redactor.redact(v) !== v) credentials.add(k);
  });
  return { url: parsed.toString(), headers, body, credentials };
}

/**
 * One attempt: the request and the redirects it meets, followed by hand so that every hop goes
 * through `services.fetch` (production checks each destination) and a hop to another origin
 * carries no credential.
 */
async function send(ctx: NodeContext<ConnectorConfig>, req: Prepared, signal: AbortSignal): Promise<Response> {
  let url = req.url;
  let method: string = ctx.node.method;
  let body = req.body;
  const headers = new Headers(req.headers);
  for (let hop = 0; ; hop++) {
    const res = await ctx.services.fetch(url, { method, headers, body, redirect: 'manual', signal });
    const location = res.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
    await res.body?.cancel().catch(() => undefined); // a redirect's body is not read, however large
    if (hop >= MAX_REDIRECTS) throw new FlowError('HTTP_NETWORK', `${ctx.node.method} ${safeUrl(req.url)} redirected more than ${MAX_REDIRECTS} times`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new FlowError('HTTP_NETWORK', `${ctx.node.method} ${safeUrl(req.url)} redirected to an invalid URL`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new FlowError('HTTP_NETWORK', `${ctx.node.method} ${safeUrl(req.url)} redirected to a ${next.protocol} URL`);
    if (next.origin !== new URL(url).origin) for (const name of req.credentials) headers.delete(name);
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      if (method !== 'HEAD') method = 'GET';
      body = undefined;
      headers.delete('content-type');
    }
    url = next.toString();
  }
}

/**
 * One HTTP request, with retries on network errors, timeouts, 429 and 5xx (honouring
 * `Retry-After`). Puts the parsed response body at `into` and `{ status, headers }` at
 * `msg.http`. A final non-2xx fails with `HTTP_ERROR`; timeouts on every attempt with
 * `HTTP_TIMEOUT`; other network failures with `HTTP_NETWORK`.
 */
/** The most characters of a failed response's body kept on the error (`msg.error.body`). */
export const ERROR_BODY_CHARS = 4096;

export const connectorNode = defineNode({
  type: 'connector',
  config,
  emitsOutputs: true,
  refs: (n) => [...(n.connection ? [{ path: 'connection', kind: 'connection' as const, name: n.connection }] : []), ...nextRef(n.next)],
  /** One action (retries are free), then `next`; or it fails (HTTP_ERROR, network). */
  estimate: (n, c) => alt(one(c.next(n.next)), c.fails()),
  async execute(input, ctx) {
    const { node } = ctx;
    const redactor = new Redactor();
    const req = prepare(input, ctx, redactor);
    const where = `${node.method} ${safeUrl(req.url)}`;
    const reqBytes = req.body === undefined ? 0 : Buffer.byteLength(req.body);
    const { attempts, backoffMs } = node.retry;
    let failure: { code: 'HTTP_TIMEOUT' | 'HTTP_NETWORK'; detail: string } | undefined;

    for (let attempt = 1; attempt <= attempts; attempt++) {
      const last = attempt === attempts;
      const backoff = Math.min(backoffMs * 2 ** (attempt - 1), MAX_RETRY_WAIT_MS);
      let res: Response | undefined;
      let bytes: Uint8Array;
      let read = 0;
      try {
        res = await send(ctx, req, AbortSignal.timeout(node.timeoutMs));
        bytes = await readBody(res, where, (n) => {
          read = n;
        });
      } catch (err) {
        // A destination the egress policy refuses: nothing was sent, and no retry would be.
        if (errorCode(err) === 'EGRESS_DENIED') throw new FlowError('EGRESS_DENIED', redactor.redact((err as Error).message));
        if (errorCode(err) === 'HTTP_ERROR' && res) {
          // A body over MAX_RESPONSE_BYTES: a retry would read it again.
          const use = node.connection ? { connection: node.connection, status: res.status } : undefined;
          ctx.meter('connectorRequests', 1, use);
          ctx.meter('connectorBytes', reqBytes + read, use);
          throw new FlowError('HTTP_ERROR', redactor.redact((err as Error).message), { status: res.status });
        }
        const use = node.connection ? { connection: node.connection } : undefined;
        if (errorCode(err) === 'HTTP_NETWORK' && err instanceof FlowError) {
          failure = { code: 'HTTP_NETWORK', detail: err.message.slice(where.length + 1) };
          ctx.meter('connectorRequests', 1, use);
          if (!last) await ctx.services.sleep(backoff);
          continue;
        }
        ctx.meter('connectorRequests', 1, use);
        ctx.meter('connectorBytes', reqBytes, use);
        const name = (err as { name?: unknown } | null)?.name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          failure = { code: 'HTTP_TIMEOUT', detail: `timed out after ${node.timeoutMs} ms` };
        } else {
          const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
          const detail =
            typeof cause?.message === 'string' && cause.message
              ? cause.message
              : typeof cause?.code === 'string'
                ? cause.code
                : String((err as Error)?.message ?? err);
          failure = { code: 'HTTP_NETWORK', detail: `failed: ${detail}` };
        }
        if (!last) await ctx.services.sleep(backoff);
        continue;
      }
      const use = node.connection ? { connection: node.connection, status: res.status } : undefined;
      ctx.meter('connectorRequests', 1, use);
      ctx.meter('connectorBytes', reqBytes + bytes.byteLength, use);
      failure = undefined;

      if (isRetryable(res.status) && !last) {
        const after = parseRetryAfter(res.headers.get('retry-after'));
        await ctx.services.sleep(Math.min(after ?? backoff, MAX_RETRY_WAIT_MS));
        continue;
      }
      if (res.status < 200 || res.status > 299) {
        const text = res.statusText || STATUS_CODES[res.status] || '';
        const err = new FlowError('HTTP_ERROR', redactor.redact(`${where} → ${res.status}${text ? ` ${text}` : ''}`), { status: res.status });
        // The response body (capped) goes with the error, for a Catch to read at msg.error.body.
        const body = new TextDecoder().decode(bytes.subarray(0, ERROR_BODY_CHARS * 4)).slice(0, ERROR_BODY_CHARS + 1);
        throw Object.assign(err, { body: redactor.redact(body.length > ERROR_BODY_CHARS ? `${body.slice(0, ERROR_BODY_CHARS)}…[truncated]` : body) });
      }
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        headers[k.toLowerCase()] = v;
      });
      const contentType = headers['content-type'] ?? '';
      const data = parseBody(new TextDecoder().decode(bytes), contentType);
      const out = setPath(setPath(input, 'msg.http', { status: res.status, headers }), node.into, data);
      // What the response brings into the run, counted by its wave (engine/kept.ts).
      return { kind: 'emit', messages: [out], chars: bytes.byteLength };
    }
    const f = failure ?? { code: 'HTTP_NETWORK' as const, detail: 'failed' };
    const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    throw new FlowError(f.code, redactor.redact(`${where} ${f.detail} (${tries})`));
  },
});
