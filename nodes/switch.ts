import { z } from 'zod';
import { conditionRefs, conditionSchema, evaluate } from '../core/conditions.js';
import { alt, concurrent, EMPTY, one, tag } from './cost.js';
import { defineNode, nextRef } from './define.js';
import { nodeId, SWITCH_FILTER_NOTE } from './fields.js';

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
  estimate(n, c) {
    const each = n.cases.map((k, i) => tag(c.next(k.next), `${c.label}: case ${i + 1} → \`${k.next}\``));
    const none = n.default
      ? tag(c.next(n.default), `${c.label}: no case matches → default \`${n.default}\``)
      : tag(EMPTY, `${c.label}: no case matches, the path ends`);
    const all = n.mode === 'all' && n.cases.length > 1 ? [tag(concurrent(n.cases.map((k) => c.next(k.next))), `${c.label}: every case matches`)] : [];
    return one(alt(...each, none, ...all));
  },
  costNote: () => SWITCH_FILTER_NOTE,
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
