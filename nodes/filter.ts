import { z } from 'zod';
import { defineNode, nextRef } from './define.js';
import { conditionSchema, conditionRefs, evaluate } from '../core/conditions.js';
import { nodeId } from './fields.js';

/** Passes the message on when the condition holds; otherwise the path ends (`dropped`). */
export const filterNode = defineNode({
  type: 'filter',
  config: z.object({ when: conditionSchema, next: nodeId.optional() }),
  emitsOutputs: false,
  refs: (n) => [...nextRef(n.next), ...conditionRefs(n.when, 'when')],
  execute(input, ctx) {
    const pass = evaluate(ctx.node.when, ctx.scope(input), ctx.scenario.lists);
    if (!pass) return { kind: 'route', routes: [], dropped: true };
    return { kind: 'route', routes: ctx.node.next ? [{ to: ctx.node.next, msg: input }] : [] };
  },
});
