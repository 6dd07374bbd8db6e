/**
 * One warm isolate of the sandbox (`sandbox.ts`): an isolated-vm Isolate with its one Context,
 * bootstrapped (`sandbox-bootstrap.ts`), and References to the driver functions it returned.
 */
import ivm from 'isolated-vm';
import { errorMessage, FlowError } from '../core/errors.js';
import { bootstrap } from './sandbox-bootstrap.js';

/** Time the bootstrap (and a batch's `collect`) may take, ms. */
export const BOOT_TIMEOUT_MS = 10_000;

/** The driver functions inside the context take ids, code and JSON strings, and return strings. */
type Fn = (...args: Array<string | number>) => string;

export interface Slot {
  isolate: ivm.Isolate;
  run: ivm.Reference<Fn>;
  compile: ivm.Reference<Fn>;
  drop: ivm.Reference<Fn>;
  batch: ivm.Reference<Fn>;
  collect: ivm.Reference<Fn>;
  /** code → id of the compiled function in the context, in LRU order. */
  scripts: Map<string, number>;
  lastCode: string | undefined;
  nextId: number;
}

/** A new isolate of `memoryMb` MB with its bootstrapped context; `maxBytes`: the most bytes of a call's output. Throws INTERNAL. */
export function newSlot(memoryMb: number, maxBytes: number): Slot {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = isolate.createContextSync();
    const script = isolate.compileScriptSync(bootstrap(maxBytes, maxBytes));
    const fns = script.runSync(context, { reference: true, timeout: BOOT_TIMEOUT_MS }) as ivm.Reference<Fn[]>;
    script.release();
    const get = (i: number): ivm.Reference<Fn> => fns.getSync(i, { reference: true }) as ivm.Reference<Fn>;
    const slot: Slot = {
      isolate,
      run: get(0),
      compile: get(1),
      drop: get(2),
      batch: get(3),
      collect: get(4),
      scripts: new Map(),
      lastCode: undefined,
      nextId: 1,
    };
    fns.release();
    return slot;
  } catch (e) {
    if (!isolate.isDisposed) isolate.dispose();
    throw new FlowError('INTERNAL', `could not start the Function sandbox: ${errorMessage(e)}`);
  }
}
