/**
 * The cron index on Redis (the twin of MemoryCronIndex, see engine/cron-index.ts): per queue
 * shard a zset of `tenant\0scenarioId` by next instant and a hash of cursors, both under the
 * shard's hash tag, so every script here touches one slot and the shards spread over a
 * Redis Cluster's primaries.
 */
import { type CronEntry, type CronIndex, cronMember, freshMarker, parseCronMember } from '../engine/cron-index.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

/** Every enabled scenario of every tenant (only for building a missing index, once). */
export type EnabledLister = () => Promise<Array<{ tenant: string; scenarioId: string; cron: boolean }>>;

export class RedisCronIndex implements CronIndex {
  readonly shards: number;
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly enabledScenarios: EnabledLister,
  ) {
    this.shards = keys.shards;
  }

  async due(shard: number, to: number, offset: number, limit: number): Promise<CronEntry[]> {
    const flat = await this.redis.fmCronDue(this.keys.cronDue(shard), this.keys.cronCursors(shard), to, offset, limit);
    const out: CronEntry[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const cursor = flat[i + 2]!;
      const e = { ...parseCronMember(flat[i]!), token: flat[i + 1]!, next: Number(flat[i + 1]), cursor: cursor === '' ? null : Number(cursor) };
      if (this.keys.cronShard(e.tenant) === shard) out.push(e);
      else await this.move(e, shard);
    }
    return out;
  }

  /**
   * An entry in another shard than its tenant's (written with another shard count) moves to
   * its shard: added there first (unless one is there), then removed here; never both lost.
   */
  private async move(e: CronEntry, from: number): Promise<void> {
    const to = this.keys.cronShard(e.tenant);
    const member = cronMember(e.tenant, e.scenarioId);
    const multi = this.redis.multi().zadd(this.keys.cronDue(to), 'NX', e.token, member);
    if (e.cursor !== null) multi.hsetnx(this.keys.cronCursors(to), member, String(e.cursor));
    await multi.exec();
    await this.redis.multi().zrem(this.keys.cronDue(from), member).hdel(this.keys.cronCursors(from), member).exec();
  }

  async advance(e: CronEntry, next: number | null, cursor: number): Promise<boolean> {
    const shard = this.keys.cronShard(e.tenant);
    const score = next === null ? '' : next === Number.POSITIVE_INFINITY ? '+inf' : String(next);
    const moved = await this.redis.fmCronAdvance(
      this.keys.cronDue(shard),
      this.keys.cronCursors(shard),
      cronMember(e.tenant, e.scenarioId),
      e.token,
      score,
      cursor,
    );
    return moved === 1;
  }

  async schedule(tenant: string, scenarioId: string, o: { ifAbsent?: boolean } = {}): Promise<void> {
    const shard = this.keys.cronShard(tenant);
    const member = cronMember(tenant, scenarioId);
    if (o.ifAbsent) {
      await this.redis.zadd(this.keys.cronDue(shard), 'NX', freshMarker(), member);
      return;
    }
    await this.redis.multi().zadd(this.keys.cronDue(shard), freshMarker(), member).hdel(this.keys.cronCursors(shard), member).exec();
  }

  async unschedule(tenant: string, scenarioId: string): Promise<void> {
    const shard = this.keys.cronShard(tenant);
    const member = cronMember(tenant, scenarioId);
    await this.redis.multi().zrem(this.keys.cronDue(shard), member).hdel(this.keys.cronCursors(shard), member).exec();
  }

  /**
   * Data from before the index (or from another shard count): every enabled cron scenario gets
   * an entry if it has none. Once per shard count: the marker is set after.
   */
  async prepare(): Promise<void> {
    if ((await this.redis.get(this.keys.cronBuilt())) === String(this.shards)) return;
    for (const s of await this.enabledScenarios()) if (s.cron) await this.schedule(s.tenant, s.scenarioId, { ifAbsent: true });
    await this.redis.set(this.keys.cronBuilt(), String(this.shards));
  }
}
