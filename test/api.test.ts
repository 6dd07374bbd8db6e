/**
 * The HTTP server (SPEC §8) on both platforms: webhooks, the JSON API, events, metrics, health.
 */

import { createHmac } from 'node:crypto';
import { get as httpGet, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { RunRecord } from '../core/types.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const ADMIN = 'admin-key-0123456789abcdef';
const TOKEN = 'super-secret-token-123';
const ENDED = ['succeeded', 'failed', 'halted', 'rejected'];

const platforms: Array<[string, () => Promise<Platform>]> = [
  ['embedded', async () => createEmbedded({ env: { TOKEN } })],
  [
    'redis',
    async () => {
      // The peer is on loopback and the scenarios read ${env:TOKEN}: both opened explicitly (SPEC §9).
      const p = await useProduction({ env: { TOKEN, FLOWMETER_TENANT_ENV: 'TOKEN', FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
      p.startWorker({ concurrency: 4 });
      return p;
    },
  ],
];

const echo = { id: 'echo', trigger: { type: 'webhook', path: 'in' }, start: 'out', nodes: [fn('out', 'return msg;')] };
const three = { id: 'three', start: 'a', nodes: [fn('a', 'return msg;', 'b'), fn('b', 'return msg;', 'c'), fn('c', 'return { payload: "done" };')] };

let peer: Peer;
beforeAll(async () => {
  peer = await startPeer();
  peer.on('GET', '/echo', (req) => ({ json: { sawAuth: req.headers.authorization } }));
  peer.on('GET', '/fail', (req) => ({ status: 500, text: `denied for ${String(req.headers.authorization)}` }));
});
afterAll(async () => {
  await peer.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Server-Sent Events client over node:http, collecting the JSON data of each message. */
function sse(url: string, headers: Record<string, string> = {}) {
  const events: Array<Record<string, unknown>> = [];
  let text = '';
  let res: IncomingMessage | null = null;
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpGet(url, { headers }, (r) => {
      res = r;
      r.setEncoding('utf8');
      let buf = '';
      r.on('data', (chunk: string) => {
        text += chunk;
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) events.push(JSON.parse(data));
        }
      });
      r.on('error', () => undefined);
      resolve(r);
    });
    req.on('error', reject);
  });
  return {
    events,
    opened,
    text: () => text,
    async until(pred: (e: Record<string, unknown>) => boolean, ms = 15_000) {
      const end = Date.now() + ms;
      while (!events.some(pred)) {
        if (Date.now() > end) throw new Error(`no such event; got ${JSON.stringify(events)}`);
        await sleep(20);
      }
      return events.find(pred)!;
    },
    close: () => (res as IncomingMessage | null)?.destroy(),
  };
}

describe.each(platforms)('HTTP API on the %s platform', (mode, make) => {
  let platform: Platform;
  let app: FastifyInstance;
  let keyA: string;
  let keyB: string;

  beforeEach(async () => {
    platform = await make();
    app = await buildServer(platform, { adminKey: ADMIN });
    keyA = await platform.keys.create('acme');
    keyB = await platform.keys.create('bravo');
  });
  afterEach(async () => {
    await app.close();
    await platform.close();
  });

  async function deploy(tenant: string, doc: Record<string, unknown>, enable = true): Promise<void> {
    await platform.scenarios.deploy(tenant, scenarioOf(doc));
    if (enable) await platform.scenarios.enable(tenant, doc.id as string, undefined);
  }
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, key?: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method,
      url,
      headers: { ...(key && { authorization: `Bearer ${key}` }), ...headers },
      ...(body !== undefined && { payload: body as object }),
    });
  const hook = (url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    app.inject({ method: 'POST', url, payload: body, headers });
  async function ended(tenant: string, runId: string): Promise<RunRecord> {
    for (const end = Date.now() + 20_000; Date.now() < end; await sleep(25)) {
      const run = await platform.runs.get(tenant, runId);
      if (run && ENDED.includes(run.status)) return run;
    }
    throw new Error(`run ${runId} did not end`);
  }
  const runCount = async (tenant: string) => (await platform.runs.list(tenant)).length;

  it('webhook: 202 { runId }, and the run ends with the payload', async () => {
    await deploy('acme', echo);
    const res = await hook('/hooks/acme/in', '{"a":1}');
    expect(res.statusCode).toBe(202);
    const { runId } = res.json();
    const run = await ended('acme', runId);
    expect(run).toMatchObject({ status: 'succeeded', actions: 2, trigger: { type: 'webhook' } });
    expect(run.outputs[0]!.payload).toEqual({ a: 1 });
  });

  it('webhook ?wait=true: the run record, with msg.headers and msg.query (never credentials)', async () => {
    await deploy('acme', echo);
    const res = await hook('/hooks/acme/in?wait=true&foo=bar', '{"n":2}', {
      'content-type': 'application/json',
      'x-custom': 'yes',
      authorization: 'Bearer nope',
      cookie: 'c=1',
    });
    expect(res.statusCode).toBe(200);
    const run = res.json();
    expect(run.status).toBe('succeeded');
    const msg = run.tasks[0].output;
    expect(msg.payload).toEqual({ n: 2 });
    expect(msg.query).toEqual({ foo: 'bar' });
    expect(msg.headers['x-custom']).toBe('yes');
    expect(msg.headers).not.toHaveProperty('authorization');
    expect(msg.headers).not.toHaveProperty('cookie');
    expect(res.body).not.toContain('nope');
    const text = await hook('/hooks/acme/in?wait=true', 'hello', { 'content-type': 'text/plain' });
    expect(text.json().outputs[0].payload).toBe('hello');
    const empty = await hook('/hooks/acme/in?wait=true', '', {});
    expect(empty.json().outputs[0].payload).toBeNull();
  });

  it('webhook HMAC: good, sha256= prefix, bad and missing signatures', async () => {
    await deploy('acme', { ...echo, id: 'signed', trigger: { type: 'webhook', secret: 'whsec_1' } });
    const body = '{"order":7}';
    const sig = createHmac('sha256', 'whsec_1').update(body).digest('hex');
    const json = { 'content-type': 'application/json' };
    expect((await hook('/hooks/acme/signed', body, { ...json, 'x-signature': sig })).statusCode).toBe(202);
    expect((await hook('/hooks/acme/signed', body, { ...json, 'x-signature': `sha256=${sig}` })).statusCode).toBe(202);
    for (const bad of <Array<Record<string, string>>>[{ 'x-signature': sig.replace(/^./, sig[0] === 'a' ? 'b' : 'a') }, { 'x-signature': 'sha256=zz' }, {}]) {
      const res = await hook('/hooks/acme/signed', body, { ...json, ...bad });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('BAD_SIGNATURE');
    }
    expect((await hook('/hooks/acme/signed', '{"order":8}', { ...json, 'x-signature': sig })).statusCode).toBe(401);
    expect(await runCount('acme')).toBe(2);
  });

  it('webhook 404s: unknown tenant or path, disabled scenario, non-webhook scenario', async () => {
    await deploy('acme', echo);
    await deploy('acme', { ...echo, id: 'off', trigger: { type: 'webhook' } }, false);
    await deploy('acme', { ...three, id: 'manual' });
    for (const url of ['/hooks/nobody/in', '/hooks/acme/nowhere', '/hooks/acme/off', '/hooks/acme/manual', '/hooks/ACME!/in']) {
      const res = await hook(url, '{}');
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    expect(await runCount('acme')).toBe(0);
  });

  it('webhook: 413 over the body limit, 400 for malformed JSON; nothing is enqueued', async () => {
    await deploy('acme', echo);
    const big = await hook('/hooks/acme/in', JSON.stringify({ x: 'y'.repeat(1024 * 1024) }));
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const bad = await hook('/hooks/acme/in', '{"a":');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'INVALID_INPUT' });
    expect(bad.body).not.toMatch(/at .*\.js|stack/);
    const small = await buildServer(platform, { bodyLimit: 100 });
    expect((await small.inject({ method: 'POST', url: '/hooks/acme/in', payload: 'z'.repeat(101) })).statusCode).toBe(413);
    await small.close();
    expect(await runCount('acme')).toBe(0);
    expect(await platform.queueDepth()).toBe(0);
  });

  it('webhook: 429 with Retry-After while the quota is exhausted; the attempt is a rejected run, nothing is enqueued', async () => {
    await deploy('acme', echo);
    await platform.ledger.setQuota('acme', { monthlyActions: 0 });
    const res = await hook('/hooks/acme/in?wait=true', '{}');
    expect(res.statusCode).toBe(429);
    expect(res.json().error.code).toBe('QUOTA_EXHAUSTED');
    const retry = Number(res.headers['retry-after']);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(31 * 86400);
    expect((await hook('/hooks/acme/in', '{}')).statusCode).toBe(429);
    const runs = (await call('GET', '/api/runs', keyA)).json() as Array<{ runId: string; status: string; actions: number; error: { code: string } }>;
    expect(runs).toHaveLength(2);
    for (const r of runs) expect(r).toMatchObject({ status: 'rejected', actions: 0, error: { code: 'QUOTA_EXHAUSTED' } });
    expect(await platform.queueDepth()).toBe(0);
    expect((await call('POST', '/api/quota/addons?tenant=acme', ADMIN, { actions: 5 })).json().remaining).toBe(5);
    expect((await hook('/hooks/acme/in', '{}')).statusCode).toBe(202);
  });

  it('API keys: 401 without or with a wrong key; admin names the tenant; tenants are isolated', async () => {
    await deploy('bravo', echo);
    const { runId } = (await hook('/hooks/bravo/in', '{}')).json();
    await ended('bravo', runId);
    for (const [key, header] of [
      [undefined, undefined],
      ['fmk_wrong', undefined],
      [undefined, 'Basic abc'],
    ] as const) {
      const res = await call('GET', '/api/runs', key, undefined, header ? { authorization: header } : {});
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    }
    expect((await call('GET', `/api/runs/${runId}`, keyA)).statusCode).toBe(404);
    expect((await call('POST', `/api/runs/${runId}/resume`, keyA)).statusCode).toBe(404);
    expect((await call('GET', '/api/scenarios/echo', keyA)).statusCode).toBe(404);
    expect((await call('GET', '/api/runs', keyA)).json()).toEqual([]);
    expect((await call('GET', '/api/runs?tenant=bravo', keyA)).statusCode).toBe(403);
    expect((await call('GET', '/api/runs', keyB)).json().map((r: RunRecord) => r.runId)).toEqual([runId]);
    expect((await call('GET', `/api/runs/${runId}`, keyB)).json()).toMatchObject({
      runId,
      status: 'succeeded',
      tasks: [{ nodeId: '$trigger' }, { nodeId: 'out' }],
    });
    expect((await call('GET', '/api/runs', ADMIN)).json().error.code).toBe('INVALID_INPUT');
    expect((await call('GET', '/api/runs?tenant=bravo&status=succeeded&scenario=echo', ADMIN)).json()).toHaveLength(1);
    expect((await call('GET', '/api/runs?tenant=bravo&status=nope', ADMIN)).statusCode).toBe(400);
    expect((await call('GET', '/api/nothing-here', keyA)).json().error.code).toBe('NOT_FOUND');
  });

  it('quota: readable by the tenant, changed by the admin only', async () => {
    expect((await call('GET', '/api/quota', keyA)).json()).toMatchObject({ monthlyActions: 500, overage: 'halt' });
    const denied = await call('PUT', '/api/quota', keyA, { monthlyActions: 10 });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('FORBIDDEN');
    expect((await call('POST', '/api/quota/addons', keyA, { actions: 5 })).statusCode).toBe(403);
    await call('PUT', '/api/quota?tenant=acme', ADMIN, { overage: 'allow' });
    const ok = await call('PUT', '/api/quota?tenant=acme', ADMIN, { monthlyActions: 10 });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ monthlyActions: 10, overage: 'allow' });
    const bad = await call('PUT', '/api/quota?tenant=acme', ADMIN, { monthlyActions: -1, bogus: 1 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.problems.length).toBeGreaterThan(0);
    const usage = (await call('GET', '/api/usage', keyA)).json();
    expect(usage).toMatchObject({ tenant: 'acme', limit: 10, used: 0, remaining: 10 });
    expect(usage).toHaveProperty('projection');
    expect((await call('GET', '/api/usage?period=2020-13', keyA)).statusCode).toBe(400);
    expect((await call('GET', '/api/usage?period=2020-01', keyA)).json().period.key).toBe('2020-01');
  });

  it('scenarios: PUT validates (400 listing problems), GET, enable past maxActiveScenarios is 409', async () => {
    const invalid = await call('PUT', '/api/scenarios/broken', keyA, { start: 'missing', nodes: [{ id: 'x', type: 'nope' }] });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().error.code).toBe('INVALID_SCENARIO');
    expect(invalid.json().error.problems.length).toBeGreaterThanOrEqual(2);
    expect((await call('PUT', '/api/scenarios/other', keyA, echo)).statusCode).toBe(400);
    const malformed = await call('PUT', '/api/scenarios/echo', keyA, '{"id":', { 'content-type': 'application/json' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('INVALID_INPUT');
    expect((await call('PUT', '/api/scenarios/echo', keyA, echo)).statusCode).toBe(201);
    expect((await call('PUT', '/api/scenarios/echo', keyA, echo)).statusCode).toBe(200);
    expect((await call('PUT', '/api/scenarios/three', keyA, { ...three, id: undefined, variables: { n: 1 } })).statusCode).toBe(201);
    expect((await call('GET', '/api/scenarios/three', keyA)).json()).toMatchObject({ scenario: { id: 'three' }, enabled: false, vars: { n: 1 } });
    expect((await call('GET', '/api/scenarios', keyA)).json().map((s: { id: string }) => s.id)).toEqual(['echo', 'three']);
    await call('PUT', '/api/quota?tenant=acme', ADMIN, { maxActiveScenarios: 1 });
    expect((await call('POST', '/api/scenarios/echo/enable', keyA)).json()).toEqual({ id: 'echo', enabled: true, warnings: [] });
    const refused = await call('POST', '/api/scenarios/three/enable', keyA);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('MAX_ACTIVE_SCENARIOS');
    expect((await call('POST', '/api/scenarios/echo/disable', keyA)).json().enabled).toBe(false);
    expect((await call('POST', '/api/scenarios/three/enable', keyA)).statusCode).toBe(200);
    expect((await call('POST', '/api/scenarios/ghost/enable', keyA)).statusCode).toBe(404);
  });

  it('trigger and resume through the API: a halted run resumes to success; 409 when not halted', async () => {
    await deploy('acme', three, false);
    await platform.ledger.setQuota('acme', { monthlyActions: 2, resumeHalted: 'manual' });
    const halted = await call('POST', '/api/scenarios/three/trigger?wait=true', keyA, { payload: { x: 1 } });
    expect(halted.statusCode).toBe(200);
    expect(halted.json()).toMatchObject({ status: 'halted', actions: 2, error: { code: 'QUOTA_EXHAUSTED' }, resumable: true });
    expect(halted.json()).not.toHaveProperty('pending');
    const runId = halted.json().runId;
    await call('PUT', '/api/quota?tenant=acme', ADMIN, { monthlyActions: 100 });
    const resumed = await call('POST', `/api/runs/${runId}/resume`, keyA);
    expect(resumed.statusCode).toBe(202);
    const run = await ended('acme', runId);
    expect(run).toMatchObject({ status: 'succeeded', actions: 4 });
    expect(run.outputs[0]!.payload).toBe('done');
    const again = await call('POST', `/api/runs/${runId}/resume`, keyA);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('RUN_NOT_HALTED');
    const queued = await call('POST', '/api/scenarios/three/trigger', keyA, { test: true });
    expect(queued.statusCode).toBe(202);
    expect((await ended('acme', queued.json().runId)).billable).toBe(false);
    expect((await call('POST', '/api/scenarios/three/trigger', keyA, { test: 'yes' })).statusCode).toBe(400);
  });

  it('SSE: task and run events of a triggered run, with the header or ?access_token', async () => {
    await deploy('acme', echo);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const denied = sse(`${base}/api/events`);
    expect((await denied.opened).statusCode).toBe(401);
    const byHeader = sse(`${base}/api/events`, { authorization: `Bearer ${keyA}` });
    const byToken = sse(`${base}/api/events?access_token=${keyA}`);
    const other = sse(`${base}/api/events?access_token=${ADMIN}&tenant=bravo`);
    for (const s of [byHeader, byToken, other]) {
      const res = await s.opened;
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    }
    const { runId } = (await hook('/hooks/acme/in', '{"live":true}')).json();
    for (const s of [byHeader, byToken]) {
      const tasks = await s.until((e) => e.type === 'tasks' && e.runId === runId);
      expect(tasks.scenarioId).toBe('echo');
      expect(await s.until((e) => e.type === 'run' && e.runId === runId)).toMatchObject({ status: 'succeeded', actions: 2 });
    }
    const seen = byHeader.events.flatMap((e) => (e.type === 'tasks' ? (e.tasks as Array<{ nodeId: string }>).map((t) => t.nodeId) : []));
    expect(seen).toEqual(['$trigger', 'out']);
    // A run's end comes after its task events (two channels in Redis, published in order).
    const order = byHeader.events.filter((e) => e.runId === runId).map((e) => e.type);
    expect(order).toEqual([...order.filter((t) => t === 'tasks'), 'run']);
    expect(other.events).toEqual([]);
    for (const s of [denied, byHeader, byToken]) s.close();
    // Closing the server ends the streams still open.
    const res = await other.opened;
    const endedStream = new Promise<void>((resolve) => res.once('close', () => resolve()));
    await app.close();
    await endedStream;
  });

  it('/metrics moves with runs; /healthz answers', async () => {
    await deploy('acme', echo);
    for (let i = 0; i < 2; i++) await hook('/hooks/acme/in?wait=true', '{}');
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    expect(text).toContain('flowmeter_runs_total{tenant="acme",scenario="echo",status="succeeded"} 2');
    expect(text).toContain('flowmeter_actions_total{tenant="acme",scenario="echo"} 4');
    expect(text).toContain('flowmeter_quota_remaining{tenant="acme"} 496');
    expect(text).toMatch(/flowmeter_queue_depth \d+/);
    expect(text).toContain('flowmeter_task_duration_seconds_count{type="function"} 2');
    expect(text).toContain('flowmeter_task_duration_seconds_count{type="webhook"} 2');
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ ok: true, mode: mode === 'embedded' ? 'embedded' : 'redis' });
  });

  it('secrets from ${env:TOKEN} appear in no API answer, event or error', async () => {
    await deploy('acme', {
      id: 'secret',
      trigger: { type: 'webhook' },
      connections: { peer: { baseUrl: peer.base, auth: { type: 'bearer', token: '${env:TOKEN}' } } },
      start: 'see',
      nodes: [
        { id: 'see', type: 'connector', connection: 'peer', method: 'GET', url: '/echo', next: 'fail' },
        { id: 'fail', type: 'connector', connection: 'peer', method: 'GET', url: '/fail', retry: { attempts: 1 } },
      ],
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const events = sse(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/events?access_token=${keyA}`);
    await events.opened;
    peer.reset();
    const answers: string[] = [];
    const res = await hook('/hooks/acme/secret?wait=true', '{}');
    answers.push(res.body);
    const { runId } = res.json();
    expect(res.json()).toMatchObject({ status: 'failed', error: { code: 'HTTP_ERROR' } });
    expect(peer.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    await events.until((e) => e.type === 'run' && e.runId === runId);
    for (const url of [`/api/runs/${runId}`, '/api/runs', '/api/scenarios/secret', '/api/scenarios', '/api/usage'])
      answers.push((await call('GET', url, keyA)).body);
    answers.push(events.text(), (await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ADMIN}` } })).body);
    for (const a of answers) expect(a).not.toContain(TOKEN);
    events.close();
  });
});

describe('healthz when the store does not answer', () => {
  it('503 with ok: false', async () => {
    const platform = createEmbedded();
    let hang = false;
    const real = platform.scenarios.tenants.bind(platform.scenarios);
    platform.scenarios.tenants = () => (hang ? new Promise<string[]>(() => undefined) : real());
    const app = await buildServer(platform, {});
    try {
      hang = true;
      const res = await app.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ ok: false, mode: 'embedded', error: { code: 'REDIS_UNAVAILABLE' } });
    } finally {
      await app.close();
      await platform.close();
    }
  });
});
