/**
 * Production-API helpers for the queue-mode phases: a production instance per phase (unique
 * key prefix), waiting for run ends, and the size of a run's checkpointed state.
 */
import { performance } from 'node:perf_hooks';
import { createProduction } from '../../dist/redis/production.js';
import { sleep } from './processes.mjs';

// ---- production helpers ------------------------------------------------------------------
const ENDED = new Set(['succeeded', 'failed', 'halted', 'rejected']);
let prefixCounter = 0;
export const uniquePrefix = (what) => `bench${process.pid}-${what}-${++prefixCounter}`;

/**
 * Run-end events of a tenant, so a caller can wait for a run it triggered (even if it ended
 * first). Pub/sub can drop messages (a subscriber over Redis's output buffer limit is
 * disconnected), so a run without its event after 3 s is polled; `missed` counts those.
 */
export async function runEnds(p, tenant) {
  const early = new Map();
  const waiting = new Map();
  const ends = { missed: 0 };
  const stop = await p.subscribe(
    tenant,
    (e) => {
      if (e.type !== 'run' || !ENDED.has(e.status)) return;
      const end = { t: performance.now(), status: e.status, actions: e.actions };
      const w = waiting.get(e.runId);
      if (w) {
        waiting.delete(e.runId);
        w(end);
      } else early.set(e.runId, end);
    },
    { runsOnly: true },
  );
  ends.stop = stop;
  ends.wait = (runId, timeoutMs = 60_000) => {
    const hit = early.get(runId);
    if (hit) {
      early.delete(runId);
      return Promise.resolve(hit);
    }
    return new Promise((res, rej) => {
      const t0 = performance.now();
      let poller = null;
      const settle = (fn) => {
        clearTimeout(timer);
        clearTimeout(poller);
        waiting.delete(runId);
        fn();
      };
      const timer = setTimeout(() => settle(() => rej(new Error(`run ${runId} did not end within ${timeoutMs} ms`))), timeoutMs);
      const poll = async () => {
        try {
          const run = await p.runs.get(tenant, runId);
          if (!waiting.has(runId)) return;
          if (run && ENDED.has(run.status)) {
            ends.missed++;
            return settle(() => res({ t: performance.now(), status: run.status, actions: run.actions, polled: true }));
          }
        } catch {
          /* try again */
        }
        if (waiting.has(runId) && performance.now() - t0 < timeoutMs) poller = setTimeout(poll, 250);
      };
      poller = setTimeout(poll, 3000);
      waiting.set(runId, (end) => settle(() => res(end)));
    });
  };
  return ends;
}

export async function openProduction(redisUrl, prefix, tenant, scenarios) {
  const p = await createProduction({ redisUrl, prefix });
  await p.ledger.setQuota(tenant, { monthlyActions: 1e9 });
  for (const s of scenarios) await p.scenarios.deploy(tenant, s);
  return p;
}

/**
 * Polls the size of a run's checkpointed state (HSTRLEN of its `state` field) through the
 * diagnostics connection `diag`; stop() → the largest seen.
 */
export function stateSize(diag, p, tenant, runId) {
  let max = 0;
  let stopped = false;
  const key = p.redisKeys.run(tenant, runId);
  const loop = (async () => {
    while (!stopped) {
      try {
        max = Math.max(max, await diag.hstrlen(key, 'state'));
      } catch {
        /* diagnostics only */
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return max;
    },
  };
}
