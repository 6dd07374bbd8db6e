import { z } from 'zod';
import { defineNode, nextRef } from './define.js';
import { conditionSchema, conditionRefs, evaluate } from '../core/conditions.js';
import { nodeId } from './fields.js';

/** Routes a message to the first matching case (or every match in `all` mode), else `default`. */
export const switchNode = defineNode({
  type: 'switch',
  config: z.object({
    cases: z.array(z.strictObject({ when: conditionSchema, next: nodeId })).min(1),
    default: nodeId.optional(),
    mode: z.enum(['first', 'all']).default('first'),
  }),
  emitsOutputs: false,
  refs: (n) => [
    ...n.cases.flatMap((c, i) => [...nextRef(c.next, `cases.${i}.next`), ...conditionRefs(c.when, `cases.${i}.when`)]),
    ...nextRef(n.default, 'default'),
  ],
  execute(input, ctx) {
    const scope = ctx.scope(input);
    const lists = ctx.scenario.lists;
    const targets: string[] = [];
    for (const c of ctx.node.cases) {
      if (evaluate(c.when, scope, lists)) {
        targets.push(c.next);
        if (ctx.node.mode === 'first') break;
      }
    }
    if (targets.length === 0 && ctx.node.default) targets.push(ctx.node.default);
    return { kind: 'route', routes: targets.map((to) => ({ to, msg: input })), dropped: targets.length === 0 };
  },
});
