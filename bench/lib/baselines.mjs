/**
 * The raw baselines Flowmeter is measured against in the same run: EVALSHA round trips, raw
 * BullMQ jobs, and a bare isolated-vm function.
 */
import { performance } from 'node:perf_hooks';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import ivm from 'isolated-vm';
import { closedLoop } from './loops.mjs';

/** Raw Redis: EVALSHA of `return 1` from one ioredis client; `inflight` calls at once. */
export async function evalshaClient(redisUrl) {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: null });
  r.on('error', () => undefined);
  r.defineCommand('benchNoop', { numberOfKeys: 0, lua: 'return 1' });
  await r.benchNoop(); // loads the script: every later call is an EVALSHA
  return {
    slice: (inflight, ms) =>
      closedLoop({
        inflight,
        warmMs: Math.min(250, ms / 4),
        measureMs: ms,
        launch: async () => {
          await r.benchNoop();
          return { t: performance.now() };
        },
      }),
    close: () => r.disconnect(),
  };
}
export async function evalshaRate(redisUrl, { inflight, ms }) {
  const c = await evalshaClient(redisUrl);
  try {
    return (await c.slice(inflight, ms)).perSec;
  } finally {
    c.close();
  }
}

/** Raw BullMQ in this process: a Queue (adding, with Flowmeter's job options) and QueueEvents (completions). */
export async function rawBull(redisUrl, prefix, log) {
  const conn = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const evConn = new Redis(redisUrl, { maxRetriesPerRequest: null });
  conn.on('error', () => undefined);
  evConn.on('error', () => undefined);
  const queue = new Queue('runs', { connection: conn, prefix });
  // The prefix is new: read its event stream from the start, so no completion is missed
  // between waitUntilReady and the first XREAD.
  const events = new QueueEvents('runs', { connection: evConn, prefix, lastEventId: '0-0' });
  queue.on('error', () => undefined);
  events.on('error', (e) => log(`queue events error: ${e.message}`));
  await queue.waitUntilReady();
  await events.waitUntilReady();
  const early = new Map();
  const waiting = new Map();
  let seen = 0;
  events.on('completed', ({ jobId }) => {
    seen++;
    const t = performance.now();
    const w = waiting.get(jobId);
    if (w) {
      waiting.delete(jobId);
      w(t);
    } else early.set(jobId, t);
  });
  let n = 0;
  return {
    /** Adds one no-op job and resolves when its completion is seen. */
    async job(timeoutMs = 30_000) {
      const jobId = `j${++n}-${Math.random().toString(36).slice(2, 8)}`;
      const ended = new Promise((res, rej) => {
        const timer = setTimeout(() => {
          void queue
            .getJobCounts()
            .then(
              (c) =>
                rej(
                  new Error(
                    `bullmq job ${jobId} did not complete within ${timeoutMs} ms (jobs: ${JSON.stringify(c)}, events seen ${seen}, early ${early.size}, waiting ${waiting.size})`,
                  ),
                ),
              rej,
            );
        }, timeoutMs);
        waiting.set(jobId, (t) => {
          clearTimeout(timer);
          res(t);
        });
      });
      await queue.add(
        'start',
        { tenant: 'bench', runId: jobId },
        { jobId, removeOnComplete: true, removeOnFail: 1000, attempts: 1000, backoff: { type: 'fixed', delay: 1000 } },
      );
      const hit = early.get(jobId);
      if (hit !== undefined) {
        early.delete(jobId);
        waiting.delete(jobId);
        return hit;
      }
      return ended;
    },
    async close() {
      await events.close();
      await queue.close();
      conn.disconnect();
      evConn.disconnect();
    },
  };
}

/** A bare isolated-vm function: same isolate settings, same timeout option, same JSON in/out. */
export function bareIsolate(code, memoryMb = 64, timeoutMs = 1000) {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  const context = isolate.createContextSync();
  const script = isolate.compileScriptSync(`(function () {
    const parse = JSON.parse, stringify = JSON.stringify;
    const fn = Function('msg', 'vars', 'setVar', 'log', ${JSON.stringify(`"use strict";\n${code}\n`)});
    const noop = () => {};
    return (msgJson, varsJson) => stringify(fn(parse(msgJson), parse(varsJson), noop, noop));
  })()`);
  const ref = script.runSync(context, { reference: true, timeout: 10_000 });
  script.release();
  const opt = { timeout: timeoutMs };
  return {
    call: (msg, vars) => JSON.parse(ref.applySync(undefined, [JSON.stringify(msg), JSON.stringify(vars)], opt)),
    dispose: () => isolate.dispose(),
  };
}
