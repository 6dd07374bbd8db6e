/**
 * Scenario lifecycle (SPEC §12) through the HTTP API on both platforms and the command line
 * on Redis: versions, rollback, delete, replay (also of a webhook refused for quota).
 */

import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { RunRecord } from '../core/types.js';
import type { Platform } from '../engine/platform.js';
import { newRun } from '../engine/run-record.js';
import type { Production } from '../redis/production.js';
import { runCli } from './helpers/cli.js';
import { bothPlatforms, redisUrl, useProduction } from './helpers/production.js';
import { fn } from './helpers/run.js';

const ADMIN = 'admin-key-0123456789abcdef';
const ENDED = ['succeeded', 'failed', 'halted', 'rejected'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const platforms = bothPlatforms({ workerConcurrency: 2 });

/** A webhook scenario whose one node tags the payload, so a run shows which version ran. */
const doc = (tag: string) => ({
  id: 'hook',
  trigger: { type: 'webhook', path: 'in' },
  start: 'out',
  nodes: [fn('out', `return { payload: { tag: ${JSON.stringify(tag)}, got: msg.payload } };`)],
});

describe.each(platforms)('lifecycle API on the %s platform', (_mode, make) => {
  let platform: Platform;
  let app: FastifyInstance;
  let key: string;

  beforeEach(async () => {
    platform = await make();
    app = await buildServer(platform, { adminKey: ADMIN });
    key = await platform.keys.create('acme');
  });
  afterEach(async () => {
    await app.close();
    await platform.close();
  });

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(body !== undefined && { payload: body as object }) });
  async function ended(runId: string): Promise<RunRecord> {
    for (const end = Date.now() + 20_000; Date.now() < end; await sleep(25)) {
      const run = await platform.runs.get('acme', runId);
      if (run && ENDED.includes(run.status)) return run;
    }
    throw new Error(`run ${runId} did not end`);
  }

  it('versions: an unchanged PUT is a no-op, a change is the next version, runs record it; rollback appends; delete stops triggers', async () => {
    expect((await call('PUT', '/api/scenarios/hook', doc('one'))).statusCode).toBe(201);
    expect((await call('PUT', '/api/scenarios/hook', doc('one'))).json()).toMatchObject({ created: false, changed: false, version: 1 });
    expect((await call('PUT', '/api/scenarios/hook', doc('two'))).json()).toMatchObject({ changed: true, version: 2 });
    await call('POST', '/api/scenarios/hook/enable');
    const first = await app.inject({ method: 'POST', url: '/hooks/acme/in', payload: { n: 1 } });
    expect(first.statusCode).toBe(202);
    const run2 = await ended(first.json().runId);
    expect(run2).toMatchObject({ status: 'succeeded', version: 2, outputs: [{ payload: { tag: 'two', got: { n: 1 } } }] });

    const rb = await call('POST', '/api/scenarios/hook/rollback', { to: 1 });
    expect(rb.json()).toEqual({ id: 'hook', version: 3, changed: true, rollbackOf: 1 });
    const versions = (await call('GET', '/api/scenarios/hook/versions')).json() as Array<{ version: number; rollbackOf?: number }>;
    expect(versions.map((v) => [v.version, v.rollbackOf ?? null])).toEqual([
      [1, null],
      [2, null],
      [3, 1],
    ]);
    expect((await call('POST', '/api/scenarios/hook/rollback', { to: 7 })).json().error).toEqual({
      code: 'NOT_FOUND',
      message: 'scenario hook has no version 7; it has versions 1-3',
    });
    expect((await call('POST', '/api/scenarios/hook/rollback', { to: 'one' })).statusCode).toBe(400);

    // Replay: the current version (3, a copy of 1) with the original payload.
    const replay = await call('POST', `/api/runs/${run2.runId}/replay?wait=true`);
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toMatchObject({
      status: 'succeeded',
      version: 3,
      replayOf: run2.runId,
      trigger: { type: 'webhook' },
      outputs: [{ payload: { tag: 'one', got: { n: 1 } } }],
    });

    expect((await call('DELETE', '/api/scenarios/hook')).json()).toEqual({ id: 'hook', deleted: true });
    expect((await app.inject({ method: 'POST', url: '/hooks/acme/in', payload: {} })).statusCode).toBe(404);
    expect((await call('GET', '/api/scenarios')).json()).toEqual([]);
    expect((await platform.runs.get('acme', run2.runId))!.status).toBe('succeeded'); // runs stay
    const gone = await call('POST', `/api/runs/${run2.runId}/replay`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.message).toBe(`run ${run2.runId} cannot be replayed: scenario hook is no longer deployed for tenant acme`);
    expect((await call('DELETE', '/api/scenarios/hook')).statusCode).toBe(404);
  });

  it('replay: a webhook refused for quota keeps its payload and replays once actions are back; a payload not kept is a 409', async () => {
    await call('PUT', '/api/scenarios/hook', doc('one'));
    await call('POST', '/api/scenarios/hook/enable');
    await platform.ledger.setQuota('acme', { monthlyActions: 0 });
    const refused = await app.inject({ method: 'POST', url: '/hooks/acme/in?source=crm', payload: { order: 42 } });
    expect(refused.statusCode).toBe(429);
    const rejectedId = refused.json().error.runId as string;
    expect((await platform.runs.get('acme', rejectedId))!.status).toBe('rejected');

    await platform.ledger.setQuota('acme', { monthlyActions: 100 });
    const res = await call('POST', `/api/runs/${rejectedId}/replay`);
    expect(res.statusCode).toBe(202);
    expect(res.json().replayOf).toBe(rejectedId);
    const run = await ended(res.json().runId);
    expect(run).toMatchObject({ status: 'succeeded', replayOf: rejectedId, version: 1, outputs: [{ payload: { got: { order: 42 } } }] });
    expect(run.tasks[0]!.output).toMatchObject({ query: { source: 'crm' } });

    const scenario = (await platform.scenarios.get('acme', 'hook'))!;
    const dropped = { ...newRun(scenario, 'acme', { type: 'webhook' }), status: 'rejected' as const, payloadKept: false };
    await platform.runs.create(dropped, scenario, null);
    const notKept = await call('POST', `/api/runs/${dropped.runId}/replay`);
    expect(notKept.statusCode).toBe(409);
    expect(notKept.json().error.code).toBe('PAYLOAD_NOT_KEPT');
    expect((await call('POST', '/api/runs/run_nope/replay')).statusCode).toBe(404);
  });
});

describe('lifecycle on the command line (Redis)', () => {
  let p: Production;
  beforeEach(async () => {
    p = await useProduction();
  });
  afterEach(async () => {
    await p.close();
  });
  const cli = (...args: string[]) => runCli(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args]);

  it('deploy reports versions, versions lists them, rollback and delete say what they did, replay --wait runs again', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'fm-life-'));
    const file = join(dir, 'hook.json');
    writeFileSync(file, JSON.stringify(doc('one')));
    expect((await cli('scenarios', 'deploy', file, '--tenant', 'acme')).stdout).toMatch(/^deployed hook as version 1 for tenant acme/);
    expect((await cli('scenarios', 'deploy', file, '--tenant', 'acme')).stdout).toMatch(/^unchanged hook \(still version 1\) for tenant acme/);
    writeFileSync(file, JSON.stringify(doc('two')));
    expect((await cli('scenarios', 'deploy', file, '--tenant', 'acme')).stdout).toMatch(/^updated hook as version 2 for tenant acme/);
    const list = await cli('scenarios', 'versions', 'hook', '--tenant', 'acme', '--json');
    expect((JSON.parse(list.stdout) as Array<{ version: number }>).map((v) => v.version)).toEqual([1, 2]);
    expect((await cli('scenarios', 'versions', 'hook', '--tenant', 'acme')).stdout).toMatch(/^\* {3}2 /m);
    expect((await cli('scenarios', 'rollback', 'hook', '--to', '1', '--tenant', 'acme')).stdout).toBe(
      'rolled back hook for tenant acme: version 3 is a copy of version 1 and is now current\n',
    );
    const bad = await cli('scenarios', 'rollback', 'hook', '--to', '9', '--tenant', 'acme');
    expect([bad.code, bad.stderr]).toEqual([2, 'flowmeter: scenario hook has no version 9; it has versions 1-3\n']);

    // trigger --wait and replay --wait with no worker: one line at once, nothing enqueued.
    const noWorker = await cli('trigger', 'hook', '--tenant', 'acme', '--wait');
    expect(noWorker.code).toBe(1);
    expect(noWorker.stderr).toMatch(/^flowmeter: no worker is connected to the run queue.*\n$/);
    expect(await p.runs.list('acme')).toEqual([]);

    const original = await p.trigger('acme', 'hook', { n: 5 }, { type: 'manual' });
    const worker = p.startWorker({ concurrency: 1 });
    await worker.waitUntilReady();
    const replay = await cli('runs', 'replay', original.runId, '--tenant', 'acme', '--wait', '--json');
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({
      status: 'succeeded',
      version: 3,
      replayOf: original.runId,
      outputs: [{ payload: { tag: 'one', got: { n: 5 } } }],
    });

    expect((await cli('scenarios', 'delete', 'hook', '--tenant', 'acme')).stdout).toBe('deleted hook for tenant acme; its runs stay until retention\n');
    const again = await cli('runs', 'replay', original.runId, '--tenant', 'acme');
    expect([again.code, again.stderr]).toEqual([
      2,
      `flowmeter: run ${original.runId} cannot be replayed: scenario hook is no longer deployed for tenant acme\n`,
    ]);
  }, 60_000);
});
