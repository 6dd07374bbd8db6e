/** A production-mode Flowmeter on the test Redis, with a unique key prefix per use. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { createEmbedded } from '../../engine/embedded.js';
import type { Platform } from '../../engine/platform.js';
import { createProduction, type Production, type ProductionOptions } from '../../redis/production.js';

export const redisUrl = (): string => inject('redisUrl');

export function uniquePrefix(): string {
  return `t${randomUUID().slice(0, 8)}`;
}

export async function useProduction(opts: Partial<ProductionOptions> = {}): Promise<Production> {
  return createProduction({ redisUrl: redisUrl(), prefix: uniquePrefix(), ...opts });
}

/**
 * Both platforms, for `describe.each`: embedded, and production on the test Redis with, when
 * `workerConcurrency` is given, an in-process worker of that concurrency.
 */
export function bothPlatforms(o: { workerConcurrency?: number } = {}): Array<[string, () => Promise<Platform>]> {
  return [
    ['embedded', async () => createEmbedded()],
    [
      'redis',
      async () => {
        const p = await useProduction();
        if (o.workerConcurrency !== undefined) p.startWorker({ concurrency: o.workerConcurrency });
        return p;
      },
    ],
  ];
}
