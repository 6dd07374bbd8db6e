/**
 * The setup of the fault tests, whose worker processes are SIGKILLed mid-run (faults,
 * sandbox-faults, crash, poison): a production platform, processes and a peer, all ended after
 * each test; a seeded random source for a random mix and a killer's choices
 * (FM_FAULTS_SEED=<n> replays them), and what a task must be in every mode.
 */
import { afterEach } from 'vitest';
import type { TaskRecord } from '../../core/types.js';
import type { Production } from '../../redis/production.js';
import { type Peer, startPeer } from './peer.js';
import { type Proc, Processes, type WorkerOptions } from './processes.js';
import { redisUrl, useProduction } from './production.js';
import { fn } from './run.js';

/** A fault test's platform and processes; registers their end after each test. */
export interface FaultPlatform {
  procs: Processes;
  /** A fresh production platform on the test Redis (closed after the test). */
  production(): Promise<Production>;
  /** A `flowmeter worker` process on the platform of `production()`. */
  worker(opts: Omit<WorkerOptions, 'redisUrl' | 'prefix'>): Promise<Proc>;
  /** A fresh HTTP peer on loopback (closed after the test). */
  peer(): Promise<Peer>;
}

/** Call at the top of a test file: every process is killed, the platform and the peer closed after each test. */
export function useFaultPlatform(): FaultPlatform {
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
  return {
    procs,
    production: async () => (p = await useProduction()),
    peer: async () => (peer = await startPeer()),
    worker: (opts) => {
      if (!p) throw new Error('worker() before production(): no platform to name the worker');
      return procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, ...opts });
    },
  };
}

/** A small seeded PRNG (mulberry32), so a failing mix can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The random source of a fault test: seeded by FM_FAULTS_SEED or at random, the seed logged under `label`. */
export function faultRandom(label: string): () => number {
  const seed = Number(process.env.FM_FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`${label}: seed ${seed} (FM_FAULTS_SEED=${seed} to replay)`);
  return mulberry32(seed);
}

/** What a task is, without timings: what must be the same in every mode. */
export const taskShape = (t: TaskRecord) => ({
  seq: t.seq,
  nodeId: t.nodeId,
  status: t.status,
  actions: t.actions,
  iteration: t.iteration,
  input: t.input,
  output: t.output,
  error: t.error,
});

/**
 * Nodes `loop`, `body` and `sum`: a Loop over `msg.payload.items` whose body throws on an
 * item 13 ("unlucky", uncaught: the run fails) and otherwise runs `work` (code that sets `x`),
 * collected and summed into `{ c }` by `sum`.
 */
export function unluckyLoop(ids: { loop: string; body: string; sum: string }, work: string): Array<Record<string, unknown>> {
  return [
    { id: ids.loop, type: 'loop', over: 'msg.payload.items', body: ids.body, collect: true, next: ids.sum },
    fn(ids.body, `if (msg.payload === 13) throw new Error("unlucky"); ${work} return { payload: x };`),
    fn(ids.sum, 'return { payload: { c: msg.payload.reduce((a, b) => a + b, 0) } };'),
  ];
}
