/** In-memory RunStore and VarStore: the embedded default. */

import { checkPayload } from '../core/json-depth.js';
import type { RunRecord, TaskRecord } from '../core/types.js';
import type { Scenario } from '../scenario/schema.js';
import type { RunFilter, RunStore, RunSummary, StoredRun, VarStore } from './stores.js';
import { summarize } from './stores.js';

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
  async get(tenant: string, runId: string): Promise<RunRecord | null> {
    const run = this.runs.get(runId);
    return run && run.tenant === tenant ? structuredClone(run) : null;
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
  private vars = new Map<string, Record<string, unknown>>();

  async load(tenant: string, scenarioId: string, defaults: Record<string, unknown>): Promise<Record<string, unknown>> {
    const key = `${tenant}\u0000${scenarioId}`;
    let v = this.vars.get(key);
    if (!v) this.vars.set(key, (v = {}));
    for (const [name, value] of Object.entries(defaults)) if (!(name in v)) v[name] = structuredClone(value);
    return structuredClone(v);
  }
  async set(tenant: string, scenarioId: string, name: string, value: unknown): Promise<void> {
    const key = `${tenant}\u0000${scenarioId}`;
    const v = this.vars.get(key) ?? {};
    v[name] = structuredClone(value);
    this.vars.set(key, v);
  }
}
