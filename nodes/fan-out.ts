import { z } from 'zod';
import { concurrent, one } from './cost.js';
import { defineNode } from './define.js';
import { nodeId } from './fields.js';

/** Sends a copy of the message to every branch; the branches run concurrently. */
export const fanOutNode = defineNode({
  type: 'fanOut',
  config: z.object({ branches: z.array(nodeId).min(1) }),
  emitsOutputs: false,
  refs: (n) => n.branches.map((name, i) => ({ path: `branches.${i}`, kind: 'node' as const, name })),
  estimate: (n, c) => one(concurrent(n.branches.map((b) => c.next(b)))),
  execute(input, ctx) {
    return { kind: 'route', routes: ctx.node.branches.map((to) => ({ to, msg: input })) };
  },
});
