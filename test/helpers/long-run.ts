/**
 * A long run for tests that stop or kill worker processes mid-run: a loop of slow Connector
 * calls to a loopback peer, each call naming the worker process that sends it.
 */
import type { Production } from '../../redis/production.js';
import type { Peer } from './peer.js';
import { sleep } from './processes.js';
import { scenarioOf } from './run.js';

/** The env a worker needs for the long run: its name, and the peer opened (SPEC §9). */
export function longRunWorkerEnv(name: string): Record<string, string> {
  return { FM_TEST_WORKER: name, FLOWMETER_TENANT_ENV: 'FM_TEST_WORKER', FLOWMETER_EGRESS_ALLOW: '127.0.0.1' };
}

/** Deploys scenario `long` for `tenant` (a plentiful quota) and the peer's slow route. */
export async function deployLongRun(p: Production, tenant: string, peer: Peer, delayMs: number): Promise<void> {
  peer.on('POST', '/slow', async () => {
    await sleep(delayMs);
    return { json: { ok: true } };
  });
  await p.ledger.setQuota(tenant, { monthlyActions: 1_000_000 });
  await p.scenarios.deploy(
    tenant,
    scenarioOf({
      id: 'long',
      connections: { peer: { baseUrl: peer.base, headers: { 'x-worker': '${env:FM_TEST_WORKER}' } } },
      start: 'each',
      nodes: [
        { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'call' },
        { id: 'call', type: 'connector', connection: 'peer', method: 'POST', url: '/slow', body: { v: '{{msg.payload}}' } },
      ],
    }),
  );
}
