/**
 * The negative return codes of the Lua scripts: one code space for every script (the same
 * table as redis/lua/lib-codes.lua), and one mapper from a code to its error. Messages are
 * those of the memory twins, so a caller cannot tell the two stores apart by them.
 */
import { type ErrorCode, FlowError } from '../core/errors.js';
import { maxActiveReached, notFound as scenarioNotFound, storageFull } from '../engine/scenario-store.js';

/** Every negative return code, by meaning; each value is unique. */
export const SCRIPT_CODES = {
  MAX_ACTIVE_SCENARIOS: -1,
  RUN_OWNERSHIP_LOST: -2,
  RUN_NOT_FOUND: -3,
  RUN_NOT_HALTED: -4,
  SCENARIO_NOT_FOUND: -5,
  SCENARIO_STORAGE_FULL: -6,
} as const;

export type ScriptCodeName = keyof typeof SCRIPT_CODES;

/** What the failed call was about, for the message. */
export interface ScriptSubject {
  /** The tenant of the run or scenario. */
  tenant?: string;
  /** The run the script was called for. */
  runId?: string;
  /** The scenario the script was called for. */
  scenarioId?: string;
  /** MAX_ACTIVE_SCENARIOS: the tenant's enabled scenarios and its limit. */
  enabled?: number;
  maxActive?: number;
  /** SCENARIO_STORAGE_FULL: bytes of versions the tenant keeps, of the refused version, and the limit. */
  storage?: { kept: number; bytes: number; limit: number };
}

const run = (s: ScriptSubject) => (s.runId === undefined ? 'the run' : `run ${s.runId}`);

/** The registry code and the error of each script code. */
export const SCRIPT_ERRORS: { [K in ScriptCodeName]: { code: ErrorCode; error: (s: ScriptSubject) => FlowError } } = {
  MAX_ACTIVE_SCENARIOS: { code: 'MAX_ACTIVE_SCENARIOS', error: (s) => maxActiveReached(s.tenant ?? '?', s.enabled ?? 0, s.maxActive ?? 0) },
  RUN_OWNERSHIP_LOST: { code: 'RUN_OWNERSHIP_LOST', error: (s) => new FlowError('RUN_OWNERSHIP_LOST', `another worker has taken over ${run(s)}`) },
  RUN_NOT_FOUND: {
    code: 'NOT_FOUND',
    error: (s) =>
      new FlowError('NOT_FOUND', s.runId === undefined ? 'no such run' : `no run ${s.runId}${s.tenant === undefined ? '' : ` for tenant ${s.tenant}`}`),
  },
  RUN_NOT_HALTED: { code: 'RUN_NOT_HALTED', error: (s) => new FlowError('RUN_NOT_HALTED', `${run(s)} is not halted; only a halted run can be resumed`) },
  SCENARIO_NOT_FOUND: { code: 'NOT_FOUND', error: (s) => scenarioNotFound(s.scenarioId ?? '?') },
  SCENARIO_STORAGE_FULL: {
    code: 'SCENARIO_STORAGE_FULL',
    error: (s) => storageFull(s.tenant ?? '?', s.scenarioId ?? '?', s.storage ?? { kept: 0, bytes: 0, limit: 0 }),
  },
};

const byValue = new Map<number, ScriptCodeName>(Object.entries(SCRIPT_CODES).map(([name, value]) => [value, name as ScriptCodeName]));

/** The error of a script's negative return code; INTERNAL for a code no script returns. */
export function scriptError(code: number, subject: ScriptSubject = {}): FlowError {
  const name = byValue.get(code);
  return name ? SCRIPT_ERRORS[name].error(subject) : new FlowError('INTERNAL', `a Lua script returned the unknown code ${code}`);
}
