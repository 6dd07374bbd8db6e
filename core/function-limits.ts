/**
 * What a Function may leave behind, beyond its output's size (services/sandbox.ts) and depth
 * (core/json-depth.ts).
 *
 * Variables. They outlive runs (they are never expired), every run of the scenario loads all
 * of them, and every Function call gets them all: without a bound, one action could store
 * 10 MB (a Function's whole output) for good, as 800,000 `setVar` calls of small values, each
 * a write of its own, and every later run of the scenario would carry them. A call whose
 * `setVar`s would pass a bound fails (services/sandbox-bootstrap.ts), measured on the
 * variables it was given; the stores check again when they write (another run may have set
 * variables meanwhile) and fail the node then.
 *
 * Messages. A Function returning an array emits one message per element, all queued at once:
 * 10 MB of `{}` is 3 million messages, and a million took 400 MB of a worker and then failed
 * the run on a stack overflow.
 */
import { FlowError } from './errors.js';

/** The most bytes a scenario's variables may take as a JSON object. */
export const MAX_VARS_BYTES = 1024 * 1024;

/** The most variables a scenario may have. */
export const MAX_VARS = 1000;

/** The most messages one Function call may return (as an array). */
export const MAX_FUNCTION_MESSAGES = 10_000;

/** The bytes a variable takes in the stores' count: its name and its value as JSON, as UTF-8. */
export function varBytes(name: string, json: string): number {
  return Buffer.byteLength(name) + Buffer.byteLength(json);
}

/** What is wrong with variables of `bytes` bytes (the stores' count) numbering `count`, or null within the bounds. */
export function varsOverBounds(bytes: number, count: number): FlowError | null {
  if (count > MAX_VARS)
    return new FlowError('FUNCTION_ERROR', `setVar: the scenario would have ${count} variables, more than the ${MAX_VARS} allowed; nothing was set`);
  if (bytes > MAX_VARS_BYTES)
    return new FlowError(
      'FUNCTION_ERROR',
      `setVar: the scenario's variables would take ${bytes} bytes, more than the ${MAX_VARS_BYTES} allowed; nothing was set`,
    );
  return null;
}
