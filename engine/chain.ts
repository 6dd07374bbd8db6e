/**
 * Function nodes in the executor's waves. A Function's code runs in a sandbox host process
 * (`services/sandbox-pool.ts`), so its execution is asynchronous.
 */
import { functionNode } from '../nodes/function.js';
import type { CompiledNode } from '../scenario/compile.js';

/**
 * Whether a node's later siblings in its wave must wait for it: a Function's `setVar`s are seen
 * by the nodes after it in wave order (as in a run halted and resumed between them).
 */
export function setsVars(node: CompiledNode): boolean {
  return node.def === functionNode;
}
