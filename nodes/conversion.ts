import { z } from 'zod';
import { FlowError } from '../core/errors.js';
import { getPath, setPath } from '../core/paths.js';
import { alt, one } from './cost.js';
import { defineNode, nextRef } from './define.js';
import { msgPath, nodeId, path } from './fields.js';

/** Maps the value at `path` through a conversion table and writes it to `target`. */
export const conversionNode = defineNode({
  type: 'conversion',
  config: z.object({
    table: z.string().min(1),
    path,
    target: msgPath.optional(),
    onMissing: z.enum(['keep', 'default', 'error']).default('keep'),
    defaultValue: z.unknown().optional(),
    next: nodeId.optional(),
  }),
  emitsOutputs: true,
  refs: (n) => [{ path: 'table', kind: 'table', name: n.table }, ...nextRef(n.next)],
  estimate(n, c) {
    if (!(n.target ?? n.path).startsWith('msg.')) return c.fails();
    return n.onMissing === 'error' ? alt(one(c.next(n.next)), c.fails()) : one(c.next(n.next));
  },
  execute(input, ctx) {
    const { node } = ctx;
    const table = ctx.scenario.tables?.[node.table] ?? {};
    const target = node.target ?? node.path;
    if (!target.startsWith('msg.')) throw new FlowError('CONVERSION_MISSING', `target ${target} must be under msg`);
    const value = getPath(ctx.scope(input), node.path);
    const key = typeof value === 'string' ? value : JSON.stringify(value ?? null);
    let mapped: unknown;
    if (Object.hasOwn(table, key)) mapped = table[key];
    else if (node.onMissing === 'keep') mapped = value;
    else if (node.onMissing === 'default') mapped = node.defaultValue ?? null;
    else throw new FlowError('CONVERSION_MISSING', `table ${node.table} has no entry for ${JSON.stringify(value ?? null)}`);
    return { kind: 'emit', messages: [setPath(input, target, mapped)] };
  },
});
