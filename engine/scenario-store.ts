/**
 * Deployed scenarios of each tenant, and which are enabled. Enabling is refused past the
 * tenant's `maxActiveScenarios`.
 *
 * Versions (SPEC §12): every deploy of a changed document (compared as canonical JSON)
 * appends the next version (1, 2, …); the current document is always the newest version.
 * A rollback to N appends a copy of N as a new version rather than moving a pointer back:
 * the history stays append-only, a run's `version` always names the exact document it ran,
 * and "unchanged" keeps meaning "equal to the newest version". A deleted scenario takes no
 * more triggers; its history is kept, so a later deploy of the id continues the numbering.
 */

import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical.js';
import { FlowError } from '../core/errors.js';
import type { Scenario } from '../scenario/schema.js';
import { type CronIndex, MemoryCronIndex } from './cron-index.js';

export interface ScenarioInfo {
  id: string;
  name: string | null;
  trigger: Scenario['trigger'];
  enabled: boolean;
  nodes: number;
}

/** One deployed version of a scenario. */
export interface ScenarioVersion {
  version: number;
  deployedAt: string;
  /** sha256 of the document's canonical JSON. */
  hash: string;
  /** Set on a version a rollback created: the version it copies. */
  rollbackOf?: number;
  scenario: Scenario;
}

/** What a deploy did: `changed` false when the document equals the current version (a no-op). */
export interface DeployResult {
  /** No scenario of this id was current before (first deploy, or after a delete). */
  created: boolean;
  changed: boolean;
  /** The current version after the deploy. */
  version: number;
}

export interface ScenarioStore {
  /**
   * Stores a validated scenario as its next version, unless it equals the current one; its
   * enabled state is kept.
   */
  deploy(tenant: string, scenario: Scenario): Promise<DeployResult>;
  /** The current document; `versionOf()` tells its version. */
  get(tenant: string, id: string): Promise<Scenario | null>;
  /** Every version, oldest first. Throws NOT_FOUND for a scenario that is not deployed. */
  versions(tenant: string, id: string): Promise<ScenarioVersion[]>;
  /** Makes version `to` current again (as a new version). Throws NOT_FOUND naming the versions there are. */
  rollback(tenant: string, id: string, to: number): Promise<DeployResult>;
  /** Stops the scenario taking triggers (disabled, not listed); its runs stay. Throws NOT_FOUND. */
  delete(tenant: string, id: string): Promise<void>;
  list(tenant: string): Promise<ScenarioInfo[]>;
  isEnabled(tenant: string, id: string): Promise<boolean>;
  /** Throws NOT_FOUND, or MAX_ACTIVE_SCENARIOS when the tenant is at its limit. */
  enable(tenant: string, id: string, maxActive: number | undefined): Promise<void>;
  disable(tenant: string, id: string): Promise<void>;
  /** Every tenant that has deployed a scenario. */
  tenants(): Promise<string[]>;
  /** The enabled cron scenarios by when they are due (the scheduler's index), kept by this store. */
  readonly cron: CronIndex;
}

/**
 * Keeps the cron index for an enabled scenario after a store change, the same for both twins:
 * `enabled` 1 newly enabled, 2 already enabled; `changed` a deploy that changed the document.
 * (Disabling and deleting unschedule it.)
 */
export async function indexCron(cron: CronIndex, tenant: string, scenario: Scenario, enabled: 1 | 2, changed = false): Promise<void> {
  if (scenario.trigger.type !== 'cron') return cron.unschedule(tenant, scenario.id);
  // Enabled (again) or redeployed: afresh, as if enabled now (its past never fires under the
  // new document). Already enabled and unchanged: only a missing entry is added.
  await cron.schedule(tenant, scenario.id, enabled === 1 || changed ? {} : { ifAbsent: true });
}

export function info(s: Scenario, enabled: boolean): ScenarioInfo {
  return { id: s.id, name: s.name ?? null, trigger: s.trigger, enabled, nodes: s.nodes.length };
}

/** The version of scenario objects read from a store (runs record it; see `newRun`). */
const versions = new WeakMap<Scenario, number>();

/** Notes that `scenario` (an object a store returns) is version `version`. */
export function tagVersion(scenario: Scenario, version: number): Scenario {
  versions.set(scenario, version);
  return scenario;
}

/** The version of a scenario object a store returned, or undefined for any other object. */
export function versionOf(scenario: Scenario): number | undefined {
  return versions.get(scenario);
}

export function scenarioHash(scenario: Scenario): string {
  return createHash('sha256').update(canonicalJson(scenario)).digest('hex');
}

/**
 * Rollback, the same for both twins: deploys version `to` again as the next version (the
 * history only grows), or NOT_FOUND for a version that does not exist.
 */
export async function rollbackTo(
  store: Pick<ScenarioStore, 'versions'> & { deploy(tenant: string, scenario: Scenario, rollbackOf?: number): Promise<DeployResult> },
  tenant: string,
  id: string,
  to: number,
): Promise<DeployResult> {
  const history = await store.versions(tenant, id);
  const target = history[to - 1];
  if (!Number.isInteger(to) || !target) throw noVersion(id, to, history.length);
  return store.deploy(tenant, target.scenario, to);
}

/** NOT_FOUND for a rollback to a version that does not exist. */
function noVersion(id: string, to: number, count: number): FlowError {
  return new FlowError('NOT_FOUND', `scenario ${id} has no version ${to}; it has ${count === 1 ? 'version 1' : `versions 1-${count}`}`);
}

export function notFound(id: string): FlowError {
  return new FlowError('NOT_FOUND', `no scenario ${JSON.stringify(id)}`);
}

/**
 * A deploy refused: the tenant keeps `kept` bytes of version entries, the new one has `bytes`,
 * and together they would pass `limit`.
 */
export function storageFull(tenant: string, id: string, s: { kept: number; bytes: number; limit: number }): FlowError {
  const n = (b: number) => b.toLocaleString('en-US');
  return new FlowError(
    'SCENARIO_STORAGE_FULL',
    `scenario ${id} was not deployed: tenant ${tenant} keeps ${n(s.kept)} bytes of scenario versions, and this version's ${n(s.bytes)} would pass the limit of ${n(s.limit)} (FLOWMETER_SCENARIO_BYTES); versions are kept for the runs that name them`,
  );
}

/** Enabling refused: the tenant has `enabled` scenarios enabled, and `maxActive` is its limit. */
export function maxActiveReached(tenant: string, enabled: number, maxActive: number): FlowError {
  return new FlowError(
    'MAX_ACTIVE_SCENARIOS',
    `tenant ${tenant} has ${enabled} scenario${enabled === 1 ? '' : 's'} enabled and its maxActiveScenarios is ${maxActive}: disable one, or raise the limit with \`flowmeter quota set --tenant ${tenant} --max-active N\` (none: no limit)`,
  );
}

export class MemoryScenarioStore implements ScenarioStore {
  readonly cron = new MemoryCronIndex();
  private byTenant = new Map<string, Map<string, Scenario>>();
  private enabledSet = new Map<string, Set<string>>();
  private history = new Map<string, ScenarioVersion[]>();
  /** Bytes of each tenant's version entries (as JSON, as the Redis twin stores them). */
  private kept = new Map<string, number>();

  /** `maxBytes`: bytes of version entries a tenant may keep (FLOWMETER_SCENARIO_BYTES). */
  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  private versionsOf(tenant: string, id: string): ScenarioVersion[] {
    const key = `${tenant}\u0000${id}`;
    let h = this.history.get(key);
    if (!h) this.history.set(key, (h = []));
    return h;
  }

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
  async deploy(tenant: string, scenario: Scenario, rollbackOf?: number): Promise<DeployResult> {
    const created = !this.of(tenant).has(scenario.id);
    const history = this.versionsOf(tenant, scenario.id);
    const hash = scenarioHash(scenario);
    const last = history.at(-1);
    if (!created && last?.hash === hash) return { created, changed: false, version: last.version };
    const version = history.length + 1;
    const entry: ScenarioVersion = {
      version,
      deployedAt: new Date().toISOString(),
      hash,
      ...(rollbackOf !== undefined && { rollbackOf }),
      scenario: structuredClone(scenario),
    };
    const bytes = Buffer.byteLength(JSON.stringify(entry));
    const kept = this.kept.get(tenant) ?? 0;
    if (kept + bytes > this.maxBytes) throw storageFull(tenant, scenario.id, { kept, bytes, limit: this.maxBytes });
    this.kept.set(tenant, kept + bytes);
    history.push(entry);
    this.of(tenant).set(scenario.id, structuredClone(scenario));
    if (this.on(tenant).has(scenario.id)) await indexCron(this.cron, tenant, scenario, 2, true);
    return { created, changed: true, version };
  }
  async get(tenant: string, id: string): Promise<Scenario | null> {
    const s = this.of(tenant).get(id);
    return s ? tagVersion(structuredClone(s), this.versionsOf(tenant, id).length) : null;
  }
  async versions(tenant: string, id: string): Promise<ScenarioVersion[]> {
    if (!this.of(tenant).has(id)) throw notFound(id);
    return structuredClone(this.versionsOf(tenant, id));
  }
  rollback(tenant: string, id: string, to: number): Promise<DeployResult> {
    return rollbackTo(this, tenant, id, to);
  }
  async delete(tenant: string, id: string): Promise<void> {
    if (!this.of(tenant).delete(id)) throw notFound(id);
    this.on(tenant).delete(id);
    await this.cron.unschedule(tenant, id);
  }
  async list(tenant: string): Promise<ScenarioInfo[]> {
    return [...this.of(tenant).values()].sort((a, b) => a.id.localeCompare(b.id)).map((s) => info(s, this.on(tenant).has(s.id)));
  }
  async isEnabled(tenant: string, id: string): Promise<boolean> {
    return this.on(tenant).has(id);
  }
  async enable(tenant: string, id: string, maxActive: number | undefined): Promise<void> {
    const scenario = this.of(tenant).get(id);
    if (!scenario) throw notFound(id);
    const on = this.on(tenant);
    if (on.has(id)) return indexCron(this.cron, tenant, scenario, 2);
    if (maxActive !== undefined && on.size >= maxActive) throw maxActiveReached(tenant, on.size, maxActive);
    on.add(id);
    await indexCron(this.cron, tenant, scenario, 1);
  }
  async disable(tenant: string, id: string): Promise<void> {
    if (!this.of(tenant).has(id)) throw notFound(id);
    this.on(tenant).delete(id);
    await this.cron.unschedule(tenant, id);
  }
  async tenants(): Promise<string[]> {
    return [...this.byTenant.keys()].filter((t) => this.of(t).size > 0).sort();
  }
}
