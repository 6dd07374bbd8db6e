// The JSON API of §8, called with the operator's key.

const KEY = 'flowmeter.key';
const TENANT = 'flowmeter.tenant';

export const session = {
  get key() {
    return sessionStorage.getItem(KEY) ?? '';
  },
  /** Set when an admin key looks at one tenant (`?tenant=`). */
  get tenant() {
    return sessionStorage.getItem(TENANT) ?? '';
  },
  set(key, tenant) {
    sessionStorage.setItem(KEY, key);
    if (tenant) sessionStorage.setItem(TENANT, tenant);
    else sessionStorage.removeItem(TENANT);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(TENANT);
  },
};

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  get unauthorized() {
    return this.status === 401 || this.status === 403;
  }
}

function url(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  if (session.tenant) u.searchParams.set('tenant', session.tenant);
  return u;
}

/**
 * GET (or another method, with a JSON `body`) on the API; throws ApiError with the server's
 * `{ error: { code, message, ...details } }` (the details as `err.details`).
 */
export async function api(path, { params, method = 'GET', body, signal } = {}) {
  let res;
  const headers = { authorization: `Bearer ${session.key}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    res = await fetch(url(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal,
    });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `cannot reach the server (${err?.message ?? err})`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const e = data?.error;
    const { code, message, ...details } = e && typeof e === 'object' ? e : {};
    throw new ApiError(
      res.status,
      typeof code === 'string' ? code : `HTTP_${res.status}`,
      typeof message === 'string' ? message : text.slice(0, 200) || res.statusText,
      details,
    );
  }
  if (data === undefined) throw new ApiError(res.status, 'BAD_RESPONSE', `${path} did not answer with JSON`);
  return data;
}

/** The server-sent events URL (EventSource cannot send headers, so the key goes as access_token). */
export function eventsUrl() {
  return url('/api/events', { access_token: session.key }).toString();
}

/** Arrays may come bare or wrapped (`{ runs: [...] }`). */
export function listOf(data, field) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[field])) return data[field];
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}

/**
 * The live handle ({ onEvent, refresh, dispose }) of a page that redraws itself with `load()`:
 * an event `wants` accepts reloads it `delayMs` later (a burst of events, once), `refresh`
 * reloads at once, and a failed load goes to `ctx.onError` (a refused key, or a notice in place).
 */
export function reloadOnEvents(ctx, load, wants, delayMs) {
  let timer = null;
  const reload = () => {
    load().catch(ctx.onError);
  };
  return {
    onEvent(e) {
      if (!wants(e)) return;
      clearTimeout(timer);
      timer = setTimeout(reload, delayMs);
    },
    refresh: reload,
    dispose() {
      clearTimeout(timer);
    },
  };
}
