import { z } from 'zod';
import { conditionRefs, conditionSchema, evaluate } from '../core/conditions.js';
import { alt, EMPTY, one, tag } from './cost.js';
import { defineNode, nextRef } from './define.js';
import { nodeId, SWITCH_FILTER_NOTE } from './fields.js';

/** Passes the message on when the condition holds; otherwise the path ends (`dropped`). */
export const filterNode = defineNode({
  type: 'filter',
  config: z.object({ when: conditionSchema, next: nodeId.optional() }),
  emitsOutputs: false,
  refs: (n) => [...nextRef(n.next), ...conditionRefs(n.when, 'when')],
  estimate: (n, c) => one(n.next ? alt(tag(EMPTY, `${c.label} drops the message`), tag(c.next(n.next), `${c.label} passes`)) : EMPTY),
  costNote: () => SWITCH_FILTER_NOTE,
  execute(input, ctx) {
    const pass = evaluate(ctx.node.when, ctx.scope(input), ctx.scenario.lists);
    if (!pass) return { kind: 'route', routes: [], dropped: true };
    return { kind: 'route', routes: ctx.node.next ? [{ to: ctx.node.next, msg: input }] : [] };
  },
});
