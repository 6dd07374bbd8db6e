/**
 * Prometheus metrics of one server (its own prom-client registry, not the global one).
 *
 * Counters and the duration histogram move with the task and run events of every tenant this
 * server watches: tenants with deployed scenarios (read at start and on every scrape) and
 * tenants seen by the API or a webhook. Counters count what this server saw since it started,
 * as Prometheus counters do; with several servers on one Redis, each reports every run.
 *
 * A tenant names its scenarios, so their number is the tenant's to choose: each tenant's
 * first MAX_SCENARIO_SERIES scenarios seen get series of their own, the rest are counted
 * together as scenario "(other)". Before, one API key deploying and running 10,000 scenarios
 * made 10,000 series per counter in every server's memory and in every scrape.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Platform, RunEvent } from '../engine/platform.js';

/** Scenarios of one tenant with series of their own (the rest: {@link OTHER}). */
export const MAX_SCENARIO_SERIES = 100;
/** The scenario label of a tenant's scenarios past MAX_SCENARIO_SERIES. */
export const OTHER = '(other)';

export class Metrics {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();
  private readonly subs = new Map<string, Promise<() => void>>();
  private closed = false;
  private readonly runs: Counter<'tenant' | 'scenario' | 'status'>;
  private readonly actions: Counter<'tenant' | 'scenario'>;
  private readonly durations: Histogram<'type'>;
  /** The scenarios with series of their own, by tenant. */
  private readonly named = new Map<string, Set<string>>();

  constructor(private readonly platform: Platform) {
    const registers = [this.registry];
    this.runs = new Counter({
      name: 'flowmeter_runs_total',
      help: 'Runs that ended (or stopped as halted), by status',
      labelNames: ['tenant', 'scenario', 'status'],
      registers,
    });
    this.actions = new Counter({
      name: 'flowmeter_actions_total',
      help: 'Actions spent by tasks (SPEC §3), billable or not',
      labelNames: ['tenant', 'scenario'],
      registers,
    });
    this.durations = new Histogram({
      name: 'flowmeter_task_duration_seconds',
      help: 'Duration of tasks, by node type (the trigger task by trigger type)',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const subs = this.subs;
    new Gauge({
      name: 'flowmeter_quota_remaining',
      help: 'Actions left in the current billing period (limit + add-ons - used, never below 0)',
      labelNames: ['tenant'],
      registers,
      async collect() {
        const now = new Date();
        const tenants = [...subs.keys()];
        const reports = await Promise.all(tenants.map((t) => platform.ledger.usage(t, now).catch(() => null)));
        this.reset();
        reports.forEach((u, i) => {
          if (u) this.set({ tenant: tenants[i]! }, u.remaining);
        });
      },
    });
    new Gauge({
      name: 'flowmeter_queue_depth',
      help: 'Runs queued or executing (in production: in the fair dispatcher, queued or dispatched and not ended; in-flight runs with the embedded platform)',
      registers,
      async collect() {
        this.set(await platform.queueDepth());
      },
    });
  }

  /** Starts counting the tenant's events (once per tenant; later calls are cheap). */
  async watch(tenant: string): Promise<void> {
    if (this.closed) return;
    let sub = this.subs.get(tenant);
    if (!sub) {
      sub = this.platform.subscribe(tenant, (e) => this.onEvent(tenant, e));
      this.subs.set(tenant, sub);
      sub.catch(() => this.subs.get(tenant) === sub && this.subs.delete(tenant));
    }
    await sub;
  }

  /** Watches every tenant with deployed scenarios. */
  async refresh(): Promise<void> {
    const tenants = await this.platform.scenarios.tenants();
    await Promise.all(tenants.map((t) => this.watch(t)));
  }

  /** The text exposition format; watches newly deployed tenants first. */
  async render(): Promise<string> {
    await this.refresh().catch(() => undefined);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops every subscription. */
  async close(): Promise<void> {
    this.closed = true;
    const subs = [...this.subs.values()];
    this.subs.clear();
    await Promise.all(
      subs.map((s) =>
        s.then(
          (stop) => stop(),
          () => undefined,
        ),
      ),
    );
  }

  /** The scenario label of a tenant's scenario: its id, or OTHER past the tenant's first MAX_SCENARIO_SERIES. */
  private scenarioLabel(tenant: string, scenarioId: string): string {
    let named = this.named.get(tenant);
    if (!named) this.named.set(tenant, (named = new Set()));
    if (named.has(scenarioId)) return scenarioId;
    if (named.size >= MAX_SCENARIO_SERIES) return OTHER;
    named.add(scenarioId);
    return scenarioId;
  }

  private onEvent(tenant: string, e: RunEvent): void {
    if (e.type === 'run') {
      this.runs.inc({ tenant, scenario: this.scenarioLabel(tenant, e.scenarioId), status: e.status });
      return;
    }
    let actions = 0;
    for (const t of e.tasks) {
      actions += t.actions;
      this.durations.observe({ type: t.type }, Math.max(0, t.durationMs) / 1000);
    }
    // From task events, not the run's total: a halted-then-resumed run is not counted twice.
    if (actions > 0) this.actions.inc({ tenant, scenario: this.scenarioLabel(tenant, e.scenarioId) }, actions);
  }
}
