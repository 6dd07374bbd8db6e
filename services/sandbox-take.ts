/**
 * What an idle sandbox host takes next from the pool's queue (`sandbox-pool.ts`): the queue's
 * discipline, apart from the processes.
 *
 * - A message to a host carries the calls of ONE tenant. A host runs a message's calls one after
 *   another, so a call behind another tenant's long Function (up to 30 s each) would wait for it
 *   however many hosts stood idle.
 * - A tenant's messages occupy at most `tenantCap` hosts at once (the pool's `size + spareHosts`,
 *   and it may start one host more): a tenant whose Functions all compute for seconds leaves a
 *   host for the others' calls, instead of queueing them behind its own.
 * - Calls for one message (a node, a chain) go before loop batches: a run waiting for one
 *   Function (another tenant's webhook, say) is not held behind up to 25 ms per batch of
 *   someone's loops, and a host replies once per message. Up to `maxBatch` such calls go in one
 *   message (one write each way however many). A loop batch goes alone, and first once it has
 *   waited `longWaitMs`, so a stream of calls cannot starve loops. A `solo` call goes alone.
 */
import type { Job } from './sandbox-process.js';

/** The limits {@link takeJobs} applies. */
export interface TakeRules {
  /** Most calls in one message. */
  maxBatch: number;
  /** Wait after which a loop batch goes before calls for one message, ms. */
  longWaitMs: number;
  /** Most hosts one tenant's messages may occupy at once. */
  tenantCap: number;
}

/** Whether `job` may go to a host now, with `busy` the hosts each tenant's messages occupy. */
export function eligible(job: Job, busy: ReadonlyMap<string, number>, rules: TakeRules): boolean {
  return (busy.get(job.wire.tenant) ?? 0) < rules.tenantCap;
}

/**
 * Removes from `queue` and returns the calls of the next message for an idle host (empty when
 * no waiting call may go now: every waiting tenant already occupies its `tenantCap` hosts).
 */
export function takeJobs(queue: Job[], busy: ReadonlyMap<string, number>, rules: TakeRules, now: number): Job[] {
  let firstLong = -1;
  let firstShort = -1;
  for (let k = 0; k < queue.length && (firstLong < 0 || firstShort < 0); k++) {
    const j = queue[k]!;
    if (!eligible(j, busy, rules)) continue;
    if (j.long) firstLong = firstLong < 0 ? k : firstLong;
    else firstShort = firstShort < 0 ? k : firstShort;
  }
  if (firstShort < 0 && firstLong < 0) return [];
  if (firstShort < 0 || (firstLong >= 0 && now - queue[firstLong]!.at >= rules.longWaitMs)) return queue.splice(firstLong, 1);
  const first = queue[firstShort]!;
  if (first.solo) return queue.splice(firstShort, 1);
  const tenant = first.wire.tenant;
  const picked: Job[] = [];
  for (let k = firstShort; k < queue.length && picked.length < rules.maxBatch; ) {
    const j = queue[k]!;
    if (j.long || j.solo || j.wire.tenant !== tenant) k++;
    else picked.push(...queue.splice(k, 1));
  }
  return picked;
}
