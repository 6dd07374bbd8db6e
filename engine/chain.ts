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
 * A chain is only as long as the actions the run holds (leased ahead for it: `Budget.ensure`)
 * and its `maxActionsPerRun` allow, so no step is computed ahead of a halt. When the chain is
 * a Loop's whole body, the loop's next iterations ride along in the same hop, and while the
 * engine applies one batch the next one computes (`loop-batch.ts`).
 */
import { FlowError } from '../core/errors.js';
import type { Message } from '../core/types.js';
import { type ChainStep, isOneMessage, type NodeContext, type NodeResult } from '../nodes/define.js';
import { functionNode, functionResult } from '../nodes/function.js';
import type { CompiledNode } from '../scenario/compile.js';
import { iterations, type LoopBody, type LoopPrep, loopBody, MAX_BATCH_ITERATIONS, sameIteration } from './loop-batch.js';
import { defineVar } from './vars.js';
import type { Slot, Work } from './work.js';

/** Longest chain sent in one hop. */
const MAX_CHAIN = 32;

type Steps = Array<{ code: string; timeoutMs: number; memoryMb: number }>;

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
  /** A loop batch: the loop, the chain's code, and the variables the batch started with. */
  body?: LoopBody;
  code?: Steps;
  vars?: Record<string, unknown>;
  /** The loop's next batch, computing while this one is applied (never rejects). */
  next?: Promise<Prepared | undefined>;
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

/** Actions the run may still spend (held, and under its `maxActionsPerRun`). */
function roomOf(w: Work, held: number): number {
  const maxRun = w.compiled.scenario.maxActionsPerRun;
  return Math.min(held, maxRun === undefined ? Infinity : maxRun - w.run.actions);
}

/** Uses step `p.at` for `slot` and keeps what follows it. */
function consume(w: Work, p: Prepared, ctx: NodeContext<unknown>): NodeResult {
  const step = p.steps[p.at]!;
  if (step.ok && isOneMessage(step.outcome.result)) {
    p.at++;
    p.input = step.outcome.result;
    if (p.at < p.steps.length || p.next !== undefined) prepared.set(w, p);
  }
  return outcomeOf(step, ctx);
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
    if (single && !slot.item.iterate) {
      if (p.at < p.steps.length && expected(w, p, slot)) return consume(w, p, ctx);
      if (p.at === p.steps.length && p.next !== undefined) {
        // The loop's next batch: wait for it (it is usually there already).
        return p.next.then((q) => {
          if (q === undefined || !expected(w, q, slot)) return slot.node.def.execute(slot.item.msg, ctx as never);
          launchNext(w, q);
          return consume(w, q, ctx);
        });
      }
    }
  }
  const sandbox = w.deps.services.sandbox;
  if (!single || slot.item.iterate || slot.node.def !== functionNode || sandbox.runChain === undefined) return undefined;
  const full = chainFrom(w, slot.node, MAX_CHAIN);
  const body = loopBody(w, slot, full);
  const n = full.length;
  // Further iterations wanted, and what the chain and they cost (the slot's own action is taken).
  const want = body ? Math.min(body.f.items.length - body.f.index, MAX_BATCH_ITERATIONS - 1) : 0;
  if (n < 2 && want < 1) return undefined;
  return start(w, slot, ctx, full, body, want);
}

async function start(w: Work, slot: Slot, ctx: NodeContext<unknown>, full: CompiledNode[], body: LoopBody | undefined, want: number): Promise<NodeResult> {
  const n = full.length;
  const need = n - 1 + want * (n + 1);
  const held = w.budget.room() >= need ? w.budget.room() : await w.budget.ensure(need, w.now());
  const room = roomOf(w, held);
  const nodes = full.slice(0, Math.max(1, Math.min(n, 1 + room)));
  const k = body && nodes.length === n ? Math.min(want, Math.floor((room - (n - 1)) / (n + 1))) : 0;
  const { messages: more, json } = k >= 1 ? iterations(body!, body!.f.index, k) : { messages: [], json: [] };
  const code = stepsOf(nodes);
  const msg = slot.item.msg;
  const vars = { ...w.vars };
  const sandbox = w.deps.services.sandbox;
  const out = await sandbox.runChain!({
    tenant: w.run.tenant,
    msg,
    vars: w.vars,
    steps: code,
    ...(more.length > 0 && { more, msgsJson: `[${JSON.stringify(msg)},${json.join(',')}]` }),
  });
  const first = out[0]!;
  if (out.length > 1 && first.ok && isOneMessage(first.outcome.result)) {
    const p: Prepared = { steps: out, nodes: nodes.map((x) => x.id), at: 0, input: msg };
    if (more.length > 0) Object.assign(p, { loop: { frame: body!.frame, f: body!.f, first: body!.f.index - 1, messages: [msg, ...more] }, body, code, vars });
    launchNext(w, p);
    return consume(w, p, ctx);
  }
  return outcomeOf(first, ctx);
}

/** A chain's steps, per its first node's config and length (the same for every run of a scenario). */
const stepsCache = new WeakMap<object, Steps[]>();

function stepsOf(nodes: CompiledNode[]): Steps {
  const byLength = stepsCache.get(nodes[0]!.config) ?? [];
  stepsCache.set(nodes[0]!.config, byLength);
  const hit = byLength[nodes.length];
  const same = (s: Steps[number], i: number) => {
    const c = nodes[i]!.config;
    return s.code === c.code && s.timeoutMs === c.timeoutMs && s.memoryMb === c.memoryMb;
  };
  if (hit?.every(same)) return hit;
  const steps = nodes.map((n) => {
    const c = n.config as unknown as { code: string; timeoutMs: number; memoryMb: number };
    return { code: c.code, timeoutMs: c.timeoutMs, memoryMb: c.memoryMb };
  });
  byLength[nodes.length] = steps;
  return steps;
}

/**
 * A loop batch that came back whole (every iteration it ran ended with one message) and left
 * items: sends the next batch now, so it computes while this one is applied. Its variables are
 * this batch's with every `setVar` of its steps, in order (what the run's will be by then).
 */
function launchNext(w: Work, p: Prepared): void {
  const { body, loop, code, steps } = p;
  if (body === undefined || loop === undefined || code === undefined) return;
  const n = p.nodes.length;
  const last = steps.at(-1)!;
  if (steps.length % n !== 0 || !last.ok || !isOneMessage(last.outcome.result)) return;
  const done = steps.length / n;
  const from = loop.first + done;
  const want = Math.min(body.f.items.length - from, MAX_BATCH_ITERATIONS);
  if (want < 1) return;
  const vars = { ...p.vars };
  for (const s of steps) if (s.ok) for (const [name, value] of s.outcome.sets) defineVar(vars, name, value);
  // Actions this batch may still spend (its unconsumed steps and iterations), counted high.
  const owed = steps.length - p.at + done;
  p.next = (async (): Promise<Prepared | undefined> => {
    const held = await w.budget.ensure(owed + want * (n + 1), w.now());
    const k = Math.min(want, Math.floor((roomOf(w, held) - owed) / (n + 1)));
    if (k < 1) return undefined;
    const { messages, json } = iterations(body, from, k);
    const [msg, ...more] = messages;
    const sandbox = w.deps.services.sandbox;
    const req = { tenant: w.run.tenant, msg: msg!, vars, steps: code, msgsJson: `[${json.join(',')}]` };
    const out = await sandbox.runChain!(more.length > 0 ? { ...req, more } : req);
    return { steps: out, nodes: p.nodes, at: 0, input: msg!, loop: { frame: loop.frame, f: loop.f, first: from, messages }, body, code, vars };
  })().catch(() => undefined);
}
