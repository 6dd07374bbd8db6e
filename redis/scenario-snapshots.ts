/**
 * The scenario a run executes, as its run hash keeps it (field `scenario`): a reference to the
 * deployed version the run was created from, `@<version>`, which the scenario's versions list
 * (deploy.lua, append-only, never deleted) holds for good; or, for a scenario that came from no
 * version (and runs written before references), the document's JSON itself.
 *
 * A reference costs a few bytes per run where a copy cost the whole document (up to the 1 MB
 * request limit, kept with every run for the retention period: one tenant's large scenario
 * and many runs filled Redis for every tenant). Workers read a version once and keep it in a
 * cache bounded by bytes, so many large versions cannot fill a worker's memory either.
 */
import { FlowError } from '../core/errors.js';
import { versionOf } from '../engine/scenario-store.js';
import type { Scenario } from '../scenario/schema.js';
import type { FlowRedis } from './client.js';
import type { Keys } from './keys.js';

/** Parsed scenarios a process keeps, at most this many bytes of their JSON (default 32 MB). */
export const SNAPSHOT_CACHE_BYTES = 32 * 1024 * 1024;

/** The run hash's `scenario` field for a run of `scenario`: its version's reference, or its JSON. */
export function snapshotField(scenario: Scenario): string {
  const version = versionOf(scenario);
  return version === undefined ? JSON.stringify(scenario) : `@${version}`;
}

/** Parsed scenarios by key, least recently used dropped first past a byte bound. */
class ScenarioCache {
  private entries = new Map<string, { scenario: Scenario; bytes: number }>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  get(key: string): Scenario | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key); // re-inserted: the Map's order is the order of use
    this.entries.set(key, hit);
    return hit.scenario;
  }

  set(key: string, scenario: Scenario, bytes: number): void {
    if (bytes > this.maxBytes) return;
    this.bytes += bytes;
    this.entries.set(key, { scenario, bytes });
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}

/** Reads runs' scenarios back from their `scenario` field. */
export class ScenarioSnapshots {
  private cache: ScenarioCache;
  constructor(
    private readonly redis: FlowRedis,
    private readonly keys: Keys,
    maxBytes = SNAPSHOT_CACHE_BYTES,
  ) {
    this.cache = new ScenarioCache(maxBytes);
  }

  /** The scenario of a run of `scenarioId` whose hash field `scenario` is `field`. */
  async read(tenant: string, scenarioId: string, field: string | undefined): Promise<Scenario> {
    if (field === undefined) return null as unknown as Scenario; // as before references: no snapshot stored
    const ref = field.startsWith('@');
    const key = ref ? `${tenant}\n${scenarioId}\n${field}` : field;
    const hit = this.cache.get(key);
    if (hit) return hit;
    if (!ref) return this.keep(key, JSON.parse(field) as Scenario, field.length);
    const version = Number(field.slice(1));
    const entry = await this.redis.lindex(this.keys.scenarioVersions(tenant, scenarioId), version - 1);
    if (entry === null) {
      throw new FlowError('NOT_FOUND', `version ${version} of scenario ${JSON.stringify(scenarioId)} is not stored for tenant ${tenant}`);
    }
    return this.keep(key, (JSON.parse(entry) as { scenario: Scenario }).scenario, entry.length);
  }

  private keep(key: string, scenario: Scenario, bytes: number): Scenario {
    this.cache.set(key, scenario, bytes);
    return scenario;
  }
}
