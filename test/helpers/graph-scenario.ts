/**
 * A scenario to draw (SPEC §12 graph): a Loop whose body goes through a Switch, a Catch with a
 * scope, a Comment and a node nothing reaches (a validation warning). With ORDERS_PAYLOAD one
 * run costs 17 actions: trigger 1, loop 1 + 4 iterations, switch 4, big 2 (one fails), small 2,
 * catch 1, log 1, summary 1; the loop is the most expensive node.
 */
import { fn } from './run.js';

export const ORDERS = {
  id: 'orders',
  name: 'Order routing',
  trigger: { type: 'manual' },
  start: 'each',
  nodes: [
    { id: 'each', name: 'Each order', type: 'loop', over: 'msg.payload.items', body: 'route', next: 'summary' },
    {
      id: 'route',
      type: 'switch',
      cases: [{ when: { path: 'msg.payload.kind', op: 'eq', value: 'big' }, next: 'big' }],
      default: 'small',
    },
    fn('big', "if (msg.payload.bad) throw new Error('bad order'); return msg;"),
    fn('small', 'return msg;'),
    { id: 'oops', type: 'catch', scope: ['big'], next: 'log' },
    fn('log', 'return { payload: { failed: msg.error.nodeId } };'),
    fn('summary', 'return { payload: { done: true } };'),
    { id: 'note', type: 'comment', text: 'Big orders go through review.' },
    fn('orphan', 'return msg;'),
  ],
};

export const ORDERS_PAYLOAD = { items: [{ kind: 'big' }, { kind: 'small' }, { kind: 'small' }, { kind: 'big', bad: true }] };

/** Actions per node of one run with ORDERS_PAYLOAD. */
export const ORDERS_RUN_ACTIONS: Record<string, number> = { $trigger: 1, each: 5, route: 4, big: 2, small: 2, oops: 1, log: 1, summary: 1 };
