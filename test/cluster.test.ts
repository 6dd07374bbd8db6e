/**
 * Redis Cluster (SPEC §10): `redis-cluster://host:port,…` runs every command on a real
 * 3-primary cluster (redis-server --cluster-enabled yes ×3, redis-cli --cluster create), and
 * the guarantees of §4–§6 hold as on one Redis: the quota held exactly by concurrent worker
 * processes, a worker killed mid-run, the scheduler firing each instant once. Every Lua
 * script runs here with KEYS of one hash slot (Redis refuses CROSSSLOT). Bad input: unknown
 * hosts, a cluster that is not `cluster_state:ok`, a malformed URL: one line, nothing changed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, errorMessage } from '../core/errors.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { isRedisUnavailable, SCRIPTS } from '../redis/client.js';
import { createProduction, type Production } from '../redis/production.js';
import { createScheduler, type Scheduler } from '../scheduler/scheduler.js';
import { freePort } from './global-setup.js';
import { runCli } from './helpers/cli.js';
import { command, startCluster, startClusterNode, type TestCluster } from './helpers/cluster.js';
import { workerKilledMidRun } from './helpers/crash-run.js';
import { allEnded, LOOP3, loop3Payload, quotaHeldExactly } from './helpers/guarantees.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { Processes, waitUntil } from './helpers/processes.js';
import { redisUrl, uniquePrefix } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

let cluster: TestCluster;
let embedded: Embedded;
const procs = new Processes();
const opened: Production[] = [];
const schedulers: Scheduler[] = [];
const peers: Peer[] = [];
const SHARDS = '6';

beforeAll(async () => {
  // Every process of a deployment uses the same shard count: the worker processes inherit it.
  process.env.FLOWMETER_QUEUE_SHARDS = SHARDS;
  cluster = await startCluster();
  embedded = createEmbedded();
}, 60_000);

afterAll(async () => {
  delete process.env.FLOWMETER_QUEUE_SHARDS;
  await embedded?.close();
  await cluster?.stop();
});

afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
  await procs.killAll();
  await Promise.all(opened.splice(0).map((p) => p.close()));
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function production(prefix = uniquePrefix()): Promise<Production> {
  const p = await createProduction({ redisUrl: cluster.url, prefix });
  opened.push(p);
  return p;
}

/** The primary (by port) serving `key`. */
async function nodeOf(key: string): Promise<number> {
  const slot = Number(await command(cluster.ports[0]!, ['CLUSTER', 'KEYSLOT', key]));
  const slots = (await command(cluster.ports[0]!, ['CLUSTER', 'SLOTS'])) as Array<[number, number, [string, number]]>;
  return slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
}

describe('Redis Cluster: the guarantees of one Redis', () => {
  it('the quota is held exactly by concurrent worker processes, for tenants spread over the primaries', async () => {
    const tenants = Array.from({ length: 6 }, (_, i) => `tenant${i}`);
    await quotaHeldExactly({ production: () => production(), procs, redisUrl: cluster.url, embedded, tenants, runs: 50, quota: 200, workers: 3 });
    // The tenants' keys are on more than one primary.
    const p = opened[0]!;
    const primaries = new Set(await Promise.all(tenants.map((t) => nodeOf(p.redisKeys.quota(t)))));
    expect(primaries.size).toBeGreaterThan(1);
  }, 90_000);

  it('a worker process killed mid-run: its runs continue elsewhere from their checkpoints, billed once', async () => {
    const p = await production();
    const peer = await startPeer();
    peers.push(peer);
    await workerKilledMidRun(p, peer, procs, cluster.url);
  }, 120_000);

  it('the scheduler fires each instant of every tenant once, with two schedulers, from a cron index spread over the primaries', async () => {
    const a = await production();
    const b = await production(a.redisKeys.prefix);
    const tenants = Array.from({ length: 12 }, (_, i) => `cron${i}`);
    for (const t of tenants) {
      await a.scenarios.deploy(
        t,
        scenarioOf({ id: 'every5', trigger: { type: 'cron', schedule: '*/5 * * * *' }, start: 'echo', nodes: [fn('echo', 'return msg;')] }),
      );
      await a.scenarios.enable(t, 'every5', undefined);
    }
    // Disabled and re-enabled, then deleted: the index follows the store.
    await a.scenarios.disable(tenants[0]!, 'every5');
    await a.scenarios.enable(tenants[0]!, 'every5', undefined);
    a.startWorker({ concurrency: 4 });
    let t = Date.parse('2027-01-04T10:02:30Z');
    const now = () => new Date(t);
    const [sa, sb] = [createScheduler(a, { now, ticker: false }), createScheduler(b, { now, ticker: false })];
    schedulers.push(sa, sb);
    await Promise.all([sa.start(), sb.start()]);
    let fired = 0;
    while (t < Date.parse('2027-01-04T10:16:00Z')) {
      t += 20_000;
      fired += (await Promise.all([sa.tick(), sb.tick()])).reduce((x, y) => x + y, 0);
    }
    expect(fired).toBe(12 * 3); // 10:05, 10:10, 10:15 of each tenant
    for (const tenant of tenants) {
      const runs = await allEnded(a, tenant, 3);
      expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    }
    // The index is per shard: its keys are on more than one primary.
    const shards = Array.from({ length: Number(SHARDS) }, (_, i) => a.redisKeys.cronDue(i));
    expect(new Set(await Promise.all(shards.map(nodeOf))).size).toBeGreaterThan(1);
    // A deleted scenario leaves the index: nothing more fires for it.
    await a.scenarios.delete(tenants[1]!, 'every5');
    t = Date.parse('2027-01-04T10:20:00Z');
    expect(await sa.tick()).toBe(11);
  }, 60_000);

  it('a cron index written with another shard count: entries move to their shards and keep firing', async () => {
    const prefix = uniquePrefix();
    const one = await createProduction({ redisUrl: cluster.url, prefix, env: { ...process.env, FLOWMETER_QUEUE_SHARDS: '1' } });
    opened.push(one);
    const tenants = Array.from({ length: 6 }, (_, i) => `moved${i}`);
    for (const t of tenants) {
      await one.scenarios.deploy(
        t,
        scenarioOf({ id: 'hourly', trigger: { type: 'cron', schedule: '0 * * * *' }, start: 'echo', nodes: [fn('echo', 'return msg;')] }),
      );
      await one.scenarios.enable(t, 'hourly', undefined);
    }
    expect(await one.redis.zcard(one.redisKeys.cronDue(0))).toBe(6);
    const six = await production(prefix);
    six.startWorker({ concurrency: 4 });
    let t = Date.parse('2027-01-04T09:59:00Z');
    const s = createScheduler(six, { now: () => new Date(t), ticker: false });
    schedulers.push(s);
    await s.start();
    t = Date.parse('2027-01-04T10:00:00Z');
    expect(await s.tick()).toBe(6);
    const left = tenants.filter((x) => six.redisKeys.cronShard(x) !== 0).length;
    expect(left).toBeGreaterThan(0);
    expect(await six.redis.zcard(six.redisKeys.cronDue(0))).toBe(6 - left);
    for (const x of tenants)
      expect(await six.redis.zscore(six.redisKeys.cronDue(six.redisKeys.cronShard(x)), `${x}\u0000hourly`)).toBe(String(Date.parse('2027-01-04T11:00:00Z')));
  });

  it('every Lua script runs on the cluster with KEYS of one hash slot', async () => {
    const p = await production();
    const calls = new Map<string, number>();
    const crossSlot: string[] = [];
    const redis = p.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const def of SCRIPTS) {
      const original = redis[def.name]!.bind(p.redis);
      redis[def.name] = async (...args: unknown[]) => {
        const numKeys = def.keys ?? Number(args[0]);
        const keys = (def.keys === null ? args.slice(1, 1 + numKeys) : args.slice(0, numKeys)) as string[];
        const slots = new Set(await Promise.all(keys.map((k) => command(cluster.ports[0]!, ['CLUSTER', 'KEYSLOT', k]))));
        if (slots.size > 1) crossSlot.push(`${def.name}: ${keys.join(' ')}`);
        calls.set(def.name, (calls.get(def.name) ?? 0) + 1);
        return original(...args);
      };
    }
    const tenant = 'scripts';
    await p.ledger.setQuota(tenant, { monthlyActions: 20 });
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    await p.scenarios.deploy(
      tenant,
      scenarioOf({ id: 'cron', trigger: { type: 'cron', schedule: '* * * * *' }, start: 'echo', nodes: [fn('echo', 'return msg;')] }),
    );
    await p.scenarios.enable(tenant, 'cron', undefined);
    const key = await p.keys.create(tenant);
    expect(await p.keys.resolve(key)).toBe(tenant);
    p.startWorker({ concurrency: 2 });
    // One after the other: 9 + 9 actions, the third run halts at the quota (20), the fourth is rejected.
    const runs = [];
    for (let i = 0; i < 4; i++) {
      runs.push(await p.trigger(tenant, 'loop3', loop3Payload(i), { type: 'manual' }, { idempotencyKey: `k${i}` }));
      await allEnded(p, tenant, i + 1);
    }
    const halted = (await allEnded(p, tenant, 4)).filter((r) => r.status === 'halted');
    expect(halted).toHaveLength(1);
    // Raised: auto-resume continues the halted run.
    await p.ledger.setQuota(tenant, { monthlyActions: 1000 });
    await waitUntil('the halted run to be resumed and end', async () => (await p.runs.get(tenant, halted[0]!.runId))?.status === 'succeeded');
    // A delivery of an ended run: claimed, found ended.
    await p.processRun(tenant, runs[0]!.runId);
    // A live process giving a run back (release.lua) is not reached here: called directly.
    await p.redis.fmRelease(p.redisKeys.run(tenant, runs[0]!.runId), 'nobody');
    const s = createScheduler(p, { now: () => new Date('2027-01-04T10:00:30Z'), ticker: false, catchUpMs: 60_000 });
    schedulers.push(s);
    await s.start();
    await allEnded(p, tenant, 5);
    const ids = await p.keys.list(tenant);
    expect(await p.keys.revoke(ids[0]!.id, tenant)).toBe(tenant);
    expect(await p.keys.resolve(key)).toBeNull();
    expect(crossSlot).toEqual([]);
    // What a script mixing slots would meet: the cluster refuses it.
    const k = p.redisKeys;
    await expect(p.redis.fmEnable(k.scenarios('a'), k.enabled('b'), k.quota('a'), 'x')).rejects.toThrow(/CROSSSLOT/);
    // Every script of these flows ran (others, when called above, were checked too).
    const exercised = [
      'fmLease',
      'fmSettle',
      'fmCheckpoint',
      'fmClaim',
      'fmEnable',
      'fmResume',
      'fmRelease',
      'fmCreate',
      'fmAutoResume',
      'fmDeploy',
      'fmCronAdvance',
      'fmCronDue',
    ];
    expect(exercised.filter((n) => !calls.has(n))).toEqual([]);
  }, 60_000);
});

describe('Redis Cluster: events and outages', () => {
  it('task and run events published by the scripts reach a subscriber (waitFor) through the cluster', async () => {
    const p = await production();
    const tenant = 'events';
    await p.ledger.setQuota(tenant, { monthlyActions: 1000 });
    await p.scenarios.deploy(tenant, scenarioOf(LOOP3));
    p.startWorker({ concurrency: 2 });
    const seen: string[] = [];
    const stop = await p.subscribe(tenant, (e) => seen.push(e.type));
    const started = await p.trigger(tenant, 'loop3', loop3Payload(1), { type: 'manual' });
    const ended = await p.waitFor(tenant, started.runId, async () => undefined, 20_000);
    stop();
    expect(ended).toMatchObject({ status: 'succeeded', actions: 9 });
    expect(seen).toContain('tasks');
    expect(seen.at(-1)).toBe('run');
  });

  it('fail-fast (servers): with every primary gone a command fails within 5 s as REDIS_UNAVAILABLE, and works once they are back', async () => {
    const own = await startCluster();
    try {
      const p = await createProduction({ redisUrl: own.url, prefix: uniquePrefix(), persistent: true, failFast: true });
      opened.push(p);
      await p.ledger.setQuota('acme', { monthlyActions: 10 });
      await own.pause();
      // SPEC §10: an answer (the error) within 5 s, not a command left waiting for Redis.
      const bound = new Promise<string>((r) => setTimeout(() => r('no answer within 5 s'), 5000).unref());
      const err = await Promise.race([
        p.ledger.getQuota('acme').then(
          () => 'answered',
          (e: unknown) => e,
        ),
        bound,
      ]);
      expect(isRedisUnavailable(err), String(err)).toBe(true);
      await own.resume();
      await waitUntil('the cluster to answer again', async () => (await p.ledger.getQuota('acme')).monthlyActions === 10, { timeoutMs: 20_000 });
    } finally {
      await own.stop();
    }
  }, 60_000);
});

describe('Redis Cluster: bad input, one line, nothing changed', () => {
  it('an unreachable or unknown node of redis-cluster:// is named', async () => {
    const dead = await freePort();
    const url = `redis-cluster://127.0.0.1:${cluster.ports[0]},127.0.0.1:${dead}`;
    const err = await createProduction({ redisUrl: url, prefix: uniquePrefix() }).then(
      (p) => p.close().then(() => null),
      (e: unknown) => e,
    );
    expect(errorCode(err)).toBe('REDIS_UNAVAILABLE');
    expect(errorMessage(err)).toBe(`cannot reach Redis Cluster node 127.0.0.1:${dead}: ECONNREFUSED`);
    const r = await runCli(['--redis', 'redis-cluster://no-such-host.invalid:7000', 'usage']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^flowmeter: cannot reach Redis Cluster node no-such-host\.invalid:7000: (ENOTFOUND|EAI_AGAIN)\n$/);
  });

  it('a cluster that is not cluster_state:ok (a node without slots) is refused; nothing is written', async () => {
    const node = await startClusterNode();
    const dir = mkdtempSync(join(tmpdir(), 'fm-cluster-test-'));
    try {
      const file = join(dir, 's.json');
      writeFileSync(file, JSON.stringify(scenarioOf({ id: 'x', start: 'echo', nodes: [fn('echo', 'return msg;')] })));
      const r = await runCli(['--redis', `redis-cluster://127.0.0.1:${node.port}`, 'scenarios', 'deploy', file, '--tenant', 'acme']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toBe(
        `flowmeter: Redis Cluster node 127.0.0.1:${node.port} reports cluster_state:fail, not ok (0 of 16384 slots assigned): the cluster cannot serve every key\n`,
      );
      expect(await command(node.port, ['DBSIZE'])).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await node.stop();
    }
  });

  it('a malformed redis-cluster:// URL, or a single Redis named as a cluster, is one line', async () => {
    const empty = await runCli(['--redis', 'redis-cluster://', 'usage']);
    expect(empty.stderr).toBe('flowmeter: bad Redis Cluster URL redis-cluster://: it names no node; write redis-cluster://host:port,host:port\n');
    const noPort = await runCli(['--redis', 'redis-cluster://127.0.0.1:7000,127.0.0.1', 'usage']);
    expect(noPort.stderr).toBe(
      'flowmeter: bad Redis Cluster URL redis-cluster://127.0.0.1:7000,127.0.0.1: "127.0.0.1" is not host:port; write redis-cluster://host:port,host:port\n',
    );
    expect([empty.code, noPort.code]).toEqual([2, 2]);
    const single = redisUrl().replace('redis://', '');
    const r = await runCli(['--redis', `redis-cluster://${single}`, 'usage']);
    expect(r.stderr).toBe(`flowmeter: Redis at ${single} is not a Redis Cluster node (cluster support disabled); use redis://${single}\n`);
    expect(r.code).toBe(2);
  });
});
