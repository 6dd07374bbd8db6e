/**
 * Run and task events on Redis pub/sub: one subscriber connection for every listener of this
 * process, per tenant channel, opened on the first subscription.
 */
import { FlowError } from '../core/errors.js';
import type { RunEvent, SubscribeOptions } from '../engine/platform.js';
import { newConnection, type RedisConnection } from './client.js';
import type { Keys } from './keys.js';

/** Options of {@link createEventSubscription}. */
export interface EventSubscriptionOptions {
  /** See ConnectOptions.failFast (servers: commands fail at once while Redis is unreachable). */
  failFast?: boolean;
}

export interface EventSubscription {
  /**
   * Calls `onEvent` for every task and run event of the tenant (run events only with
   * `runsOnly`) until the returned stop(). Task and run events come on two channels, published
   * in order by one script: one connection subscribed to both receives them in that order.
   */
  subscribe(tenant: string, onEvent: (e: RunEvent) => void, o?: SubscribeOptions): Promise<() => void>;
  /** Disconnects the subscriber connection, if one was opened. */
  close(): void;
}

export function createEventSubscription(redisUrl: string, keys: Keys, opts: EventSubscriptionOptions = {}): EventSubscription {
  let sub: RedisConnection | null = null;
  const listeners = new Map<string, Set<(e: RunEvent) => void>>();
  /** Each channel's SUBSCRIBE, once confirmed or while pending. */
  const subscribed = new Map<string, Promise<unknown>>();

  async function subscribe(tenant: string, onEvent: (e: RunEvent) => void, o: SubscribeOptions = {}): Promise<() => void> {
    if (!sub) {
      sub = newConnection(redisUrl, { persistent: true, failFast: opts.failFast });
      sub.on('message', (channel: string, text: string) => {
        const set = listeners.get(channel);
        if (!set || set.size === 0) return;
        for (const e of JSON.parse(text) as RunEvent[]) for (const l of set) l(e);
      });
    }
    // No SUBSCRIBE before the connection is ready: one queued while connecting can mix with the
    // connection's handshake (ioredis#2037) and the subscription be lost, with its events.
    await connectionReady(sub);
    const sets: Array<Set<(e: RunEvent) => void>> = [];
    for (const channel of o.runsOnly ? [keys.runEvents(tenant)] : [keys.events(tenant), keys.runEvents(tenant)]) {
      let set = listeners.get(channel);
      if (!set) listeners.set(channel, (set = new Set()));
      // Every caller waits until Redis has confirmed the channel's SUBSCRIBE, also one that
      // finds the channel's listeners there already (the first caller may still be waiting).
      let confirmed = subscribed.get(channel);
      if (!confirmed) subscribed.set(channel, (confirmed = sub.subscribe(channel)));
      try {
        await confirmed;
      } catch (err) {
        // Not subscribed (Redis away): the next caller subscribes again.
        if (subscribed.get(channel) === confirmed) subscribed.delete(channel);
        if (set.size === 0) listeners.delete(channel);
        for (const s of sets) s.delete(onEvent);
        throw err;
      }
      set.add(onEvent);
      sets.push(set);
    }
    return () => {
      for (const set of sets) set.delete(onEvent);
    };
  }

  return {
    subscribe,
    close() {
      sub?.disconnect();
    },
  };
}

/** Resolves once the connection is ready; REDIS_UNAVAILABLE when it is not within 4 s. */
function connectionReady(conn: RedisConnection): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.off('ready', ready);
      reject(new FlowError('REDIS_UNAVAILABLE', 'Redis cannot be reached: the event subscription is not ready'));
    }, 4000);
    const ready = () => {
      clearTimeout(timer);
      resolve();
    };
    conn.once('ready', ready);
    if (conn.status === 'ready') ready();
  });
}
