/** The notification store on Redis: signing secrets, delivery logs, the last period seen. */
import type { Delivery, NotificationStore } from '../services/notifier.js';
import { DELIVERY_LOG_SIZE, newSigningSecret } from '../services/notifier.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

export class RedisNotificationStore implements NotificationStore {
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
  ) {}

  async secret(tenant: string): Promise<string> {
    const k = this.keys.notifySecret(tenant);
    await this.redis.set(k, newSigningSecret(), 'NX');
    return (await this.redis.get(k))!;
  }

  async log(tenant: string, d: Delivery): Promise<void> {
    const k = this.keys.notifyLog(tenant);
    await this.redis
      .multi()
      .lpush(k, JSON.stringify(d))
      .ltrim(k, 0, DELIVERY_LOG_SIZE - 1)
      .exec();
  }

  async deliveries(tenant: string, limit = 50): Promise<Delivery[]> {
    return (await this.redis.lrange(this.keys.notifyLog(tenant), 0, limit - 1)).map((s) => JSON.parse(s) as Delivery);
  }

  /** SET … GET: one atomic swap, so exactly one process sees the old period. */
  async swapPeriod(tenant: string, period: string): Promise<string | null> {
    return this.redis.set(this.keys.notifyPeriod(tenant), period, 'GET');
  }
}
