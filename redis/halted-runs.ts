/** The halted-run store of auto-resume on Redis (autoresume.lua); see engine/auto-resume.ts. */
import type { EndedRun, HaltedRuns } from '../engine/auto-resume.js';
import type { Ledger } from '../metering/ledger.js';
import { DEFAULT_QUOTA } from '../metering/quota.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

/** How long a resumed run keeps its tenant's turn if its process dies before it ends (15 min). */
export const TURN_MS = 15 * 60_000;

export class RedisHaltedRuns implements HaltedRuns {
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    private readonly ledger: Ledger,
  ) {}

  async step(tenant: string, at: Date, ended?: EndedRun): Promise<string | null> {
    const { period } = await this.ledger.periodOf(tenant, at);
    const k = this.keys;
    const out = await this.redis.fmAutoResume(
      k.halted(tenant),
      k.resumeTurn(tenant),
      k.quota(tenant),
      k.period(tenant, period),
      at.toISOString(),
      DEFAULT_QUOTA.monthlyActions,
      ended?.runId ?? '',
      ended?.halted ? '1' : '0',
      ended?.score ?? 0,
      TURN_MS,
    );
    // The sweep's list: outside the script (another hash slot); it only grows with tenants.
    if (ended?.halted) await this.redis.sadd(k.haltedTenants(), tenant);
    return out === '' ? null : out;
  }

  async tenants(): Promise<string[]> {
    return this.redis.smembers(this.keys.haltedTenants());
  }
}
