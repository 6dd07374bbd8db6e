/**
 * The express lane's thread (express-lane.ts): a production platform of its own that executes
 * the express queue's runs and reports each run it ends to the main thread. Messages from the
 * main thread: 'stopRuns' (as a worker told to stop), 'close'.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ExpressThreadData, LaneMessage } from './express-lane.js';
import { createProduction } from './production.js';

const port = parentPort;
if (!port) throw new Error('express-thread.ts runs as a worker thread (express-lane.ts starts it)');
const send = (m: LaneMessage): void => port.postMessage(m);
const { options, timings } = workerData as ExpressThreadData;

try {
  const p = await createProduction({
    ...options,
    persistent: true,
    // The lane runs one run at a time: one sandbox host, started on its first Function.
    sandbox: { ...options.sandbox, size: 1 },
    onRunEnd: (run, ms) => send({ type: 'end', run, ms }),
    onAlert: (alert) => send({ type: 'alert', alert }),
  });
  const lane = p.startExpressLane(timings);
  lane.on('error', () => undefined); // Redis away: BullMQ retries; the main thread's worker says so
  port.on('message', (m: unknown) => {
    if (m === 'stopRuns') p.stopRuns();
    else if (m === 'close') void p.close().finally(() => send({ type: 'closed' }));
  });
  await lane.waitUntilReady();
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'failed', message: (err as Error).message });
  process.exit(1);
}
