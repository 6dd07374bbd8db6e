/**
 * A worker process SIGKILLed mid-run: its runs move to the other workers and continue from
 * their last checkpoint. Nothing is billed twice, no task is recorded twice, and a Connector
 * repeats a request only with the same Idempotency-Key.
 */
import { describe, it } from 'vitest';
import { workerKilledMidRun } from './helpers/crash-run.js';
import { useFaultPlatform } from './helpers/faults.js';
import { redisUrl } from './helpers/production.js';

const { procs, production, peer } = useFaultPlatform();

describe('crash: a worker process killed mid-run', () => {
  it('continues every run on the other workers: billed once, logged once, same Idempotency-Keys', async () => {
    const p = await production();
    // The same body runs on a Redis Cluster in cluster.test.ts.
    await workerKilledMidRun(p, await peer(), procs, redisUrl());
  }, 90_000);
});
