/**
 * Replay (SPEC §12): a new run of the scenario's current version with the original run's
 * trigger payload (and its headers, query or firing time), whatever the original's status.
 */
import { FlowError } from '../core/errors.js';
import type { TriggerInfo } from '../core/types.js';
import type { Scenario } from '../scenario/schema.js';
import type { ScenarioStore } from './scenario-store.js';
import type { RunStore } from './stores.js';

/** What a replay starts: the current scenario, the original payload, the trigger with `replayOf`. */
export interface ReplayPlan {
  scenario: Scenario;
  payload: unknown;
  trigger: TriggerInfo;
}

/**
 * Plans the replay of `runId`. Throws NOT_FOUND for an unknown run or a deleted scenario, and
 * PAYLOAD_NOT_KEPT when the original payload was not stored.
 */
export async function planReplay(stores: { runs: RunStore; scenarios: ScenarioStore }, tenant: string, runId: string): Promise<ReplayPlan> {
  const stored = await stores.runs.load(tenant, runId);
  if (!stored) throw new FlowError('NOT_FOUND', `no run ${JSON.stringify(runId)} for tenant ${tenant}`);
  const { run } = stored;
  if (run.payloadKept === false) {
    throw new FlowError(
      'PAYLOAD_NOT_KEPT',
      `run ${runId} cannot be replayed: its trigger payload was not kept (the tenant's bound on rejected payloads was reached)`,
    );
  }
  const scenario = await stores.scenarios.get(tenant, run.scenarioId);
  if (!scenario) throw new FlowError('NOT_FOUND', `run ${runId} cannot be replayed: scenario ${run.scenarioId} is no longer deployed for tenant ${tenant}`);
  const { replayOf: _previous, ...original } = run.trigger;
  return { scenario, payload: stored.payload, trigger: { ...original, type: original.type === 'resume' ? 'manual' : original.type, replayOf: runId } };
}
