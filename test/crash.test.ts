/**
 * A worker process SIGKILLed mid-run: its runs move to the other workers and continue from
 * their last checkpoint. Nothing is billed twice, no task is recorded twice, and a Connector
 * repeats a request only with the same Idempotency-Key.
 */
import { afterEach, describe, it } from 'vitest';
import type { Production } from '../redis/production.js';
import { workerKilledMidRun } from './helpers/crash-run.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { Processes } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';

const procs = new Processes();
let p: Production | null = null;
let peer: Peer | null = null;

afterEach(async () => {
  await procs.killAll();
  await p?.close();
  await peer?.close();
  p = null;
  peer = null;
});

describe('crash: a worker process killed mid-run', () => {
  it('continues every run on the other workers: billed once, logged once, same Idempotency-Keys', async () => {
    p = await useProduction();
    peer = await startPeer();
    // The same body runs on a Redis Cluster in cluster.test.ts.
    await workerKilledMidRun(p, peer, procs, redisUrl());
  }, 90_000);
});
