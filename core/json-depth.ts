/**
 * How deep JSON may nest where it enters Flowmeter: trigger payloads, scenario documents,
 * Function results and `setVar` values, Connector response bodies. Deeper data is refused
 * where it arrives, with a message naming the limit, so that nothing downstream (the task
 * log's size counting, JSON.stringify in checkpoints, structured clones) meets a stack
 * overflow: a tenant's data must not fail an engine step, or a run forever (SPEC §10).
 */
import { FlowError } from './errors.js';

/**
 * The most levels of arrays and objects a payload, a scenario document or a response body may
 * nest (a scalar nests 0, `[]` 1, `[[1]]` 2).
 */
export const MAX_JSON_DEPTH = 100;

/**
 * The most levels a Function's result or `setVar` value may nest: room for the message around
 * a payload, and for data put at a path (at most 64 names, nodes/fields.ts), around what came
 * in at MAX_JSON_DEPTH; a Function returning the message it was given never meets it.
 */
export const MAX_MESSAGE_DEPTH = 2 * MAX_JSON_DEPTH;

/** Whether `value` nests more than `max` levels of arrays and objects (iterative: any depth is safe to ask). */
export function nestsDeeper(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const v = stack.pop() as object;
    const d = depths.pop()!;
    if (d > max) return true;
    const items = Array.isArray(v) ? v : Object.values(v);
    for (let i = 0; i < items.length; i++) {
      const c = items[i];
      if (c !== null && typeof c === 'object') {
        stack.push(c);
        depths.push(d + 1);
      }
    }
  }
  return false;
}

/**
 * Whether JSON `text` nests more than `max` levels, by scanning its brackets outside string
 * literals (no parse, no recursion). Meant for text about to be parsed: for text that is not
 * JSON the answer means nothing, and the parse fails anyway.
 */
export function textNestsDeeper(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

/** The one-line problem of a value nested too deeply: `${what} nests deeper than 100 levels …`. */
export function tooDeep(what: string, max: number = MAX_JSON_DEPTH): string {
  return `${what} nests deeper than ${max} levels of arrays and objects`;
}

/** Throws INVALID_INPUT when a trigger's payload nests deeper than {@link MAX_JSON_DEPTH}. */
export function checkPayload(payload: unknown): void {
  if (nestsDeeper(payload)) throw new FlowError('INVALID_INPUT', tooDeep('the payload'));
}
