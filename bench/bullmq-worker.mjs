/**
 * Baseline for bench/run.mjs: a raw BullMQ Worker processing no-op jobs, in its own process,
 * with the options Flowmeter's worker uses (engine/queue.ts createWorker).
 *
 *   node bench/bullmq-worker.mjs REDIS_URL PREFIX CONCURRENCY
 *
 * Prints "bullmq worker ready" on stderr once it listens; exits on SIGTERM/SIGINT.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [url, prefix, concurrency] = process.argv.slice(2);
if (!url || !prefix) {
  process.stderr.write('usage: node bench/bullmq-worker.mjs REDIS_URL PREFIX CONCURRENCY\n');
  process.exit(2);
}
const connection = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
connection.on('error', () => undefined);
const worker = new Worker('runs', async () => undefined, {
  connection,
  prefix,
  concurrency: Number(concurrency ?? 4),
  lockDuration: 10_000,
  stalledInterval: 5_000,
  maxStalledCount: 1_000_000,
  autorun: true,
});
worker.on('error', () => undefined);
await worker.waitUntilReady();
process.stderr.write(`bullmq worker ready pid=${process.pid}\n`);
const stop = async () => {
  await worker.close();
  connection.disconnect();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
