import { z } from 'zod';
import { one } from './cost.js';
import { defineNode, nextRef } from './define.js';
import { nodeId } from './fields.js';

/**
 * Not entered by an edge: when a node in `scope` (default: every node) fails, that path
 * continues here with the failed node's input plus `error: { nodeId, code, message }`.
 * The executor picks the catch (`scenario/compile.ts`, `catchFor`).
 */
export const catchNode = defineNode({
  type: 'catch',
  config: z.object({ scope: z.array(nodeId).min(1).optional(), next: nodeId.optional() }),
  emitsOutputs: false,
  entry: 'onError',
  refs: (n) => [...(n.scope ?? []).map((name, i) => ({ path: `scope.${i}`, kind: 'node' as const, name, edge: false as const })), ...nextRef(n.next)],
  handles: (n) => n.scope,
  estimate: (n, c) => one(c.next(n.next)),
  execute(input, ctx) {
    return { kind: 'route', routes: ctx.node.next ? [{ to: ctx.node.next, msg: input }] : [] };
  },
});
