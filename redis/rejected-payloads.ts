/** The payloads of rejected webhooks on Redis: a byte budget per tenant per period, and a shorter retention. */
import type { RejectedPayloads } from '../engine/platform.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

export class RedisRejectedPayloads implements RejectedPayloads {
  /** `limit`: bytes a tenant may keep per period (`rejectedBytesLimit`). */
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly limit: number,
    readonly maxRecords: number,
  ) {}

  /**
   * INCRBY, then DECRBY when over: concurrent requests may refuse one that would have fit,
   * never keep more than the limit.
   */
  async admit(tenant: string, period: string, bytes: number): Promise<boolean> {
    const key = this.keys.rejectedBytes(tenant, period);
    const [[, used]] = (await this.redis
      .multi()
      .incrby(key, bytes)
      .expire(key, 40 * 86400)
      .exec()) as [[unknown, number]];
    if (used <= this.limit) return true;
    await this.redis.decrby(key, bytes);
    return false;
  }

  async count(tenant: string, period: string): Promise<number> {
    const key = this.keys.rejectedCount(tenant, period);
    const [[, n]] = (await this.redis
      .multi()
      .incr(key)
      .expire(key, 40 * 86400)
      .exec()) as [[unknown, number]];
    return n;
  }

  async expire(tenant: string, runId: string, seconds: number): Promise<void> {
    await this.redis
      .multi()
      .expire(this.keys.run(tenant, runId), seconds)
      .expire(this.keys.runTasks(tenant, runId), seconds)
      .expire(this.keys.runOutputs(tenant, runId), seconds)
      .exec();
  }
}
