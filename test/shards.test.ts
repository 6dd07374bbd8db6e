import { describe, expect, it } from 'vitest';
import { queueShards, shardOf, shardTag } from '../redis/shards.js';

describe('queue shards', () => {
  it('maps a tenant to the same shard every time, spread over the shards', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const s = shardOf(`tenant-${i}`, 4);
      expect(s).toBe(shardOf(`tenant-${i}`, 4));
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(4);
      seen.add(s);
    }
    expect(seen.size).toBe(4);
    expect(shardOf('anyone', 1)).toBe(0);
  });

  it('keeps shard 0 on the historical queue tag', () => {
    expect(shardTag('fm', 0)).toBe('{fm:q}');
    expect(shardTag('fm', 3)).toBe('{fm:q3}');
  });

  it('reads FLOWMETER_QUEUE_SHARDS and refuses what is not a positive integer', () => {
    expect(queueShards({})).toBe(1);
    expect(queueShards({ FLOWMETER_QUEUE_SHARDS: '6' })).toBe(6);
    for (const bad of ['0', '-2', '1.5', 'many', '65']) expect(() => queueShards({ FLOWMETER_QUEUE_SHARDS: bad })).toThrow(/FLOWMETER_QUEUE_SHARDS/);
  });
});
