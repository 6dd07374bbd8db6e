/** The scenarios every phase runs, built from one Function node body. */
import { validateScenario } from '../../dist/scenario/validate.js';

// ---- what every scenario runs ------------------------------------------------------------
/** The Function node body used everywhere (chain links, loop bodies, the bare baseline). */
export const CODE = 'return { payload: { id: msg.payload.id, n: msg.payload.n + 1, name: msg.payload.name } };';
export const item = (i, name = `item-${i}`) => ({ id: i, n: i, name });
const fn = (id, next) => ({ id, type: 'function', code: CODE, ...(next && { next }) });
const chain = (n, prefix = 'f') => Array.from({ length: n }, (_, i) => fn(`${prefix}${i + 1}`, i + 1 < n ? `${prefix}${i + 2}` : undefined));
const scenarioOf = (doc) => {
  const v = validateScenario(doc);
  if (!v.scenario) throw new Error(`bench scenario ${doc.id} is invalid: ${v.problems.join('; ')}`);
  return v.scenario;
};
export const SCN = {
  chain10: scenarioOf({ id: 'chain10', start: 'f1', nodes: chain(10) }),
  chain3: scenarioOf({ id: 'chain3', start: 'f1', nodes: chain(3) }),
  one: scenarioOf({ id: 'one', start: 'f1', nodes: chain(1) }),
  loop10: scenarioOf({
    id: 'loop10',
    start: 'each',
    nodes: [{ id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1', maxItems: 20_000 }, ...chain(10)],
  }),
  loop1: scenarioOf({
    id: 'loop1',
    start: 'each',
    nodes: [{ id: 'each', type: 'loop', over: 'msg.payload.items', body: 'f1', maxItems: 20_000 }, ...chain(1)],
  }),
};
