import { z } from 'zod';
import { defineNode, nextRef } from './define.js';
import { FlowError } from '../core/errors.js';
import { getPath } from '../core/paths.js';
import { nodeId, path } from './fields.js';

/**
 * For each item of the array at `over`, runs the `body` path (one item after another), then
 * `next` with the input message (with `collect`, its payload is the array of the payloads that
 * ended the body paths). The executor runs the iterations (see `engine/frames.ts`).
 */
export const loopNode = defineNode({
  type: 'loop',
  config: z.object({
    over: path,
    body: nodeId,
    next: nodeId.optional(),
    collect: z.boolean().default(false),
    maxItems: z.number().int().positive().default(10000),
  }),
  emitsOutputs: false,
  refs: (n) => [...nextRef(n.body, 'body'), ...nextRef(n.next)],
  execute(input, ctx) {
    const items = getPath(ctx.scope(input), ctx.node.over);
    if (!Array.isArray(items)) {
      throw new FlowError('LOOP_NOT_ARRAY', `${ctx.node.over} is ${items === undefined ? 'missing' : `not an array (${typeof items})`}`);
    }
    if (items.length > ctx.node.maxItems) {
      throw new FlowError('LOOP_TOO_LARGE', `${items.length} items is more than maxItems ${ctx.node.maxItems}`);
    }
    return { kind: 'loop', items };
  },
});
