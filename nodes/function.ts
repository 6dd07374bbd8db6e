import { z } from 'zod';
import { FlowError } from '../core/errors.js';
import type { Message } from '../core/types.js';
import { alt, EMPTY, one, tag } from './cost.js';
import { defineNode, type FunctionOutcome, isOneMessage, type NodeContext, type NodeResult, nextRef } from './define.js';
import { nodeId } from './fields.js';

/**
 * What a Function's outcome means for the run: its log lines, the message(s) it emits, and
 * its `setVar`s (applied only when the result is valid). Shared with the executor's chains.
 */
export function functionResult(out: FunctionOutcome, ctx: Pick<NodeContext<unknown>, 'log' | 'setVar'>): NodeResult {
  for (const line of out.logs) ctx.log(line);
  let messages: Message[];
  const r = out.result;
  if (r === null || r === undefined) messages = [];
  else if (Array.isArray(r)) {
    const bad = r.findIndex((m) => !isOneMessage(m));
    if (bad >= 0) throw new FlowError('FUNCTION_ERROR', `returned array item ${bad} is not an object`);
    messages = r as Message[];
  } else if (isOneMessage(r)) messages = [r];
  else throw new FlowError('FUNCTION_ERROR', `returned a ${typeof r}; return an object, an array of objects, or null`);
  for (const [name, value] of out.sets) ctx.setVar(name, value);
  return out.counted ? { kind: 'emit', messages, chars: out.chars, counted: true } : { kind: 'emit', messages, chars: out.chars };
}

/**
 * Runs `code` as a JavaScript function body in an isolated-vm sandbox with `msg`, `vars`,
 * `setVar(name, value)` and `log(...)`, in a sandbox host process (never in the engine's
 * thread). Returns a message, an array of messages, or nothing. `setVar` calls take effect
 * when the function returns normally.
 */
export const functionNode = defineNode({
  type: 'function',
  config: z.object({
    code: z.string(),
    /** Wall-clock limit for one call, in ms (default 1000, at most 30000: SPEC §10). */
    timeoutMs: z.number().int().min(1).max(30_000, { error: 'timeoutMs must be at most 30000' }).default(1000),
    /** Heap limit of the sandbox, in MB (default 64, at least 8). */
    memoryMb: z.number().int().min(8).max(1024).default(64),
    next: nodeId.optional(),
  }),
  emitsOutputs: true,
  refs: (n) => nextRef(n.next),
  rawFields: ['code'],
  check(n) {
    try {
      // Parses without running: the body is never called here.
      new Function('msg', 'vars', 'setVar', 'log', `"use strict";\n${n.code}\n`);
      return [];
    } catch (err) {
      return [`code: ${(err as Error).name}: ${(err as Error).message}`];
    }
  },
  estimate: (n, c) =>
    alt(n.next ? one(alt(tag(EMPTY, `${c.label} returns no message`), tag(c.next(n.next), `${c.label} returns one message`))) : one(EMPTY), c.fails()),
  costNote: () =>
    'each Function is taken as returning no message or one message (one returning an array of k messages runs what follows it k times, beyond this estimate)',
  async execute(input, ctx) {
    const { code, timeoutMs, memoryMb } = ctx.node;
    const vars = ctx.vars as Record<string, unknown>;
    const out = await ctx.services.sandbox.run({ tenant: ctx.tenant, code, msg: input, vars, timeoutMs, memoryMb, admit: ctx.admit });
    return functionResult(out, ctx);
  },
});
