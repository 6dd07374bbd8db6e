/** Limits of the HTTP server, apart so the command line can name them without loading it. */
import { FlowError } from '../core/errors.js';

/** Largest request body accepted by default, in bytes (SPEC §8: 1 MB). */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Requests of one tenant a server process handles at once by default (FLOWMETER_TENANT_REQUESTS; api/tenant-gate.ts). Measured: a tenant reading 1,000-task pages on 64 connections made another tenant's trigger take 5 s; 16 at once, 1.9 s; 4 at once, 0.5 s. */
export const DEFAULT_TENANT_REQUESTS = 4;

/** `FLOWMETER_TENANT_REQUESTS` (default 4): a whole number from 1 to 100,000; a bad value throws one line. */
export function tenantRequestsSetting(env: Record<string, string | undefined>): number {
  const raw = env.FLOWMETER_TENANT_REQUESTS;
  if (raw === undefined || raw === '') return DEFAULT_TENANT_REQUESTS;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100_000) {
    throw new FlowError('INVALID_INPUT', `FLOWMETER_TENANT_REQUESTS must be a whole number from 1 to 100000, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}
