/**
 * EXPERIMENT: the Redis-side cost of one settlement (settle.lua, lib-settle.lua) of a run's
 * ENTRIES actions, each on a node of its own (the trigger, then f1, f2, …): the worst case of
 * the per-node counts. Prints the least and the median usec_per_call of EVALSHA (CPU inside
 * redis-server, INFO commandstats) over 8 rounds of N settlements, 50 in flight, on a private
 * redis-server. Compare two checkouts (each built: npm run build):
 *
 *   node bench/experiments/settle-cost.mjs /path/to/checkout-a [N=1000] [ENTRIES=11]
 *   node bench/experiments/settle-cost.mjs /path/to/checkout-b
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(process.argv[2] ?? '.');
const N = Number(process.argv[3] ?? 1000);
const ENTRIES = Number(process.argv[4] ?? 11);
const port = 17000 + Math.floor(Math.random() * 1000);
const srv = spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 300));
const { openRedis } = await import(`${ROOT}/dist/redis/client.js`);
const { Keys } = await import(`${ROOT}/dist/redis/keys.js`);
const { settleKeys, settleArgs } = await import(`${ROOT}/dist/redis/ledger.js`);
const redis = openRedis(`redis://127.0.0.1:${port}`);
await redis.connect();
const k = new Keys('b');
const one = (runId) => {
  const entries = Array.from({ length: ENTRIES }, (_, j) => ({
    key: String(j + 1),
    trigger: j === 0,
    date: '2026-11-30',
    node: j === 0 ? '$trigger' : `f${j}`,
  }));
  const s = { tenant: 't', runId, scenarioId: 'chain', billable: true, period: '2026-11', heldUsed: 0, release: 0, at: new Date(), entries };
  return redis.fmSettle(...settleKeys(k, s), `q-${runId}`, ...settleArgs(s, 3600));
};
try {
  for (let i = 0; i < 200; i++) await one(`warm${i}`);
  const rounds = [];
  for (let r = 0; r < 8; r++) {
    await redis.config('RESETSTAT');
    for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, j) => one(`${r}-${i + j}`)));
    const line = (await redis.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha'));
    rounds.push(Number(/usec_per_call=([\d.]+)/.exec(line)[1]));
  }
  rounds.sort((a, b) => a - b);
  console.log(JSON.stringify({ root: ROOT, settlements: N, entries: ENTRIES, minUs: rounds[0], medianUs: rounds[4] }));
} finally {
  redis.disconnect();
  srv.kill();
}
