/** The scheduler's logging: its logger, and failures logged once per context until they end. */

export interface SchedulerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Logs an ongoing failure once, and its end. */
export interface FailureLog {
  /** Logs the failure of `what` (in `context`) unless the same error is already logged there. */
  fail(context: string, fields: object, err: unknown, what: string): void;
  /** Logs that `what` works again, if `context` was failing. */
  ok(context: string, fields: object, what: string): void;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function failureLog(log: SchedulerLogger): FailureLog {
  /** The last error logged per context, so an ongoing failure is logged once. */
  const failing = new Map<string, string>();
  return {
    fail(context, fields, err, what) {
      const msg = errorText(err);
      if (failing.get(context) === msg) return;
      failing.set(context, msg);
      log.warn({ ...fields, err: msg }, `scheduler: ${what} failed; retrying next tick`);
    },
    ok(context, fields, what) {
      if (failing.delete(context)) log.info(fields, `scheduler: ${what} works again`);
    },
  };
}
