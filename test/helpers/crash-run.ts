/**
 * A worker process SIGKILLed mid-run (SPEC §5): its runs continue on the other workers from
 * their last checkpoint, billed once, logged once, with the same Idempotency-Keys. Shared by
 * crash.test.ts (one Redis) and cluster.test.ts (a Redis Cluster).
 */
import { expect } from 'vitest';
import type { RunRecord, RunStatus } from '../../core/types.js';
import type { Production } from '../../redis/production.js';
import { deployPeerLoop, header, longRunWorkerEnv, sentBy } from './long-run.js';
import type { Peer } from './peer.js';
import { type Proc, type Processes, waitUntil } from './processes.js';
import { fn, postToPeer } from './run.js';

const ENDED: RunStatus[] = ['succeeded', 'failed', 'halted', 'rejected'];
const ITEMS = 100;
const RUNS = 40;
/** trigger + loop + 100 × (iteration + work + call) + sum */
const ACTIONS = 1 + 1 + ITEMS * 3 + 1;
const taskSum = (run: RunRecord): number => run.tasks.reduce((a, t) => a + t.actions, 0);

/** Runs the crash scenario on `p` (its Redis is `redisUrl`) with worker processes of `procs`. */
export async function workerKilledMidRun(p: Production, peer: Peer, procs: Processes, redisUrl: string): Promise<void> {
  peer.on('POST', '/echo', (req) => ({ json: { v: (req.body as { v: number }).v * 10 } }));
  const tenant = 'acme';
  const prefix = p.redisKeys.prefix;
  // Each worker process names itself in a header, so the peer sees who sent what.
  await deployPeerLoop(p, tenant, peer, {
    id: 'crashy',
    nodes: [
      { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'work', collect: true, next: 'sum' },
      fn('work', 'let x = 0; for (let i = 0; i < 20000; i++) x = (x + i * 31) % 7919; return { payload: { v: msg.payload, x } };', 'call'),
      postToPeer('call', '/echo', { v: '{{msg.payload.v}}' }, { retry: { attempts: 5, backoffMs: 50 } }),
      fn('sum', 'return { payload: msg.payload.reduce((a, b) => a + b.v, 0) };'),
    ],
  });
  const workerName = (i: number) => `fmtestworker${i}x${prefix}`;
  const start = (i: number): Promise<Proc> =>
    procs.worker({
      redisUrl: redisUrl,
      prefix,
      concurrency: 4,
      lockMs: 2000,
      env: longRunWorkerEnv(workerName(i)),
      name: `worker${i}`,
    });
  const workers = await Promise.all([0, 1, 2].map(start));

  const payload = (i: number) => ({ items: Array.from({ length: ITEMS }, (_, k) => k + i) });
  const runs = await Promise.all(Array.from({ length: RUNS }, (_, i) => p.trigger(tenant, 'crashy', payload(i), { type: 'manual' })));
  const t0 = Date.now();

  // Kill worker 0 once every worker is well into its runs.
  await waitUntil('every worker to be under way', () => [0, 1, 2].every((i) => sentBy(peer, workerName(i)) >= 150), { timeoutMs: 30_000, intervalMs: 20 });
  const victim = workers[0]!;
  const exit = await victim.stop('SIGKILL');
  expect(exit.signal).toBe('SIGKILL');
  const killedAt = Date.now();
  const inFlight = (await p.runs.list(tenant, { limit: 1000 })).filter((r) => r.status === 'running').length;
  await start(3);

  const counts: Record<string, number> = {};
  await waitUntil(
    `all ${RUNS} runs to end`,
    async () => {
      const list = await p.runs.list(tenant, { limit: 1000 });
      for (const k of Object.keys(counts)) delete counts[k];
      for (const r of list) counts[r.status] = (counts[r.status] ?? 0) + 1;
      return list.length === RUNS && list.every((r) => ENDED.includes(r.status));
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; runs by status ${JSON.stringify(counts)}`);
  });
  const ended = Date.now();

  const records = await Promise.all(runs.map(async (r) => (await p.runs.get(tenant, r.runId))!));
  const byRun = new Map<string, typeof peer.requests>();
  for (const req of peer.requests) {
    const key = header(req.headers['idempotency-key']);
    const runId = key.slice(0, key.indexOf(':'));
    let list = byRun.get(runId);
    if (!list) byRun.set(runId, (list = []));
    list.push(req);
  }
  let repeated = 0;
  let takenOver = 0;
  for (const [i, run] of records.entries()) {
    expect(run.status, `${run.runId}: ${JSON.stringify(run.error)}`).toBe('succeeded');
    expect(run.actions).toBe(ACTIONS);
    expect(taskSum(run)).toBe(ACTIONS);
    const seqs = run.tasks.map((t) => t.seq);
    expect(new Set(seqs).size, `${run.runId} has a task recorded twice`).toBe(seqs.length);
    expect(seqs).toEqual(Array.from({ length: ACTIONS }, (_, k) => k + 1));
    expect(run.outputs.map((m) => m.payload)).toEqual([payload(i).items.reduce((a, v) => a + v * 10, 0)]);

    // Connector: the distinct keys the peer saw are exactly the connector tasks of the log.
    const calls = run.tasks.filter((t) => t.nodeId === 'call');
    expect(calls).toHaveLength(ITEMS);
    const sent = byRun.get(run.runId) ?? [];
    const keys = new Set(sent.map((r) => header(r.headers['idempotency-key'])));
    expect([...keys].sort()).toEqual(calls.map((t) => `${run.runId}:${t.seq}`).sort());
    repeated += sent.length - keys.size;
    // A repeated key carries the same request.
    const bodyOf = new Map<string, string>();
    for (const r of sent) {
      const k = header(r.headers['idempotency-key']);
      if (bodyOf.has(k)) expect(r.raw).toBe(bodyOf.get(k));
      else bodyOf.set(k, r.raw);
    }
    const senders = new Set(sent.map((r) => header(r.headers['x-worker'])));
    if (senders.has(workerName(0)) && senders.size > 1) takenOver++;
  }
  // The killed worker had runs in flight, and other workers finished them.
  expect(takenOver).toBeGreaterThan(0);
  const used = (await p.ledger.usage(tenant, new Date())).used;
  expect(used).toBe(records.reduce((a, r) => a + taskSum(r), 0));
  expect(used).toBe(RUNS * ACTIONS);
  console.log(
    `crash: killed after ${killedAt - t0} ms with ${inFlight} runs running; ${takenOver} runs taken over; ${repeated} repeated requests; all ended ${ended - killedAt} ms after the kill`,
  );
}
