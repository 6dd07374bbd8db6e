/**
 * Egress policy for Connector requests in production (SPEC §9): a request to a loopback,
 * private, link-local or unspecified address is never sent; `FLOWMETER_EGRESS_ALLOW` opens
 * named destinations.
 *
 * The address is checked inside the connection's own DNS lookup, so the address checked is the
 * address connected to (a DNS answer cannot change between check and connect). IP literals,
 * which Node connects to without a lookup, are checked before the request. Each call sends one
 * request and never follows redirects: the Connector follows them itself, one checked call per
 * hop.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { FlowError } from '../core/errors.js';

/** Ranges never reached without an allow entry (IPv4-mapped IPv6 is checked as IPv4). */
const DENIED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  DENIED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 96],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  DENIED.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:a.b.c.d` or `::ffff:7f00:1`), else null. */
function mappedV4(ip: string): string | null {
  const m = /^(?:0{0,4}:){0,5}:?ffff:(.+)$/i.exec(ip) ?? /^(?:0{1,4}:){5}ffff:(.+)$/i.exec(ip);
  if (!m) return null;
  const rest = m[1]!;
  if (isIP(rest) === 4) return rest;
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(rest);
  if (!hex) return null;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether `ip` (v4 or v6, no brackets) is loopback, private, link-local, unspecified or reserved. */
export function isDeniedAddress(ip: string): boolean {
  const v4 = isIP(ip) === 6 ? mappedV4(ip) : null;
  if (v4) return DENIED.check(v4, 'ipv4');
  const family = isIP(ip);
  if (family === 0) return true;
  return DENIED.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** What `FLOWMETER_EGRESS_ALLOW` opens: host names (any port), host:port pairs and CIDR ranges. */
export interface EgressAllow {
  hosts: Set<string>;
  hostPorts: Set<string>;
  ranges: BlockList;
}

/** Parses `FLOWMETER_EGRESS_ALLOW` (comma-separated `host:port`, `host` or CIDR); a bad entry throws one line. */
export function parseEgressAllow(spec: string | undefined): EgressAllow {
  const allow: EgressAllow = { hosts: new Set(), hostPorts: new Set(), ranges: new BlockList() };
  for (const raw of (spec ?? '').split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const family = isIP(cidr[1]!);
      const prefix = Number(cidr[2]);
      if (family === 0 || prefix > (family === 4 ? 32 : 128))
        throw new FlowError('INVALID_INPUT', `FLOWMETER_EGRESS_ALLOW: ${JSON.stringify(raw.trim())} is not a valid CIDR range`);
      allow.ranges.addSubnet(cidr[1]!, prefix, family === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const hostPort = /^(\[[0-9a-f:.]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
    if (hostPort) allow.hostPorts.add(`${unbracket(hostPort[1]!)}:${Number(hostPort[2])}`);
    else if (/^[a-z0-9.-]+$/.test(entry) || isIP(unbracket(entry))) allow.hosts.add(unbracket(entry));
    else throw new FlowError('INVALID_INPUT', `FLOWMETER_EGRESS_ALLOW: ${JSON.stringify(raw.trim())} is not host, host:port or a CIDR range`);
  }
  return allow;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function addressAllowed(ip: string, allow: EgressAllow): boolean {
  const v4 = isIP(ip) === 6 ? mappedV4(ip) : null;
  const addr = v4 ?? ip;
  return !isDeniedAddress(addr) || allow.ranges.check(addr, isIP(addr) === 4 ? 'ipv4' : 'ipv6');
}

function denied(host: string, address: string): FlowError {
  return new FlowError(
    'EGRESS_DENIED',
    `connection to ${host} refused: it resolves to ${address}, a loopback, private, link-local or unspecified address (FLOWMETER_EGRESS_ALLOW opens one)`,
  );
}

export interface PolicedFetchOptions {
  /** `FLOWMETER_EGRESS_ALLOW`. */
  allow?: string;
  /** The DNS lookup the check wraps (default `dns.lookup`); tests inject one. */
  lookup?: LookupFunction;
}

/**
 * A `fetch` for production Connectors: one request (redirects are returned, never followed),
 * refused with `EGRESS_DENIED` before any byte is sent when its destination is not allowed.
 */
export function policedFetch(opts: PolicedFetchOptions = {}): typeof fetch {
  const allow = parseEgressAllow(opts.allow);
  const base = opts.lookup ?? (dnsLookup as unknown as LookupFunction);
  // Keep-alive pools of this fetch only: every pooled socket was opened through the checked
  // lookup below (a pool is keyed by host and port), so reusing one skips no check.
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  return (async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new FlowError('INVALID_INPUT', `url scheme ${url.protocol} is not allowed; use http or https`);
    const host = unbracket(url.hostname.toLowerCase());
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const named = allow.hosts.has(host) || allow.hostPorts.has(`${host}:${port}`);
    if (!named && isIP(host) && !addressAllowed(host, allow)) throw denied(host, host);
    const lookup: LookupFunction = (hostname, options, callback) => {
      base(hostname, options, (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
        if (err) return callback(err, '', 0);
        const list = Array.isArray(address) ? address : [{ address, family: family ?? 4 }];
        const bad = named ? undefined : list.find((a) => !addressAllowed(a.address, allow));
        if (bad) return callback(denied(host, bad.address) as unknown as NodeJS.ErrnoException, '', 0);
        if (Array.isArray(address)) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, address);
        else callback(null, address, family ?? 4);
      });
    };
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = init.body === undefined || init.body === null ? undefined : String(init.body);
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request(
        {
          protocol: url.protocol,
          hostname: host,
          port,
          path: `${url.pathname}${url.search}`,
          method: init.method ?? 'GET',
          headers,
          agent: agents[url.protocol as 'http:' | 'https:'],
          lookup,
          signal: init.signal ?? undefined,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const out = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (v === undefined) continue;
              for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
            }
            const status = res.statusCode ?? 502;
            const bytes = Buffer.concat(chunks);
            const nullBody = status === 204 || status === 205 || status === 304 || bytes.length === 0;
            try {
              resolve(new Response(nullBody ? null : bytes, { status, statusText: res.statusMessage ?? '', headers: out }));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('error', (err) => reject(err));
      req.end(body);
    });
  }) as typeof fetch;
}
