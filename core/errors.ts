/**
 * The one registry of stable error codes: what each means, the HTTP status the API answers
 * with, and the exit code of the command line (SPEC §7). Errors cross realms (isolates,
 * processes, Redis), so they are classified by `code`, never by `instanceof`.
 */

/** Exit codes of the command line (SPEC §7). */
export const EXIT = { ok: 0, failed: 1, invalid: 2, halted: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** How one error code is reported. */
export interface ErrorSpec {
  /** What the code means, in one line. */
  readonly message: string;
  /** The HTTP status the API answers with (a 500 answers INTERNAL and hides the message). */
  readonly http: number;
  /** The command line's exit code: 1 failed, 2 invalid input, 3 halted or rejected. */
  readonly exit: ExitCode;
}

/** Every code with its spec; an entry without a status or an exit code does not compile. */
export const ERROR_CODES = {
  FUNCTION_TIMEOUT: { message: 'a Function node ran longer than its timeoutMs', http: 500, exit: EXIT.failed },
  FUNCTION_MEMORY: { message: 'a Function node went over its memoryMb', http: 500, exit: EXIT.failed },
  FUNCTION_ERROR: { message: 'a Function node threw or returned something that is not a message', http: 500, exit: EXIT.failed },
  HTTP_ERROR: { message: 'a Connector request ended with a non-2xx status', http: 500, exit: EXIT.failed },
  HTTP_TIMEOUT: { message: 'a Connector request timed out on every attempt', http: 500, exit: EXIT.failed },
  HTTP_NETWORK: { message: 'a Connector request failed on the network on every attempt', http: 500, exit: EXIT.failed },
  MAIL_ERROR: { message: 'a Mail node could not send', http: 500, exit: EXIT.failed },
  CONVERSION_MISSING: { message: 'a Conversion table has no entry for the value', http: 500, exit: EXIT.failed },
  LOOP_TOO_LARGE: { message: 'a Loop got more items than its maxItems', http: 500, exit: EXIT.failed },
  LOOP_NOT_ARRAY: { message: 'a Loop `over` path does not hold an array', http: 500, exit: EXIT.failed },
  OUTPUT_TOO_LARGE: {
    message: "a run's outputs and collected loop payloads would pass 64 MB of JSON, or a wave's node results 256 MB",
    http: 500,
    exit: EXIT.failed,
  },
  EXCEPTION: { message: 'an Exception node failed the path', http: 500, exit: EXIT.failed },
  QUOTA_EXHAUSTED: { message: "the tenant's actions for this period are used up", http: 429, exit: EXIT.halted },
  RUN_BUDGET_EXCEEDED: { message: "a run would pass its scenario's maxActionsPerRun", http: 500, exit: EXIT.failed },
  PATH_NOT_WRITABLE: { message: 'a node cannot write its result at the path it was given', http: 500, exit: EXIT.failed },
  ENV_MISSING: { message: 'a ${env:NAME} reference names an unset environment variable', http: 500, exit: EXIT.failed },
  INVALID_SCENARIO: { message: 'the scenario document is not valid', http: 400, exit: EXIT.invalid },
  INVALID_INPUT: { message: 'bad input to a command', http: 400, exit: EXIT.invalid },
  NOT_FOUND: { message: 'an unknown id', http: 404, exit: EXIT.invalid },
  MAX_ACTIVE_SCENARIOS: { message: "enabling would pass the tenant's maxActiveScenarios", http: 409, exit: EXIT.invalid },
  SCENARIO_STORAGE_FULL: {
    message: 'deploying would pass the bytes of scenario versions a tenant may keep (FLOWMETER_SCENARIO_BYTES)',
    http: 409,
    exit: EXIT.invalid,
  },
  RUN_OWNERSHIP_LOST: { message: 'another worker has taken over the run', http: 500, exit: EXIT.failed },
  RUN_NOT_HALTED: { message: 'only a halted run can be resumed', http: 409, exit: EXIT.invalid },
  REDIS_UNAVAILABLE: { message: 'Redis cannot be reached', http: 503, exit: EXIT.failed },
  WORKER_CRASHED: {
    message: "a run's execution killed its worker process, or failed in the engine, twice; it is not retried again",
    http: 500,
    exit: EXIT.failed,
  },
  WORKER_STOPPING: { message: 'the worker was told to stop; the run continues elsewhere from its checkpoint', http: 503, exit: EXIT.failed },
  ENV_NOT_ALLOWED: {
    message: 'a ${env:NAME} reference names a variable production does not let tenants read (FLOWMETER_TENANT_ENV)',
    http: 400,
    exit: EXIT.invalid,
  },
  EGRESS_DENIED: { message: 'a Connector request to a loopback, private, link-local or unspecified address was not sent', http: 500, exit: EXIT.failed },
  SECRET_MISSING: { message: 'a ${secret:NAME} reference names a credential the tenant has not stored', http: 401, exit: EXIT.invalid },
  SECRETS_KEY_INVALID: { message: 'FLOWMETER_SECRETS_KEY is missing or not 64 hex characters', http: 503, exit: EXIT.failed },
  TIMEOUT: { message: 'waiting for something took too long', http: 504, exit: EXIT.failed },
  UNAUTHORIZED: { message: 'an API request without a valid key', http: 401, exit: EXIT.invalid },
  FORBIDDEN: { message: 'the API key may not do this (admin only)', http: 403, exit: EXIT.invalid },
  TOO_MANY_REQUESTS: {
    message: "a tenant's requests waiting on one server (FLOWMETER_TENANT_REQUESTS), or its open event streams, are at their most",
    http: 429,
    exit: EXIT.invalid,
  },
  PAYLOAD_TOO_LARGE: { message: "a request body over the server's body limit", http: 413, exit: EXIT.invalid },
  BAD_SIGNATURE: { message: 'a webhook request without a valid X-Signature', http: 401, exit: EXIT.invalid },
  METHOD_NOT_ALLOWED: { message: "a webhook request with a method its scenario's trigger.methods does not list", http: 405, exit: EXIT.invalid },
  INTERNAL: { message: 'an unexpected engine error', http: 500, exit: EXIT.failed },
  PAYLOAD_NOT_KEPT: { message: "a run's trigger payload was not kept, so it cannot be replayed", http: 409, exit: EXIT.invalid },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether `code` is one of the registry's (user-defined Exception codes are not). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** The HTTP status of a code; any code not in the registry (a user-defined one) is a 500. */
export function httpStatusOf(code: string): number {
  return isErrorCode(code) ? ERROR_CODES[code].http : 500;
}

/** The command line's exit code for a code; any code not in the registry fails with 1. */
export function exitCodeOf(code: string): ExitCode {
  return isErrorCode(code) ? ERROR_CODES[code].exit : EXIT.failed;
}

/** An error with a stable `code`. User-defined codes (Exception nodes) are allowed too. */
export class FlowError extends Error {
  readonly code: string;
  readonly status?: number;
  constructor(code: ErrorCode | (string & {}), message: string, extra?: { status?: number }) {
    super(message);
    this.name = 'FlowError';
    this.code = code;
    if (extra?.status !== undefined) this.status = extra.status;
  }
}

/** Reads the code of any thrown value, across realms: a `code` string property, else INTERNAL. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code) ? code : 'INTERNAL';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof (err as { message?: unknown })?.message === 'string') return (err as { message: string }).message;
  return String(err);
}
