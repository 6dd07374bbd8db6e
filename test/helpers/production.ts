/** A production-mode Flowmeter on the test Redis, with a unique key prefix per use. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { createProduction, type Production, type ProductionOptions } from '../../redis/production.js';

export const redisUrl = (): string => inject('redisUrl');

export function uniquePrefix(): string {
  return `t${randomUUID().slice(0, 8)}`;
}

export async function useProduction(opts: Partial<ProductionOptions> = {}): Promise<Production> {
  return createProduction({ redisUrl: redisUrl(), prefix: uniquePrefix(), ...opts });
}
