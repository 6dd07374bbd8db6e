import { z } from 'zod';
import { FlowError } from '../core/errors.js';
import { renderText } from '../core/templates.js';
import { defineNode } from './define.js';

/** Fails the path with `code` and the rendered `message` (a Catch may handle it). */
export const exceptionNode = defineNode({
  type: 'exception',
  config: z.object({
    message: z.string(),
    code: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]*$/, 'must be UPPER_SNAKE_CASE')
      .default('EXCEPTION'),
  }),
  emitsOutputs: false,
  refs: () => [],
  estimate: (_n, c) => c.fails(),
  execute(input, ctx) {
    throw new FlowError(ctx.node.code, renderText(ctx.node.message, ctx.scope(input)));
  },
});
