import { z } from 'zod';
import { EMPTY } from './cost.js';
import { defineNode } from './define.js';

/** Documentation only: never executed, never counted, never the target of an edge. */
export const commentNode = defineNode({
  type: 'comment',
  config: z.object({ text: z.string() }),
  emitsOutputs: false,
  entry: 'never',
  refs: () => [],
  rawFields: ['text'],
  estimate: () => EMPTY,
  execute() {
    throw new Error('a comment node is never executed');
  },
});
