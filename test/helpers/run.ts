/** Running scenarios in tests: validated, on the embedded engine, with an independent action count. */

import type { RunRecord } from '../../core/types.js';
import { createEmbedded, type Embedded, type EmbeddedOptions } from '../../engine/embedded.js';
import type { Scenario } from '../../scenario/schema.js';
import { validateScenario } from '../../scenario/validate.js';

export function scenarioOf(doc: Record<string, unknown>): Scenario {
  const v = validateScenario({ id: 'test', trigger: { type: 'manual' }, ...doc });
  if (!v.scenario) throw new Error(`invalid test scenario:\n${v.problems.join('\n')}`);
  return v.scenario;
}

/** Runs once on a fresh embedded engine with a large quota unless `quota` is given. */
export async function runOnce(
  doc: Record<string, unknown>,
  payload: unknown = null,
  opts: EmbeddedOptions & { quota?: number; engine?: Embedded } = {},
): Promise<RunRecord> {
  const engine = opts.engine ?? createEmbedded(opts);
  try {
    await engine.ledger.setQuota('default', { monthlyActions: opts.quota ?? 1_000_000 });
    const run = await engine.run(scenarioOf(doc), payload);
    const sum = run.tasks.reduce((a, t) => a + t.actions, 0);
    if (sum !== run.actions) throw new Error(`task actions sum to ${sum} but run says ${run.actions}`);
    return run;
  } finally {
    if (!opts.engine) await engine.close();
  }
}

export const payloads = (run: RunRecord): unknown[] => run.outputs.map((m) => m.payload);
export const fn = (id: string, code: string, next?: string) => ({ id, type: 'function', code, ...(next && { next }) });
/** A Connector node that POSTs `body` to `url` of the scenario's connection `peer`; `more` adds its retry, next, …. */
export const postToPeer = (id: string, url: string, body: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  id,
  type: 'connector',
  connection: 'peer',
  method: 'POST',
  url,
  body,
  ...more,
});
