/** Failing fast when a command would wait for a run that no worker will execute. */
import type { Production } from '../../redis/production.js';
import { CliError, EXIT } from '../errors.js';

/**
 * Throws one line when no BullMQ worker is connected to the run queue: a `--wait` would
 * otherwise wait its whole timeout for nothing. Checked before anything is enqueued.
 */
export async function requireWorker(p: Production): Promise<void> {
  const count = await p.queue.queue.getWorkersCount().catch(() => null);
  if (count === 0) {
    throw new CliError('no worker is connected to the run queue, so --wait would never see the run end: start one with `flowmeter worker` (or drop --wait to only enqueue)', EXIT.failed);
  }
}
