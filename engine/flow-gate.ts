/**
 * Flow control in embedded mode (SPEC §10): a tenant's `concurrency`, a scenario's
 * `concurrency` and `throttle`. Runs over a limit wait in this process, in the order they came
 * (status `queued`); none is dropped. Production does the same in Redis (redis/dispatch.ts),
 * with weighted fairness between tenants on top; in one process every run that no limit holds
 * starts at once, so there is nothing to share out.
 */

/** The limits that apply to one run. */
export interface RunLimits {
  /** Most runs of the tenant at once. */
  tenantConcurrency?: number;
  /** Most runs of the scenario at once. */
  scenarioConcurrency?: number;
  /** Most runs of the scenario started per period. */
  throttle?: { limit: number; periodMs: number };
}

interface Waiting {
  tenant: string;
  scenarioId: string;
  limits: RunLimits;
  go: () => void;
}

export class FlowGate {
  private readonly running = new Map<string, number>();
  private readonly starts = new Map<string, number[]>();
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** Runs `fn` once the limits let the run start; the limits count it until it settles. */
  async run<T>(tenant: string, scenarioId: string, limits: RunLimits, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.waiting.push({ tenant, scenarioId, limits, go });
      this.pump();
    });
    try {
      return await fn();
    } finally {
      this.add(`t:${tenant}`, -1);
      this.add(`s:${tenant}\n${scenarioId}`, -1);
      this.pump();
    }
  }

  /** Runs waiting for a limit. */
  get queued(): number {
    return this.waiting.length;
  }

  private add(key: string, n: number): number {
    const v = (this.running.get(key) ?? 0) + n;
    if (v <= 0) this.running.delete(key);
    else this.running.set(key, v);
    return v;
  }

  /** Starts every waiting run that no limit holds, oldest first. */
  private pump(): void {
    const now = this.now();
    let wake = Number.POSITIVE_INFINITY;
    this.waiting = this.waiting.filter((w) => {
      const t = `t:${w.tenant}`;
      const s = `s:${w.tenant}\n${w.scenarioId}`;
      const { tenantConcurrency: tc, scenarioConcurrency: sc, throttle } = w.limits;
      if (tc !== undefined && (this.running.get(t) ?? 0) >= tc) return true;
      if (sc !== undefined && (this.running.get(s) ?? 0) >= sc) return true;
      if (throttle) {
        const recent = (this.starts.get(s) ?? []).filter((at) => at > now - throttle.periodMs);
        this.starts.set(s, recent);
        if (recent.length >= throttle.limit) {
          wake = Math.min(wake, recent[0]! + throttle.periodMs);
          return true;
        }
        recent.push(now);
      }
      this.add(t, 1);
      this.add(s, 1);
      w.go();
      return false;
    });
    if (wake < Number.POSITIVE_INFINITY && !this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = null;
          this.pump();
        },
        Math.max(1, wake - now),
      );
    }
  }
}
