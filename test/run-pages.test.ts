/**
 * `GET /api/runs/:id` answers with a page of the task log (the first 1,000 tasks by default,
 * `taskCount` the whole count): a run's log has one task per action, and the route read all of
 * it into the API process, up to 32 KB per task, for every request a tenant's key sent.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { Platform } from '../engine/platform.js';
import { bothPlatforms } from './helpers/production.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(bothPlatforms({ workerConcurrency: 1 }))('task log pages on the %s platform', (_mode, make) => {
  let platform: Platform;
  let app: FastifyInstance;
  let key: string;
  beforeEach(async () => {
    platform = await make();
    app = await buildServer(platform, {});
    key = await platform.keys.create('acme');
    await platform.ledger.setQuota('acme', { monthlyActions: 100_000 });
  });
  afterEach(async () => {
    await app.close();
    await platform.close();
  });
  const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

  it('the first 1,000 tasks and taskCount; taskFrom/taskLimit page on; bad values are a 400', async () => {
    await platform.scenarios.deploy('acme', {
      id: 'many',
      trigger: { type: 'manual' },
      start: 'each',
      nodes: [
        { id: 'each', type: 'loop', over: 'msg.payload', body: 'keep', maxItems: 10_000 },
        { id: 'keep', type: 'filter', when: { path: 'msg.payload', op: 'gte', value: 0 } },
      ],
    } as never);
    const { runId } = await platform.trigger(
      'acme',
      'many',
      Array.from({ length: 2500 }, (_, i) => i),
      { type: 'manual' },
    );
    let run = (await get(`/api/runs/${runId}`)).json();
    for (const end = Date.now() + 30_000; run.status !== 'succeeded' && Date.now() < end; await sleep(50)) run = (await get(`/api/runs/${runId}`)).json();
    expect(run.status).toBe('succeeded');
    const total = 1 + 1 + 2500 + 2500; // trigger, loop, its iterations, the filter in each
    expect(run.taskCount).toBe(total);
    expect(run.tasks).toHaveLength(1000);
    expect(run.tasks.map((t: { seq: number }) => t.seq).slice(0, 3)).toEqual([1, 2, 3]);

    const last = (await get(`/api/runs/${runId}?taskFrom=4500&taskLimit=1000`)).json();
    expect(last.tasks).toHaveLength(total - 4500);
    expect(last.tasks.at(-1).seq).toBe(total);
    const none = (await get(`/api/runs/${runId}?taskLimit=0`)).json();
    expect([none.tasks, none.taskCount, none.status]).toEqual([[], total, 'succeeded']);

    for (const bad of ['?taskLimit=1001', '?taskLimit=-1', '?taskFrom=x']) {
      const res = await get(`/api/runs/${runId}${bad}`);
      expect([res.statusCode, res.json().error.code], bad).toEqual([400, 'INVALID_INPUT']);
    }
  });
});
