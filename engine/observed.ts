/** What past runs of a scenario actually cost (production mode), for `estimate`. */
import type { RunStore } from './stores.js';

export interface Observed {
  /** Runs counted: started in the window, not rejected. */
  runs: number;
  /** Mean actions per run, or null without runs. */
  meanActions: number | null;
  minActions: number | null;
  maxActions: number | null;
  since: string;
}

/** Mean actions per run of `scenarioId` over the last `days` days (default 30). */
export async function observedCost(runs: RunStore, tenant: string, scenarioId: string, now: Date, days = 30): Promise<Observed> {
  const since = new Date(now.getTime() - days * 86_400_000);
  const list = await runs.list(tenant, { scenarioId, limit: 10_000 });
  const counted = list.filter((r) => r.status !== 'rejected' && r.startedAt !== null && Date.parse(r.startedAt) >= since.getTime());
  const actions = counted.map((r) => r.actions);
  return {
    runs: counted.length,
    meanActions: actions.length ? Math.round((actions.reduce((a, b) => a + b, 0) / actions.length) * 10) / 10 : null,
    minActions: actions.length ? Math.min(...actions) : null,
    maxActions: actions.length ? Math.max(...actions) : null,
    since: since.toISOString(),
  };
}
