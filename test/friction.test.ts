/**
 * Friction a new user met (issue 15), each fixed and checked through a run, the API or the
 * command line.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import type { Production } from '../redis/production.js';
import { validateScenario } from '../scenario/validate.js';
import { runCli } from './helpers/cli.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, payloads, runOnce, scenarioOf } from './helpers/run.js';

let peer: Peer;
beforeAll(async () => {
  peer = await startPeer();
  peer.on('POST', '/orders', () => ({ status: 422, json: { error: 'sku XY-1 is unknown', token: 'tok-secret-77' } }));
  peer.on('GET', '/huge', () => ({ status: 500, text: 'x'.repeat(10_000) }));
});
afterAll(async () => {
  await peer.close();
});

/** Writes scenario `s` (a manual trigger, `start` and `nodes`) as JSON to a fresh temporary file; its path. */
function scenarioFile(start: string, nodes: unknown[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'fm-fr-')), 's.json');
  writeFileSync(file, JSON.stringify({ id: 's', trigger: { type: 'manual' }, start, nodes }));
  return file;
}

type App = Awaited<ReturnType<typeof buildServer>>;
/**
 * `use` with an embedded platform and its API (both closed afterwards), and `deploy`, which
 * deploys and enables for tenant acme a webhook scenario `id` that outputs its message.
 */
async function withWebhooks(
  use: (app: App, platform: Embedded, deploy: (id: string, trigger?: Record<string, unknown>) => Promise<void>) => Promise<void>,
): Promise<void> {
  const platform = createEmbedded();
  const app = await buildServer(platform, {});
  const deploy = async (id: string, trigger: Record<string, unknown> = {}) => {
    await platform.scenarios.deploy('acme', scenarioOf({ id, trigger: { type: 'webhook', ...trigger }, start: 'out', nodes: [fn('out', 'return msg;')] }));
    await platform.scenarios.enable('acme', id, undefined);
  };
  try {
    await use(app, platform, deploy);
  } finally {
    await app.close();
    await platform.close();
  }
}

describe('a Connector HTTP error keeps its status and body for a Catch', () => {
  const doc = (url: string) => ({
    connections: { api: { baseUrl: peer.base, auth: { type: 'bearer', token: '${env:API_TOKEN}' } } },
    start: 'call',
    nodes: [
      { id: 'call', type: 'connector', connection: 'api', method: url === '/orders' ? 'POST' : 'GET', url, retry: { attempts: 1 } },
      { id: 'oops', type: 'catch', next: 'out' },
      fn('out', 'return { payload: msg.error };'),
    ],
  });

  it('puts status and the (redacted) body at msg.error', async () => {
    const run = await runOnce(doc('/orders'), { sku: 'XY-1' }, { env: { API_TOKEN: 'tok-secret-77' } });
    expect(run.status).toBe('succeeded');
    const error = run.outputs[0]!.payload as { code: string; status: number; body: string; nodeId: string };
    expect(error).toMatchObject({ nodeId: 'call', code: 'HTTP_ERROR', status: 422 });
    expect(JSON.parse(error.body)).toEqual({ error: 'sku XY-1 is unknown', token: '[redacted]' });
    expect(JSON.stringify(run)).not.toContain('tok-secret-77');
  });

  it('caps the body at 4096 characters with a marker', async () => {
    const run = await runOnce(doc('/huge'), null, { env: { API_TOKEN: 't' } });
    const error = run.outputs[0]!.payload as { status: number; body: string };
    expect(error.status).toBe(500);
    expect(error.body).toBe(`${'x'.repeat(4096)}…[truncated]`);
  });
});

describe('on the command line and the API', () => {
  it('--redis with another scheme says it is not a redis:// URL', async () => {
    const r = await runCli(['--redis', 'http://localhost:6379', 'usage']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'flowmeter: --redis "http://localhost:6379" is not a redis:// or redis-cluster:// URL (a http:// URL); write redis://host:6379, rediss://host:6380 or redis-cluster://host:7000,host:7001\n',
    );
  });

  it('a form-encoded webhook body arrives as an object', async () => {
    await withWebhooks(async (app, _platform, deploy) => {
      await deploy('form');
      const res = await app.inject({
        method: 'POST',
        url: '/hooks/acme/form?wait=true',
        payload: 'name=Ada+L&tag=a&tag=b&__proto__=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().outputs[0].payload).toEqual({ name: 'Ada L', tag: ['a', 'b'], ['__proto__']: 'x' });
    });
  });
});

describe('runs resume with no actions left (Redis)', () => {
  let p: Production;
  beforeEach(async () => {
    p = await useProduction();
  });
  afterEach(async () => {
    await p.close();
  });

  it('usage and quota refuse an unknown tenant with a suggestion; quota set creates one only with --create', async () => {
    const cli = (...args: string[]) => runCli(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args]);
    await p.scenarios.deploy('acme', scenarioOf({ id: 'one', start: 'f', nodes: [fn('f', 'return msg;')] }));
    const typo = await cli('usage', '--tenant', 'acmee');
    expect([typo.code, typo.stderr]).toEqual([2, 'flowmeter: no tenant "acmee"; did you mean "acme"?\n']);
    const set = await cli('quota', 'set', '--tenant', 'bravo', '--monthly', '10');
    expect([set.code, set.stderr]).toEqual([2, 'flowmeter: no tenant "bravo" (pass --create to create it)\n']);
    expect(await p.redis.exists(p.redisKeys.quota('bravo'))).toBe(0);
    const created = await cli('quota', 'set', '--tenant', 'bravo', '--monthly', '10', '--create');
    expect(JSON.parse(created.stdout)).toMatchObject({ tenant: 'bravo', monthlyActions: 10 });
    expect(JSON.parse((await cli('usage', '--tenant', 'bravo', '--json')).stdout)).toMatchObject({ tenant: 'bravo', limit: 10 });
    expect(JSON.parse((await cli('quota', 'show', '--tenant', 'acme')).stdout)).toMatchObject({ tenant: 'acme' });
  });

  it('is refused up front with how many actions are missing, and adds no second halted row', async () => {
    await p.scenarios.deploy(
      'acme',
      scenarioOf({ id: 'three', start: 'a', nodes: [fn('a', 'return msg;', 'b'), fn('b', 'return msg;', 'c'), fn('c', 'return msg;')] }),
    );
    await p.ledger.setQuota('acme', { monthlyActions: 2 });
    p.startWorker({ concurrency: 1 });
    const { runId } = await p.trigger('acme', 'three', null, { type: 'manual' });
    let run = (await p.runs.get('acme', runId))!;
    for (const end = Date.now() + 20_000; run.status !== 'halted' && Date.now() < end; run = (await p.runs.get('acme', runId))!)
      await new Promise((r) => setTimeout(r, 25));
    expect(run.status).toBe('halted');
    const r = await runCli(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, 'runs', 'resume', run.runId, '--tenant', 'acme']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `flowmeter: run ${run.runId} would halt again: tenant acme has 0 actions left in ${(await p.ledger.usage('acme', new Date())).period.key} and the run needs at least 1 more; add some with \`flowmeter quota add --tenant acme --actions N\`\n`,
    );
    const runs = await p.runs.list('acme');
    expect(runs.map((x) => [x.runId, x.status])).toEqual([[run.runId, 'halted']]);
    expect((await p.runs.get('acme', run.runId))!.tasks.filter((t) => t.status === 'halted')).toHaveLength(1);
  }, 30_000);
});

describe('run prints outputs and log() lines, --verbose the inputs; Function errors name the line', () => {
  it('through `flowmeter run FILE`', async () => {
    const file = scenarioFile('f', [fn('f', 'log("saw", msg.payload.n);\nreturn { payload: { doubled: msg.payload.n * 2 } };')]);
    const r = await runCli(['run', file, '--payload', '{"n":21}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('\nlogs:\n  [f] saw 21\n');
    expect(r.stdout).toContain('\noutputs:\n  1. {"doubled":42}\n');
    expect(r.stdout).not.toContain('inputs:');
    const v = await runCli(['run', file, '--payload', '{"n":21}', '--verbose']);
    expect(v.stdout).toContain('\npayload: {"n":21}\n');
    expect(v.stdout).toMatch(/\ninputs:\n {2}2 f: \{"payload":\{"n":21\}\}\n/);

    const failing = scenarioFile('f', [fn('f', 'const a = 1;\nreturn msg.payload.missing.deeper;')]);
    const bad = await runCli(['run', failing, '--payload', '{}']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("FUNCTION_ERROR: at line 2: TypeError: Cannot read properties of undefined (reading 'deeper')");
  });
});

describe('estimate --items above a loop maxItems', () => {
  it('counts that loop at maxItems and says so on stderr, naming the loop', async () => {
    const file = scenarioFile('each', [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'f', maxItems: 5 }, fn('f', 'return msg;')]);
    const r = await runCli(['estimate', file, '--items', '50']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('warning: loop `each` takes at most 5 items (maxItems; more fail with LOOP_TOO_LARGE): counted at 5, not 50\n');
    // trigger + loop + 5 × (iteration + f)
    expect(r.stdout).toMatch(/^s: 2 to 12 actions per run/);
    const json = JSON.parse((await runCli(['estimate', file, '--items', '50', '--json'])).stdout);
    expect(json.perRun).toEqual({ min: 2, max: 12 });
    expect(json.warnings).toHaveLength(1);
    expect((await runCli(['estimate', file, '--items', '5'])).stderr).toBe('');
  });
});

describe('Loop collect: { into } keeps the payload', () => {
  const doc = (collect: unknown, over = 'msg.payload.items') => ({
    start: 'each',
    nodes: [
      { id: 'each', type: 'loop', over, body: 'double', next: 'out', collect },
      fn('double', 'return { payload: msg.payload * 2 };'),
      fn('out', 'return msg;'),
    ],
  });

  it('writes the collected payloads at the path; the rest of the message stays', async () => {
    const run = await runOnce(doc({ into: 'msg.payload.lines' }), { order: 7, items: [1, 2, 3] });
    expect(run.status).toBe('succeeded');
    expect(payloads(run)).toEqual([{ order: 7, items: [1, 2, 3], lines: [2, 4, 6] }]);
  });

  it('collect: true still replaces the payload', async () => {
    const run = await runOnce(doc(true), { order: 7, items: [1, 2, 3] });
    expect(payloads(run)).toEqual([[2, 4, 6]]);
  });

  it('a path that cannot be written fails the loop before any iteration; a path outside msg is invalid', async () => {
    const run = await runOnce(doc({ into: 'msg.payload.lines' }, 'msg.payload'), [1, 2]);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ nodeId: 'each', code: 'PATH_NOT_WRITABLE' });
    expect(run.tasks.filter((t) => t.nodeId === 'double')).toEqual([]);
    const bad = validateScenario({ id: 'x', trigger: { type: 'manual' }, ...doc({ into: 'vars.lines' }) });
    expect(bad.problems).toEqual(['nodes[0].collect.into: must be a path under msg, like msg.payload.total']);
  });
});

describe('GET webhooks where the scenario lists GET in trigger.methods', () => {
  it('takes the query as the payload; 405 with Allow where the method is not listed; HEAD starts nothing', async () => {
    await withWebhooks(async (app, platform, deploy) => {
      await deploy('both', { methods: ['GET', 'POST'] });
      await deploy('post', {});
      await deploy('getonly', { methods: ['GET'], secret: 'k3y' });

      const got = await app.inject({ method: 'GET', url: '/hooks/acme/both?wait=true&name=Ada&tag=a&tag=b' });
      expect(got.statusCode, got.body).toBe(200);
      expect(got.json().outputs[0].payload).toEqual({ name: 'Ada', tag: ['a', 'b'] });
      expect((await app.inject({ method: 'POST', url: '/hooks/acme/both?wait=true', payload: { n: 1 } })).json().outputs[0].payload).toEqual({ n: 1 });

      const refused = await app.inject({ method: 'GET', url: '/hooks/acme/post?x=1' });
      expect(refused.statusCode).toBe(405);
      expect(refused.headers.allow).toBe('POST');
      expect(refused.json()).toEqual({
        error: { code: 'METHOD_NOT_ALLOWED', message: '/hooks/acme/post accepts POST, not GET (list GET in trigger.methods to allow it)' },
      });
      const notPost = await app.inject({ method: 'POST', url: '/hooks/acme/getonly', payload: {} });
      expect([notPost.statusCode, notPost.headers.allow]).toEqual([405, 'GET']);
      expect((await app.inject({ method: 'HEAD', url: '/hooks/acme/both?x=1' })).statusCode).toBe(404);

      // A signed GET signs the query string.
      const query = 'wait=true&order=7';
      const unsigned = await app.inject({ method: 'GET', url: `/hooks/acme/getonly?${query}` });
      expect(unsigned.statusCode).toBe(401);
      const sig = createHmac('sha256', 'k3y').update(query).digest('hex');
      const signed = await app.inject({ method: 'GET', url: `/hooks/acme/getonly?${query}`, headers: { 'x-signature': sig } });
      expect(signed.statusCode, signed.body).toBe(200);
      expect(signed.json().outputs[0].payload).toEqual({ order: '7' });
      // Three runs started: the two on `both` and the signed one; none by the refusals or HEAD.
      expect(await platform.runs.list('acme')).toHaveLength(3);
    });
  });

  it('validation: methods lists GET and POST only', () => {
    const bad = validateScenario({ id: 'x', trigger: { type: 'webhook', methods: ['PUT'] }, start: 'a', nodes: [fn('a', 'return msg;')] });
    expect(bad.problems).toHaveLength(1);
    expect(bad.problems[0]).toMatch(/^trigger\.methods\[0\]: /);
  });
});
