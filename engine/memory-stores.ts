/** In-memory RunStore and VarStore: the embedded default. */

import { varBytes, varsOverBounds } from '../core/function-limits.js';
import { checkPayload } from '../core/json-depth.js';
import type { RunRecord, TaskRecord } from '../core/types.js';
import type { Scenario } from '../scenario/schema.js';
import { pageOf, type RunFilter, type RunStore, type RunSummary, type StoredRun, summarize, type TaskPage, type VarStore } from './stores.js';

export class MemoryRunStore implements RunStore {
  private runs = new Map<string, RunRecord>();
  private inputs = new Map<string, { scenario: Scenario; payload: unknown }>();

  async create(run: RunRecord, scenario: Scenario, payload: unknown): Promise<boolean> {
    checkPayload(payload);
    if (this.runs.has(run.runId)) return false;
    this.runs.set(run.runId, run);
    this.inputs.set(run.runId, { scenario, payload });
    return true;
  }
  async checkpoint(run: RunRecord, _tasks: TaskRecord[] = []): Promise<void> {
    this.runs.set(run.runId, run);
  }
  async finish(run: RunRecord, _tasks: TaskRecord[] = []): Promise<void> {
    this.runs.set(run.runId, run);
  }
  async get(tenant: string, runId: string, tasks?: TaskPage): Promise<RunRecord | null> {
    const run = this.runs.get(runId);
    if (!run || run.tenant !== tenant) return null;
    if (!tasks) return structuredClone(run);
    return { ...structuredClone({ ...run, tasks: pageOf(run.tasks, tasks) }), taskCount: run.tasks.length };
  }
  async load(tenant: string, runId: string): Promise<StoredRun | null> {
    const run = await this.get(tenant, runId);
    const input = this.inputs.get(runId);
    return run && input ? { run, scenario: input.scenario, payload: structuredClone(input.payload) } : null;
  }
  async list(tenant: string, filter: RunFilter = {}): Promise<RunSummary[]> {
    return [...this.runs.values()]
      .filter((r) => r.tenant === tenant && (!filter.scenarioId || r.scenarioId === filter.scenarioId) && (!filter.status || r.status === filter.status))
      .sort((a, b) => String(b.startedAt).localeCompare(String(a.startedAt)))
      .slice(0, filter.limit ?? 100)
      .map(summarize);
  }
}

export class MemoryVarStore implements VarStore {
  /** Each scenario's variables as the Redis twin keeps them: name → JSON value. */
  private vars = new Map<string, Map<string, string>>();

  private of(tenant: string, scenarioId: string): Map<string, string> {
    const key = `${tenant}\u0000${scenarioId}`;
    let v = this.vars.get(key);
    if (!v) this.vars.set(key, (v = new Map()));
    return v;
  }

  async load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>> {
    const v = this.of(tenant, scenarioId);
    for (const [name, value] of Object.entries(defaults)) if (!v.has(name)) v.set(name, JSON.stringify(value ?? null));
    return Object.fromEntries([...v].map(([name, json]) => [name, JSON.parse(json)]));
  }

  async setMany(tenant: string, scenarioId: string, sets: Array<[string, unknown]>): Promise<void> {
    const v = this.of(tenant, scenarioId);
    const next = new Map(v);
    for (const [name, value] of sets) next.set(name, JSON.stringify(value ?? null));
    let bytes = 0;
    for (const [name, json] of next) bytes += varBytes(name, json);
    const over = varsOverBounds(bytes, next.size);
    if (over) throw over;
    for (const [name, json] of next) v.set(name, json);
  }
}
