/**
 * The embedded default: the executor with in-memory stores, in this process.
 */
import { executeRun, type ExecutorDeps } from './executor.js';
import { MemoryRunStore, MemoryVarStore } from './memory-stores.js';
import { newRun } from './run-record.js';
import type { Scenario } from './schema.js';
import type { RunRecord, TriggerInfo } from './types.js';
import type { NodeServices } from './define-node.js';
import { MemoryLedger, type LedgerOptions } from '../metering/ledger.js';
import { createSandbox } from '../nodes/sandbox.js';
import { createMailSender } from './mailer.js';

export interface EmbeddedOptions extends LedgerOptions {
  /** Environment for `${env:…}` and FLOWMETER_SMTP_URL (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Replaces some node services (tests). */
  services?: Partial<NodeServices>;
  now?: () => Date;
  taskBytes?: number;
  onTask?: ExecutorDeps['onTask'];
}

export interface Embedded {
  ledger: MemoryLedger;
  runs: MemoryRunStore;
  vars: MemoryVarStore;
  deps: ExecutorDeps;
  /** Starts and runs one run to its end. */
  run(scenario: Scenario, payload: unknown, opts?: { tenant?: string; trigger?: TriggerInfo }): Promise<RunRecord>;
  /** Continues a halted run. */
  resume(scenario: Scenario, tenant: string, runId: string): Promise<RunRecord>;
  close(): Promise<void>;
}

export function createEmbedded(opts: EmbeddedOptions = {}): Embedded {
  const env = opts.env ?? process.env;
  const ledger = new MemoryLedger(opts);
  const runs = new MemoryRunStore();
  const vars = new MemoryVarStore();
  const sandbox = opts.services?.sandbox ?? createSandbox();
  const mail = opts.services?.mail ?? createMailSender(env.FLOWMETER_SMTP_URL);
  const services: NodeServices = {
    sandbox,
    mail,
    env: (name) => env[name],
    fetch: globalThis.fetch,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    ...opts.services,
  };
  const deps: ExecutorDeps = { meter: ledger, runs, vars, services, now: opts.now, taskBytes: opts.taskBytes, onTask: opts.onTask };
  return {
    ledger, runs, vars, deps,
    async run(scenario, payload, o = {}) {
      const run = newRun(scenario, o.tenant ?? 'default', o.trigger ?? { type: 'manual' });
      await runs.create(run, scenario, payload);
      return executeRun(scenario, run, deps, payload);
    },
    async resume(scenario, tenant, runId) {
      const run = await runs.get(tenant, runId);
      if (!run) throw new Error(`no run ${runId} for tenant ${tenant}`);
      if (run.status !== 'halted' || !run.pending) throw new Error(`run ${runId} is ${run.status}, only a halted run can be resumed`);
      return executeRun(scenario, run, deps);
    },
    async close() {
      if (!opts.services?.sandbox && 'dispose' in sandbox) (sandbox as { dispose(): void }).dispose();
      if (!opts.services?.mail && 'close' in mail) (mail as { close(): void }).close();
    },
  };
}
