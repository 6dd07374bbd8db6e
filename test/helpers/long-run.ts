/**
 * Long runs for tests that stop or kill worker processes mid-run: loops of Connector calls to
 * a loopback peer, each call naming the worker process that sends it (header x-worker), so the
 * peer sees who sent what. Shared by worker-stop.test.ts, poison.test.ts and crash-run.ts.
 */
import type { RunRecord } from '../../core/types.js';
import type { Production } from '../../redis/production.js';
import type { Peer } from './peer.js';
import { sleep, waitUntil } from './processes.js';
import { postToPeer, scenarioOf } from './run.js';

/** A request header's value (the first, when repeated), '' when absent. */
export const header = (v: string | string[] | undefined): string => (Array.isArray(v) ? v[0]! : (v ?? ''));

/** The env a worker needs for these runs: its name, and the peer opened (SPEC §9). */
export function longRunWorkerEnv(name: string): Record<string, string> {
  return { FM_TEST_WORKER: name, FLOWMETER_TENANT_ENV: 'FM_TEST_WORKER', FLOWMETER_EGRESS_ALLOW: '127.0.0.1' };
}

/** How many requests `peer` has had from the worker process named `name` (by `longRunWorkerEnv`). */
export function sentBy(peer: Peer, name: string): number {
  return peer.requests.filter((r) => header(r.headers['x-worker']) === name).length;
}

/**
 * Deploys scenario `doc` for `tenant` (a plentiful quota), started at its node `each`, with
 * a connection `peer` to the peer whose calls name the worker process that sends them.
 */
export async function deployPeerLoop(p: Production, tenant: string, peer: Peer, doc: { id: string; nodes: unknown[] }): Promise<void> {
  await p.ledger.setQuota(tenant, { monthlyActions: 1_000_000 });
  await p.scenarios.deploy(
    tenant,
    scenarioOf({ ...doc, connections: { peer: { baseUrl: peer.base, headers: { 'x-worker': '${env:FM_TEST_WORKER}' } } }, start: 'each' }),
  );
}

/** Polls until run `runId` of `tenant` is neither running nor queued (whichever worker ends it); the run. */
export function runEnded(p: Production, tenant: string, runId: string, timeoutMs: number): Promise<RunRecord> {
  return waitUntil(
    'the run to end',
    async () => {
      const r = await p.runs.get(tenant, runId);
      return r && r.status !== 'running' && r.status !== 'queued' ? r : null;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Deploys scenario `long` for `tenant` (a plentiful quota): a loop of calls to the peer's slow route, added here. */
export async function deployLongRun(p: Production, tenant: string, peer: Peer, delayMs: number): Promise<void> {
  peer.on('POST', '/slow', async () => {
    await sleep(delayMs);
    return { json: { ok: true } };
  });
  await deployPeerLoop(p, tenant, peer, {
    id: 'long',
    nodes: [{ id: 'each', type: 'loop', over: 'msg.payload.items', body: 'call' }, postToPeer('call', '/slow', { v: '{{msg.payload}}' })],
  });
}
