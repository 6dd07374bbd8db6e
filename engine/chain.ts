/**
 * Function chains in one hop. A Function's code runs in a sandbox host process; crossing the
 * process boundary once per node would cost more than the node. So when a wave is a single
 * Function node whose `next` is another Function (f1 → f2 → …), the whole chain runs for that
 * message in ONE host round trip (`FunctionSandbox.runChain`), and its later steps' outcomes
 * are kept here. The executor then goes on exactly as it would without them: each later step
 * is its own wave, reserves its action, records its task and applies its `setVar`s; when the
 * wave is the step the chain prepared (same node, same message object, nothing else queued),
 * the prepared outcome is used instead of another round trip. Anything else (a halt, an error,
 * a wave with other work) drops what was prepared: a Function has no effect outside its
 * outcome, so an unused outcome changes nothing and is never billed.
 *
 * A chain is only as long as the actions the run already holds (and its `maxActionsPerRun`),
 * so no step is computed ahead of a halt. When the chain is a Loop's whole body, the loop's
 * next iterations ride along in the same hop (`loop-batch.ts`).
 */
import { FlowError } from '../core/errors.js';
import type { Message } from '../core/types.js';
import { type ChainStep, isOneMessage, type NodeContext, type NodeResult } from '../nodes/define.js';
import { functionNode, functionResult } from '../nodes/function.js';
import type { CompiledNode } from '../scenario/compile.js';
import { type LoopPrep, loopBatch, sameIteration } from './loop-batch.js';
import type { Slot, Work } from './work.js';

/** Longest chain sent in one hop. */
const MAX_CHAIN = 32;

interface Prepared {
  /** The steps of the chain; of a loop batch, of every iteration one after another. */
  steps: ChainStep[];
  /** The chain's nodes: step `at` is node `nodes[at % nodes.length]`. */
  nodes: string[];
  /** The step the next wave may use, and the message it expects (the previous step's result). */
  at: number;
  input: Message;
  /** A loop batch: the iterations' messages (a step `at` with `at % nodes.length === 0` starts one). */
  loop?: LoopPrep;
}

/** Whether `slot` is the wave that step `p.at` was prepared for. */
function expected(w: Work, p: Prepared, slot: Slot): boolean {
  const n = p.nodes.length;
  if (p.nodes[p.at % n] !== slot.node.id) return false;
  if (p.at % n !== 0) return p.input === slot.item.msg;
  return p.loop !== undefined && sameIteration(w, p.loop, p.at / n, slot);
}

const prepared = new WeakMap<Work, Prepared>();

/**
 * Whether a node's later siblings in its wave must wait for it: a Function's `setVar`s are seen
 * by the nodes after it in wave order (as in a run halted and resumed between them).
 */
export function setsVars(node: CompiledNode): boolean {
  return node.def === functionNode;
}

function outcomeOf(step: ChainStep, ctx: NodeContext<unknown>): NodeResult {
  if (!step.ok) throw new FlowError(step.code, step.message);
  return functionResult(step.outcome, ctx);
}

/** The Function nodes from `first` along `next`, at most `limit` of them. */
function chainFrom(w: Work, first: CompiledNode, limit: number): CompiledNode[] {
  const nodes = [first];
  let node = first;
  while (nodes.length < limit) {
    const next = node.config.next;
    const n = typeof next === 'string' ? w.compiled.nodes.get(next) : undefined;
    if (n === undefined || n.def !== functionNode) break;
    nodes.push(n);
    node = n;
  }
  return nodes;
}

/**
 * Executes `slot` from a prepared chain step, or starts a chain at it; undefined when neither
 * applies (the executor then calls the node's `execute`). `single`: the slot is the whole wave
 * and nothing else is queued, so the next wave is exactly its successor.
 */
export function fused(w: Work, slot: Slot, single: boolean, ctx: NodeContext<unknown>): NodeResult | Promise<NodeResult> | undefined {
  const p = prepared.get(w);
  if (p !== undefined) {
    prepared.delete(w);
    if (single && !slot.item.iterate && expected(w, p, slot)) {
      const step = p.steps[p.at]!;
      if (step.ok && isOneMessage(step.outcome.result) && p.at + 1 < p.steps.length) {
        p.at++;
        p.input = step.outcome.result;
        prepared.set(w, p);
      }
      return outcomeOf(step, ctx);
    }
  }
  const sandbox = w.deps.services.sandbox;
  if (!single || slot.item.iterate || slot.node.def !== functionNode || sandbox.runChain === undefined) return undefined;
  const maxRun = w.compiled.scenario.maxActionsPerRun;
  const room = Math.min(w.budget.room(), maxRun === undefined ? Infinity : maxRun - w.run.actions);
  const nodes = chainFrom(w, slot.node, Math.min(MAX_CHAIN, 1 + Math.max(0, room)));
  const batch = loopBatch(w, slot, nodes, room);
  if (nodes.length < 2 && batch === undefined) return undefined;
  const steps = nodes.map((n) => {
    const c = n.config as unknown as { code: string; timeoutMs: number; memoryMb: number };
    return { code: c.code, timeoutMs: c.timeoutMs, memoryMb: c.memoryMb };
  });
  const msg = slot.item.msg;
  return sandbox.runChain({ tenant: w.run.tenant, msg, vars: w.vars, steps, ...(batch && { more: batch.more }) }).then((out) => {
    const first = out[0]!;
    if (out.length > 1 && first.ok && isOneMessage(first.outcome.result)) {
      prepared.set(w, { steps: out, nodes: nodes.map((n) => n.id), at: 1, input: first.outcome.result, ...(batch && { loop: batch.prep }) });
    }
    return outcomeOf(first, ctx);
  });
}
