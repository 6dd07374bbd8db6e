/**
 * JSON nested thousands of levels deep, from a tenant (SPEC §10: nothing a tenant sends may
 * crash or freeze the engine): payloads, scenario documents, Function results and Connector
 * response bodies. Each was probed on the previous main: a 3,000-level payload crashed the
 * embedded run (no record, `flowmeter run` exit 1 "Maximum call stack size exceeded", the
 * webhook 500 or a run left running), a deep document answered 500 INTERNAL, and a Connector
 * response 100,000 levels deep made a production worker retry its run forever, calling the
 * peer again each second. Limits: core/json-depth.ts.
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { MAX_JSON_DEPTH, MAX_MESSAGE_DEPTH, nestsDeeper, textNestsDeeper } from '../core/json-depth.js';
import type { RunRecord } from '../core/types.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import { validateScenario } from '../scenario/validate.js';
import { runCli } from './helpers/cli.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { useProduction } from './helpers/production.js';
import { fn, runOnce, scenarioOf } from './helpers/run.js';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const depthOf = (v: unknown): number => (v === null || typeof v !== 'object' ? 0 : 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(depthOf)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('json-depth', () => {
  it('nestsDeeper and textNestsDeeper agree with the depth of any JSON value (strings with brackets and escapes included)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 7 }), (v, max) => {
        const deeper = depthOf(v) > max;
        expect(nestsDeeper(v, max)).toBe(deeper);
        expect(textNestsDeeper(JSON.stringify(v), max)).toBe(deeper);
      }),
      { numRuns: 300 },
    );
    expect(textNestsDeeper('["[[[[", "\\"[[[["]', 1)).toBe(false);
    expect(nestsDeeper(JSON.parse(nested(100_000)))).toBe(true);
    expect(textNestsDeeper(nested(100_000))).toBe(true);
  });
});

describe('deep documents and paths', () => {
  it('a scenario document nested deeper than the limit is one problem naming it; a path of more than 64 names too', () => {
    const deep = JSON.parse(`{"id":"d","start":"a","variables":{"v":${nested(5000)}},"nodes":[{"id":"a","type":"function","code":"return msg;"}]}`);
    expect(validateScenario(deep).problems).toEqual([`(document): the document nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`]);
    const long = `msg.${Array.from({ length: 65 }, () => 'a').join('.')}`;
    const r = validateScenario({
      id: 'p',
      start: 'c',
      nodes: [{ id: 'c', type: 'conversion', table: 't', path: 'msg.payload', target: long }],
      tables: { t: {} },
    });
    expect(r.problems.join('\n')).toMatch(/target: must have at most 64 names after msg or vars/);
  });

  it('flowmeter run with a payload 3,000 levels deep: exit 2, one line naming the limit', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'fm-deep-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ id: 's', start: 'a', nodes: [fn('a', 'return msg;')] }));
    writeFileSync(join(dir, 'in.json'), nested(3000));
    const r = await runCli(['run', join(dir, 's.json'), '--input', join(dir, 'in.json'), '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`flowmeter: the payload nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects\n`);
  });

  it('Function results and setVar values deeper than the message limit fail the node FUNCTION_ERROR; the message it was given passes', async () => {
    const make = (d: number) => `let x = 1; for (let i = 0; i < ${d}; i++) x = [x];`;
    const ok = await runOnce({ start: 'a', nodes: [fn('a', 'return msg;')] }, JSON.parse(nested(MAX_JSON_DEPTH)));
    expect(ok.status).toBe('succeeded');
    const wide = await runOnce({ start: 'a', nodes: [fn('a', `${make(MAX_MESSAGE_DEPTH - 1)} return { payload: x };`)] });
    expect(wide.status).toBe('succeeded');
    for (const code of [`${make(MAX_MESSAGE_DEPTH)} return { payload: x };`, `${make(MAX_MESSAGE_DEPTH + 1)} setVar('v', x); return msg;`]) {
      const run = await runOnce({ start: 'a', nodes: [fn('a', code)] });
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({
        code: 'FUNCTION_ERROR',
        message: `returned a message or set a variable that nests deeper than ${MAX_MESSAGE_DEPTH} levels of arrays and objects`,
      });
    }
  });
});

const platforms: Array<[string, () => Promise<Platform>]> = [
  ['embedded', async () => createEmbedded()],
  [
    'redis',
    async () => {
      // The peer is on loopback: opened explicitly (SPEC §9).
      const p = await useProduction({ env: { FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
      p.startWorker({ concurrency: 2 });
      return p;
    },
  ],
];

describe.each(platforms)('deep JSON from outside (%s)', (_name, make) => {
  let platform: Platform;
  let app: Awaited<ReturnType<typeof buildServer>>;
  let peer: Peer;
  beforeAll(async () => {
    peer = await startPeer();
    peer.on('GET', '/deep', () => ({ text: `{"a":${nested(100_000)}}`, headers: { 'content-type': 'application/json' } }));
    platform = await make();
    app = await buildServer(platform, { adminKey: 'admin-key-0123456789abcdef' });
  });
  afterAll(async () => {
    await app.close();
    await platform.close();
    await peer.close();
  });
  async function ended(runId: string): Promise<RunRecord> {
    for (const end = Date.now() + 15_000; Date.now() < end; await sleep(50)) {
      const run = await platform.runs.get('acme', runId);
      if (run && ['succeeded', 'failed', 'halted', 'rejected'].includes(run.status)) return run;
    }
    throw new Error(`run ${runId} did not end within 15 s`);
  }

  it('a webhook body 3,000 levels deep: 400 INVALID_INPUT naming the limit, no run, and its Idempotency-Key not taken', async () => {
    const doc = { id: 'echo', trigger: { type: 'webhook', path: 'in' }, start: 'out', nodes: [fn('out', 'return msg;')] };
    await platform.scenarios.deploy('acme', scenarioOf(doc));
    await platform.scenarios.enable('acme', 'echo', undefined);
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'k-1' };
    const res = await app.inject({ method: 'POST', url: '/hooks/acme/in', payload: `{"a":${nested(3000)}}`, headers });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: { code: 'INVALID_INPUT', message: `the payload nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects` } });
    expect(await platform.runs.list('acme')).toEqual([]);
    const again = await app.inject({ method: 'POST', url: '/hooks/acme/in', payload: '{"a":1}', headers });
    expect(again.statusCode).toBe(202);
    expect((await ended(again.json().runId)).status).toBe('succeeded');
  });

  it('a Connector response 100,000 levels deep is kept as text: the run ends once, the peer is called once', async () => {
    peer.reset();
    const doc = { id: 'dc', start: 'c', nodes: [{ id: 'c', type: 'connector', method: 'GET', url: `${peer.base}/deep`, next: 'f' }, fn('f', 'return msg;')] };
    await platform.scenarios.deploy('acme', scenarioOf(doc));
    const run = await ended((await platform.trigger('acme', 'dc', null, { type: 'manual' })).runId);
    expect(run.status).toBe('succeeded');
    expect(typeof run.outputs[0]!.payload).toBe('string');
    expect(String(run.outputs[0]!.payload).startsWith('{"a":[[[')).toBe(true);
    await sleep(500);
    expect(peer.requests).toHaveLength(1);
  });
});
