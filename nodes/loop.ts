import { z } from 'zod';
import { FlowError } from '../core/errors.js';
import { getPath, setPath } from '../core/paths.js';
import type { Message } from '../core/types.js';
import { alt, andThen, one, prefix, range, repeat } from './cost.js';
import { defineNode, nextRef } from './define.js';
import { msgPath, nodeId, path } from './fields.js';

/** `collect`: false, true (the payloads become the payload) or `{ into }` (they are written at that path). */
export type LoopCollect = boolean | { into: string };

/**
 * The message after a collecting loop: its input with the collected payloads as `payload`
 * (`collect: true`) or at `collect.into`, the rest of the message kept.
 */
export function collectedMessage(input: Message, collected: unknown[], collect: LoopCollect): Message {
  return typeof collect === 'object' ? setPath(input, collect.into, collected) : { ...input, payload: collected };
}

/**
 * For each item of the array at `over`, runs the `body` path (one item after another), then
 * `next` with the input message (with `collect: true`, its payload is the array of the payloads
 * that ended the body paths; with `collect: { into: PATH }`, that array is written at PATH and
 * the payload is kept). The executor runs the iterations (see `engine/frames.ts`).
 */
export const loopNode = defineNode({
  type: 'loop',
  config: z.object({
    over: path,
    body: nodeId,
    next: nodeId.optional(),
    /** true: the payloads that ended the body paths become the payload; `{ into: 'msg.…' }`: they are written there. */
    collect: z.union([z.boolean(), z.strictObject({ into: msgPath })]).default(false),
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
    // A path that cannot be written (through an array, say) fails now, before any iteration.
    if (typeof collect === 'object') setPath(input, collect.into, []);
    return { kind: 'iterate', items, collect: collect !== false, ...(over.startsWith('msg.') && { over }) };
  },
});
