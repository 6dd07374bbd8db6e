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
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
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

/** GET (or another method) on the API; throws ApiError with the server's `{ error: { code, message } }`. */
export async function api(path, { params, method = 'GET', signal } = {}) {
  let res;
  try {
    res = await fetch(url(path, params), {
      method,
      headers: { authorization: `Bearer ${session.key}`, accept: 'application/json' },
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
    throw new ApiError(
      res.status,
      typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`,
      typeof e?.message === 'string' ? e.message : text.slice(0, 200) || res.statusText,
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
