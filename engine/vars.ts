/** A run's variables as its nodes set them: stored at once per node, and seen by the run. */
import { errorCode } from '../core/errors.js';
import type { Slot, Work } from './work.js';

/**
 * Stores a slot's variables in one write. The store refuses them all when they would pass a
 * bound of core/function-limits.ts (another run set variables since this one's Function measured
 * them): the node then fails with that FUNCTION_ERROR, and the run's view goes unchanged.
 */
export async function storeVars(w: Work, slot: Slot): Promise<void> {
  try {
    await w.deps.vars.setMany(w.run.tenant, w.run.scenarioId, slot.vars);
  } catch (err) {
    if (errorCode(err) !== 'FUNCTION_ERROR') throw err;
    slot.error = err;
    // The run's view may already hold them (a node whose result was ready): read it again.
    await reloadVars(w);
    return;
  }
  for (const [name, value] of slot.vars) defineVar(w.vars, name, value);
}

/** The run's view of its variables read again from the store (a node that set some failed after all). */
export async function reloadVars(w: Work): Promise<void> {
  const stored = await w.deps.vars.load(w.run.tenant, w.run.scenarioId, {});
  for (const name of Object.keys(w.vars)) delete w.vars[name];
  for (const [name, value] of Object.entries(stored)) defineVar(w.vars, name, value);
}

/** Sets a variable as an own property: a name such as `__proto__` is a variable like any other. */
export function defineVar(vars: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(vars, name, { value, writable: true, enumerable: true, configurable: true });
}
