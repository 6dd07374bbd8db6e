import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode, EXIT, exitCodeOf, httpStatusOf, isErrorCode } from '../core/errors.js';

describe('error registry', () => {
  it('gives every code a message, an HTTP error status and an exit code of SPEC §7', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(spec.message.length, code).toBeGreaterThan(0);
      expect(spec.http, code).toBeGreaterThanOrEqual(400);
      expect(spec.http, code).toBeLessThan(600);
      expect([EXIT.failed, EXIT.invalid, EXIT.halted], code).toContain(spec.exit);
    }
  });

  it('fails a command with 1 exactly for what the API answers with a 5xx', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      expect(spec.exit === EXIT.failed, code).toBe(spec.http >= 500);
    }
  });

  it('keeps the statuses and exit codes the API and the command line answer with', () => {
    const expected: Partial<Record<ErrorCode, [number, number]>> = {
      INVALID_INPUT: [400, 2],
      INVALID_SCENARIO: [400, 2],
      UNAUTHORIZED: [401, 2],
      BAD_SIGNATURE: [401, 2],
      FORBIDDEN: [403, 2],
      NOT_FOUND: [404, 2],
      RUN_NOT_HALTED: [409, 2],
      MAX_ACTIVE_SCENARIOS: [409, 2],
      PAYLOAD_TOO_LARGE: [413, 2],
      QUOTA_EXHAUSTED: [429, 3],
      INTERNAL: [500, 1],
      REDIS_UNAVAILABLE: [503, 1],
      TIMEOUT: [504, 1],
      FUNCTION_TIMEOUT: [500, 1],
      RUN_OWNERSHIP_LOST: [500, 1],
    };
    for (const [code, [http, exit]] of Object.entries(expected)) {
      expect([httpStatusOf(code), exitCodeOf(code)], code).toEqual([http, exit]);
    }
  });

  it('answers 500 and exit 1 for codes it does not know (user-defined Exception codes)', () => {
    for (const code of ['PAYMENT_DECLINED', 'constructor', 'toString', '']) {
      expect(isErrorCode(code)).toBe(false);
      expect(httpStatusOf(code)).toBe(500);
      expect(exitCodeOf(code)).toBe(EXIT.failed);
    }
  });
});
