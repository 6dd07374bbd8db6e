/**
 * The one registry of stable error codes. Errors cross realms (isolates, processes, Redis),
 * so they are classified by `code`, never by `instanceof`.
 */
export const ERROR_CODES = {
  FUNCTION_TIMEOUT: 'a Function node ran longer than its timeoutMs',
  FUNCTION_MEMORY: 'a Function node went over its memoryMb',
  FUNCTION_ERROR: 'a Function node threw or returned something that is not a message',
  HTTP_ERROR: 'a Connector request ended with a non-2xx status',
  HTTP_TIMEOUT: 'a Connector request timed out on every attempt',
  HTTP_NETWORK: 'a Connector request failed on the network on every attempt',
  MAIL_ERROR: 'a Mail node could not send',
  CONVERSION_MISSING: 'a Conversion table has no entry for the value',
  LOOP_TOO_LARGE: 'a Loop got more items than its maxItems',
  LOOP_NOT_ARRAY: 'a Loop `over` path does not hold an array',
  EXCEPTION: 'an Exception node failed the path',
  QUOTA_EXHAUSTED: "the tenant's actions for this period are used up",
  RUN_BUDGET_EXCEEDED: "a run would pass its scenario's maxActionsPerRun",
  PATH_NOT_WRITABLE: 'a node cannot write its result at the path it was given',
  ENV_MISSING: 'a ${env:NAME} reference names an unset environment variable',
  INVALID_SCENARIO: 'the scenario document is not valid',
  INVALID_INPUT: 'bad input to a command',
  NOT_FOUND: 'an unknown id',
  MAX_ACTIVE_SCENARIOS: "enabling would pass the tenant's maxActiveScenarios",
  RUN_OWNERSHIP_LOST: 'another worker has taken over the run',
  RUN_NOT_HALTED: 'only a halted run can be resumed',
  REDIS_UNAVAILABLE: 'Redis cannot be reached',
  TIMEOUT: 'waiting for something took too long',
  UNAUTHORIZED: 'an API request without a valid key',
  FORBIDDEN: 'the API key may not do this (admin only)',
  PAYLOAD_TOO_LARGE: 'a request body over the server\'s body limit',
  BAD_SIGNATURE: 'a webhook request without a valid X-Signature',
  ENV_NOT_ALLOWED: 'a ${env:NAME} reference names a variable production does not let tenants read (FLOWMETER_TENANT_ENV)',
  EGRESS_DENIED: 'a Connector request to a loopback, private, link-local or unspecified address was not sent',
  SECRET_MISSING: "a ${secret:NAME} reference names a credential the tenant has not stored",
  SECRETS_KEY_INVALID: 'FLOWMETER_SECRETS_KEY is missing or not 64 hex characters',
  INTERNAL: 'an unexpected engine error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

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
