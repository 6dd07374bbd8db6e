import { z } from 'zod';
import { FlowError } from '../core/errors.js';
import { getPath } from '../core/paths.js';
import { alt, andThen, one, prefix, range, repeat } from './cost.js';
import { defineNode, nextRef } from './define.js';
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
  /** Each iteration runs `body` with the input whose `payload` is the item and `loop` is `{ index, count }`. */
  iterate: (n, { input, item, index, count }) => ({ to: n.body, msg: { ...input, payload: item, loop: { index, count } } }),
  /**
   * The loop's own action, then each of `items` iterations (1 + the body), then `next`; or it
   * fails. More items than `maxItems` would fail LOOP_TOO_LARGE: taken at `maxItems`, with a warning.
   */
  estimate(n, c) {
    let items = c.items;
    if (items > n.maxItems) {
      c.warn(`${c.label} takes at most ${n.maxItems} items (maxItems; more fail with LOOP_TOO_LARGE): counted at ${n.maxItems}, not ${items}`);
      items = n.maxItems;
    }
    const body = repeat(one(c.next(n.body)), items);
    return alt(prefix(range(1, `${c.label}: ${items} items`), andThen(body, c.next(n.next))), c.fails());
  },
  costNote: ({ items, itemsGiven }) =>
    `loops are taken at ${items} item${items === 1 ? '' : 's'} for the fewest and the most alike${itemsGiven ? '' : ' (the default; set another count with --items)'}; a loop over fewer items costs less`,
  execute(input, ctx) {
    const items = getPath(ctx.scope(input), ctx.node.over);
    if (!Array.isArray(items)) {
      throw new FlowError('LOOP_NOT_ARRAY', `${ctx.node.over} is ${items === undefined ? 'missing' : `not an array (${typeof items})`}`);
    }
    if (items.length > ctx.node.maxItems) {
      throw new FlowError('LOOP_TOO_LARGE', `${items.length} items is more than maxItems ${ctx.node.maxItems}`);
    }
    const { collect, over } = ctx.node;
    return { kind: 'iterate', items, collect, ...(over.startsWith('msg.') && { over }) };
  },
});
