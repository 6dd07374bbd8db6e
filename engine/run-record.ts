/** Creating run records. */
import { createHash, randomUUID } from 'node:crypto';
import type { RunRecord, TriggerInfo } from '../core/types.js';
import type { Scenario } from '../scenario/schema.js';
import { versionOf } from './scenario-store.js';

export function newRunId(): string {
  return `run_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

/** The run id of a cron instant: the same for every scheduler that fires it. */
export function firingRunId(tenant: string, scenarioId: string, instant: Date): string {
  return `run_c${createHash('sha256').update(`${tenant}\u0000${scenarioId}\u0000${instant.getTime()}`).digest('hex').slice(0, 19)}`;
}

/**
 * A new `queued` run of `scenario`. Test runs and non-billable scenarios do not consume the
 * quota. The run records the scenario's version when the object came from a scenario store,
 * and `replayOf` when the trigger carries one.
 */
export function newRun(scenario: Scenario, tenant: string, trigger: TriggerInfo, runId = newRunId()): RunRecord {
  const version = versionOf(scenario);
  const replayOf = typeof trigger.replayOf === 'string' ? trigger.replayOf : undefined;
  return {
    runId,
    scenarioId: scenario.id,
    tenant,
    status: 'queued',
    trigger,
    startedAt: null,
    finishedAt: null,
    actions: 0,
    error: null,
    outputs: [],
    tasks: [],
    billable: scenario.billable !== false && !trigger.test,
    pending: null,
    ...(version !== undefined && { version }),
    ...(replayOf !== undefined && { replayOf }),
  };
}
