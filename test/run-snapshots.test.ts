/**
 * A run's scenario on Redis (redis/scenario-snapshots.ts): runs keep a reference to the version
 * they were created from, not a copy of the document, and execute that version even when a
 * newer one is deployed before they start; runs written with a copy still execute; a worker's
 * cache of versions is bounded by bytes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import type { Production } from '../redis/production.js';
import { ScenarioSnapshots } from '../redis/scenario-snapshots.js';
import { useProduction } from './helpers/production.js';
import { fn } from './helpers/run.js';

const ENDED = ['succeeded', 'failed', 'halted', 'rejected'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A manual scenario whose one node tags the payload; `padding` makes the document large. */
const doc = (tag: string, padding = 0) => ({
  id: 'big',
  trigger: { type: 'manual' },
  start: 'out',
  nodes: [
    // Deployed here without validation, so without the schema's defaults: a generous timeout.
    { ...fn('out', `return { payload: { tag: ${JSON.stringify(tag)} } };`), timeoutMs: 10_000, memoryMb: 64 },
    { id: 'note', type: 'comment', text: 'x'.repeat(padding) },
  ],
});

describe('run snapshots on Redis', () => {
  let p: Production | null = null;
  afterEach(async () => {
    await p?.close();
    p = null;
  });

  async function ended(runId: string): Promise<RunRecord> {
    for (const end = Date.now() + 20_000; Date.now() < end; await sleep(25)) {
      const run = await p!.runs.get('acme', runId);
      if (run && ENDED.includes(run.status)) return run;
    }
    throw new Error(`run ${runId} did not end`);
  }
  const stored = (runId: string) => p!.redis.hget(p!.redisKeys.run('acme', runId), 'scenario');

  it('a run of a 300 KB scenario stores a reference, not the document, and runs the version it was created from', async () => {
    p = await useProduction();
    await p.ledger.setQuota('acme', { monthlyActions: 1000 });
    await p.scenarios.deploy('acme', doc('one', 300_000) as never);
    const first = await p.trigger('acme', 'big', { n: 1 }, { type: 'manual' });
    await p.scenarios.deploy('acme', doc('two', 300_000) as never);
    const second = await p.trigger('acme', 'big', { n: 2 }, { type: 'manual' });
    // Before any worker: each run hash holds a few bytes for its scenario.
    expect(await stored(first.runId)).toBe('@1');
    expect(await stored(second.runId)).toBe('@2');
    const bytes = Number(await p.redis.memory('USAGE', p.redisKeys.run('acme', first.runId)));
    expect(bytes).toBeLessThan(10_000);

    p.startWorker({ concurrency: 2 });
    const [a, b] = [await ended(first.runId), await ended(second.runId)];
    expect(a, JSON.stringify(a.error)).toMatchObject({ status: 'succeeded', version: 1, outputs: [{ payload: { tag: 'one' } }] });
    expect(b, JSON.stringify(b.error)).toMatchObject({ status: 'succeeded', version: 2, outputs: [{ payload: { tag: 'two' } }] });
  });

  it('a run whose hash holds the document itself (written before references) still executes it', async () => {
    p = await useProduction();
    await p.ledger.setQuota('acme', { monthlyActions: 1000 });
    await p.scenarios.deploy('acme', doc('one') as never);
    const run = await p.trigger('acme', 'big', {}, { type: 'manual' });
    await p.redis.hset(p.redisKeys.run('acme', run.runId), 'scenario', JSON.stringify(doc('copied')));
    p.startWorker({ concurrency: 1 });
    expect(await ended(run.runId)).toMatchObject({ status: 'succeeded', outputs: [{ payload: { tag: 'copied' } }] });
  });

  it("a worker's cache of versions is bounded by bytes: the least recently used goes first", async () => {
    p = await useProduction();
    for (const tag of ['one', 'two', 'three']) await p.scenarios.deploy('acme', doc(tag, 1000) as never);
    const entries = await p.redis.lrange(p.redisKeys.scenarioVersions('acme', 'big'), 0, -1);
    const cache = new ScenarioSnapshots(p.redis, p.redisKeys, 2 * Math.max(...entries.map((e) => e.length))); // two versions' worth
    const tagOf = async (field: string) => ((await cache.read('acme', 'big', field)).nodes[0] as unknown as { code: string }).code.match(/tag: "(\w+)"/)?.[1];
    expect(await tagOf('@1')).toBe('one');
    expect(await tagOf('@2')).toBe('two');
    expect(await tagOf('@1')).toBe('one'); // used again: now the most recent
    await p.redis.del(p.redisKeys.scenarioVersions('acme', 'big'));
    // With the versions list gone, only the cache answers.
    expect(await tagOf('@2')).toBe('two');
    expect(await tagOf('@1')).toBe('one');
    await expect(cache.read('acme', 'big', '@3')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A small document inline: over the bound, so @2, the least recently used, goes.
    expect(await tagOf(JSON.stringify(doc('inline', 100)))).toBe('inline');
    await expect(cache.read('acme', 'big', '@2')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await tagOf('@1')).toBe('one');
  });
});
