/**
 * How much a scenario's variables may hold. Variables outlive runs (they are never expired),
 * every run of the scenario loads all of them, and every Function call gets them all: without
 * a bound, one action could store 10 MB (a Function's whole output) for good, as 800,000
 * `setVar` calls of small values, each a write of its own, and every later run of the scenario
 * would carry them.
 *
 * A Function's `setVar` that would pass a bound throws in the Function (services/
 * sandbox-bootstrap.ts), measured on the variables it was given; the stores check again when
 * they write (another run may have set variables meanwhile) and fail the node then.
 */
import { FlowError } from './errors.js';

/** The most bytes a scenario's variables may take as a JSON object. */
export const MAX_VARS_BYTES = 1024 * 1024;

/** The most variables a scenario may have. */
export const MAX_VARS = 1000;

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
