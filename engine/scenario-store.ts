/**
 * Deployed scenarios of each tenant, and which are enabled. Enabling is refused past the
 * tenant's `maxActiveScenarios`.
 */
import type { Scenario } from '../scenario/schema.js';
import { FlowError } from '../core/errors.js';

export interface ScenarioInfo {
  id: string;
  name: string | null;
  trigger: Scenario['trigger'];
  enabled: boolean;
  nodes: number;
}

export interface ScenarioStore {
  /** Stores (or replaces) a validated scenario; its enabled state is kept. */
  deploy(tenant: string, scenario: Scenario): Promise<{ created: boolean }>;
  get(tenant: string, id: string): Promise<Scenario | null>;
  list(tenant: string): Promise<ScenarioInfo[]>;
  isEnabled(tenant: string, id: string): Promise<boolean>;
  /** Throws NOT_FOUND, or MAX_ACTIVE_SCENARIOS when the tenant is at its limit. */
  enable(tenant: string, id: string, maxActive: number | undefined): Promise<void>;
  disable(tenant: string, id: string): Promise<void>;
  /** Every tenant that has deployed a scenario. */
  tenants(): Promise<string[]>;
}

export function info(s: Scenario, enabled: boolean): ScenarioInfo {
  return { id: s.id, name: s.name ?? null, trigger: s.trigger, enabled, nodes: s.nodes.length };
}

export function notFound(id: string): FlowError {
  return new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(id)}`);
}

/** Enabling refused: the tenant has its `maxActiveScenarios` enabled already. */
export function maxActiveReached(): FlowError {
  return new FlowError('MAX_ACTIVE_SCENARIOS', 'the tenant already has its maxActiveScenarios enabled');
}

export class MemoryScenarioStore implements ScenarioStore {
  private byTenant = new Map<string, Map<string, Scenario>>();
  private enabledSet = new Map<string, Set<string>>();

  private of(tenant: string): Map<string, Scenario> {
    let m = this.byTenant.get(tenant);
    if (!m) this.byTenant.set(tenant, (m = new Map()));
    return m;
  }
  private on(tenant: string): Set<string> {
    let s = this.enabledSet.get(tenant);
    if (!s) this.enabledSet.set(tenant, (s = new Set()));
    return s;
  }
  async deploy(tenant: string, scenario: Scenario): Promise<{ created: boolean }> {
    const created = !this.of(tenant).has(scenario.id);
    this.of(tenant).set(scenario.id, structuredClone(scenario));
    return { created };
  }
  async get(tenant: string, id: string): Promise<Scenario | null> {
    const s = this.of(tenant).get(id);
    return s ? structuredClone(s) : null;
  }
  async list(tenant: string): Promise<ScenarioInfo[]> {
    return [...this.of(tenant).values()].sort((a, b) => a.id.localeCompare(b.id)).map((s) => info(s, this.on(tenant).has(s.id)));
  }
  async isEnabled(tenant: string, id: string): Promise<boolean> {
    return this.on(tenant).has(id);
  }
  async enable(tenant: string, id: string, maxActive: number | undefined): Promise<void> {
    if (!this.of(tenant).has(id)) throw notFound(id);
    const on = this.on(tenant);
    if (on.has(id)) return;
    if (maxActive !== undefined && on.size >= maxActive) throw maxActiveReached();
    on.add(id);
  }
  async disable(tenant: string, id: string): Promise<void> {
    if (!this.of(tenant).has(id)) throw notFound(id);
    this.on(tenant).delete(id);
  }
  async tenants(): Promise<string[]> {
    return [...this.byTenant.keys()].filter((t) => this.of(t).size > 0).sort();
  }
}
