import { z } from 'zod';
import { andThen, EMPTY, one } from './cost.js';
import { defineNode, nextRef } from './define.js';
import { nodeId } from './fields.js';

/**
 * Runs each step's whole path to completion, in order, each with a copy of the input; then
 * `next` with the input message. The executor owns the ordering (see `engine/frames.ts`).
 */
export const sequencerNode = defineNode({
  type: 'sequencer',
  config: z.object({ steps: z.array(nodeId).min(1), next: nodeId.optional() }),
  emitsOutputs: false,
  refs: (n) => [...n.steps.map((name, i) => ({ path: `steps.${i}`, kind: 'node' as const, name })), ...nextRef(n.next)],
  estimate: (n, c) => one(andThen(n.steps.map((s) => c.next(s)).reduce(andThen, EMPTY), c.next(n.next))),
  execute(_input, ctx) {
    return { kind: 'sequence', steps: ctx.node.steps };
  },
});
