/**
 * The supervision of an express lane thread (redis/express-lane.ts), with real worker threads
 * whose modules (test/fixtures/lane-threads/) die, fail on their way up, hang or serve: a thread
 * that dies is started again, and the main thread takes the lane when the thread cannot.
 */

import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { type ExpressLane, type ExpressThreadData, lazyExpressThread, startExpressThread } from '../redis/express-lane.js';

const entry = (name: string) => resolve('test/fixtures/lane-threads', `${name}.mjs`);
const data = (extra: Record<string, unknown> = {}) =>
  ({ options: { redisUrl: 'redis://127.0.0.1:1', prefix: 'lane-test' }, timings: {}, ...extra }) as ExpressThreadData;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, ok: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
};

/** Hooks that record what the supervisor reports; `fallback` returns a lane that records its calls. */
function recorder() {
  const ends: string[] = [];
  const errors: string[] = [];
  const fallbacks: string[] = [];
  const fallbackCalls: string[] = [];
  const lane: ExpressLane = {
    stopRuns: () => void fallbackCalls.push('stopRuns'),
    close: async () => void fallbackCalls.push('close'),
  };
  return {
    ends,
    errors,
    fallbacks,
    fallbackCalls,
    hooks: {
      onRunEnd: (run: RunRecord, _ms: number, lane: string) => ends.push(`${run.runId}:${lane}`),
      onError: (err: Error) => errors.push(err.message),
      fallback: (err: Error) => {
        fallbacks.push(err.message);
        return lane;
      },
    },
  };
}

describe('express lane thread', () => {
  it('a thread that dies is started again, and after 3 deaths the main thread takes the lane', async () => {
    const r = recorder();
    const lane = startExpressThread(data(), r.hooks, { entry: entry('dies'), restartMs: 50 });
    try {
      await until('the fallback', () => r.fallbacks.length > 0);
      // Three threads, each reported the run it ended, in the express lane.
      expect(r.ends).toHaveLength(3);
      expect(new Set(r.ends).size).toBe(3);
      for (const e of r.ends) expect(e).toMatch(/^thread-\d+:express$/);
      expect(r.fallbacks).toEqual(['the express lane thread died 3 times']);
      expect(r.errors).toContain('the express lane thread died 3 times');
      // No fourth thread is started once the main thread has the lane.
      await sleep(200);
      expect(r.ends).toHaveLength(3);
    } finally {
      await lane.close();
    }
    expect(r.fallbackCalls).toEqual(['close']);
  });

  it('a thread that fails before it takes jobs leaves the lane to the main thread at once, with its reason', async () => {
    const r = recorder();
    const lane = startExpressThread(data(), r.hooks, { entry: entry('exits-early'), restartMs: 50 });
    try {
      await until('the fallback', () => r.fallbacks.length > 0);
      expect(r.fallbacks).toEqual(['the express lane thread exited before it was ready']);
      expect(r.errors).toContain('express lane: cannot reach Redis');
      lane.stopRuns();
      expect(r.fallbackCalls).toEqual(['stopRuns']);
    } finally {
      await lane.close();
    }
  });

  it('a thread not taking jobs in time is terminated and the main thread takes the lane', async () => {
    const r = recorder();
    const beats = new Int32Array(new SharedArrayBuffer(4));
    const lane = startExpressThread(data({ beats }), r.hooks, { entry: entry('hangs'), readyMs: 300 });
    try {
      await until('the fallback', () => r.fallbacks.length > 0);
      expect(r.fallbacks).toEqual(['the express lane thread did not start within 0.3 s']);
      expect(Atomics.load(beats, 0)).toBeGreaterThan(0);
      // Terminated: it counts no more.
      await sleep(100);
      const after = Atomics.load(beats, 0);
      await sleep(200);
      expect(Atomics.load(beats, 0)).toBe(after);
    } finally {
      const t0 = Date.now();
      await lane.close();
      expect(Date.now() - t0).toBeLessThan(5000);
    }
  });

  it('stopRuns reaches a thread that takes jobs, and close waits for its answer', async () => {
    const r = recorder();
    const lane = startExpressThread(data(), r.hooks, { entry: entry('serves') });
    try {
      await until('the thread', () => r.ends.length === 1);
      lane.stopRuns();
      await until('the stop', () => r.ends.length === 2);
      expect(r.ends[1]).toMatch(/^stopped-\d+:express$/);
    } finally {
      await lane.close();
    }
    expect(r.fallbacks).toEqual([]);
    expect(r.errors).toEqual([]);
  });

  it('a closed lane does not start its thread again after a death', async () => {
    const r = recorder();
    const lane = startExpressThread(data(), r.hooks, { entry: entry('dies'), restartMs: 300 });
    await until('the first thread', () => r.ends.length === 1);
    await sleep(100); // it has died: its restart waits
    await lane.close();
    await sleep(400);
    expect(r.ends).toHaveLength(1);
    expect(r.fallbacks).toEqual([]);
  });

  it('a lazy lane starts its thread when express jobs wait, or when wanted, and only once', async () => {
    const r = recorder();
    let waiting = 0;
    let asked = 0;
    const lane = lazyExpressThread(
      data(),
      r.hooks,
      async () => {
        asked++;
        return waiting;
      },
      { entry: entry('serves'), lookMs: 30 },
    );
    try {
      await until('two looks', () => asked >= 2);
      expect(r.ends).toEqual([]); // nothing waits: no thread
      waiting = 2;
      await until('the thread', () => r.ends.length === 1);
      const looks = asked;
      lane.want(); // started already: no second thread
      await sleep(150);
      expect(r.ends).toHaveLength(1);
      expect(asked).toBe(looks); // it stopped looking
    } finally {
      await lane.close();
    }

    const wanted = recorder();
    const lane2 = lazyExpressThread(data(), wanted.hooks, async () => 0, { entry: entry('serves'), lookMs: 30 });
    try {
      lane2.want();
      await until('the wanted thread', () => wanted.ends.length === 1);
    } finally {
      await lane2.close();
    }
  });
});
