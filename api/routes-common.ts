/**
 * What the HTTP routes share: errors with an HTTP status, the raw request body, id checks, and
 * waiting for a run that is being started.
 */
import type { FastifyRequest } from 'fastify';
import { type ErrorCode, FlowError } from '../core/errors.js';
import type { RunRecord, TriggerInfo } from '../core/types.js';
import type { Platform, TriggerOptions } from '../engine/platform.js';
import type { Metrics } from './metrics.js';
import type { TenantGate } from './tenant-gate.js';

/** An error the API answers with: its code, a message, extra fields of the error object, headers. */
export class ApiError extends FlowError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly extra: { details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(code, message);
    this.name = 'ApiError';
  }
}

/** What every route module gets from `buildServer`. */
export interface ApiContext {
  platform: Platform;
  metrics: Metrics;
  /** How long `?wait=true` waits for a run to end. */
  waitTimeoutMs: number;
  /** Each tenant's share of this server's requests (tenant-gate.ts). */
  gate: TenantGate;
}

/** Tenant names, as the command line accepts them. */
export const TENANT_RE = /^[a-z0-9_-]{1,64}$/;
/** Scenario ids (SPEC §1). */
export const SCENARIO_ID_RE = /^[a-z0-9_-]{1,64}$/;
/** Run ids: anything else cannot name a stored run. */
export const RUN_ID_RE = /^[A-Za-z0-9_-]{1,100}$/;

/** A billing period key, `?period=YYYY-MM`. */
const PERIOD_RE = /^\d{4}-(0[1-9]|1[0-2])$/;

/** `?period` as given (undefined when absent); INVALID_INPUT naming it when it is not YYYY-MM. */
export function periodParam(period: string | undefined): string | undefined {
  if (period !== undefined && !PERIOD_RE.test(period)) throw new ApiError('INVALID_INPUT', `?period must be YYYY-MM, got ${JSON.stringify(period)}`);
  return period;
}

/** An Idempotency-Key: 1-255 visible ASCII characters. */
export const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

/**
 * The request's `Idempotency-Key` (SPEC §10) as the platform keys it: per route target (the
 * caller names it, e.g. `hook:<path>`); the platform keeps keys per tenant. Undefined without
 * the header; 400 INVALID_INPUT for a malformed one.
 */
export function idempotencyKeyOf(req: FastifyRequest, target: string): string | undefined {
  const v = req.headers['idempotency-key'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !IDEMPOTENCY_KEY_RE.test(v))
    throw new ApiError('INVALID_INPUT', 'the Idempotency-Key header must be 1-255 visible ASCII characters');
  return `${target}\n${v}`;
}

const rawBodies = new WeakMap<FastifyRequest, Buffer>();

/** Keeps the body exactly as received (webhook signatures are computed over it). */
export function setRawBody(req: FastifyRequest, body: Buffer): void {
  rawBodies.set(req, body);
}

/** The body exactly as received (empty when there was none). */
export function rawBodyOf(req: FastifyRequest): Buffer {
  return rawBodies.get(req) ?? Buffer.alloc(0);
}

/** JSON media types: `application/json` and `application/*+json`. */
export const JSON_TYPE_RE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

export function isJsonContentType(header: string | undefined): boolean {
  return typeof header === 'string' && JSON_TYPE_RE.test(header.trim());
}

/** `?wait=true` (or `1`). */
export function isTrue(v: unknown): boolean {
  return v === 'true' || v === '1' || v === '';
}

/** A run record as the API shows it: without the internal resume state. */
export function publicRun(run: RunRecord): Omit<RunRecord, 'pending'> & { resumable: boolean } {
  const { pending, ...rest } = run;
  return { ...rest, resumable: run.status === 'halted' && !!pending };
}

/** Seconds from now until `end` (an ISO instant), at least 1. */
export function secondsUntil(end: string, now: Date = new Date()): number {
  return Math.max(1, Math.ceil((Date.parse(end) - now.getTime()) / 1000));
}

const ENDED = new Set<RunRecord['status']>(['succeeded', 'failed', 'halted', 'rejected']);

/** Tasks a run is answered with at most, unless a route asks for another page (a run's task log has one task per action). */
export const MAX_TASK_PAGE = 1000;

/**
 * Starts a run with `platform.trigger` and resolves with its record once it has ended
 * (succeeded, failed, halted or rejected).
 *
 * `platform.waitFor` needs the run id before the run starts, and `trigger` makes the id, so this
 * subscribes to the tenant's events first, remembers every run end seen, then triggers: an end
 * that comes before `trigger` returns is not missed, halted included. A slow poll of the record
 * covers an event lost on the way (a Redis reconnect).
 */
export async function triggerAndWait(
  platform: Platform,
  tenant: string,
  scenarioId: string,
  payload: unknown,
  trigger: TriggerInfo,
  timeoutMs: number,
  opts: TriggerOptions = {},
): Promise<RunRecord> {
  const ended = new Set<string>();
  let target: string | null = null;
  let wake!: () => void;
  const woken = new Promise<void>((r) => (wake = r));
  const stop = await platform.subscribe(
    tenant,
    (e) => {
      if (e.type !== 'run' || !ENDED.has(e.status)) return;
      ended.add(e.runId);
      if (e.runId === target) wake();
    },
    { runsOnly: true },
  );
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    const run = await platform.trigger(tenant, scenarioId, payload, trigger, opts);
    const runId = (target = run.runId);
    if (ended.has(runId) || ENDED.has(run.status)) wake(); // ENDED: a repeated idempotent trigger
    poll = setInterval(() => {
      platform.runs.get(tenant, runId, { limit: 0 }).then(
        (r) => r && ENDED.has(r.status) && wake(),
        () => undefined,
      );
    }, 2000);
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ApiError(
              'TIMEOUT',
              `run ${runId} did not end within ${timeoutMs} ms${platform.mode === 'redis' ? ' (is a worker running?)' : ''}; it goes on: GET /api/runs/${runId}`,
              { details: { runId } },
            ),
          ),
        timeoutMs,
      );
    });
    await Promise.race([woken, timedOut]);
    const done = await platform.runs.get(tenant, runId, { limit: MAX_TASK_PAGE });
    if (!done) throw new ApiError('NOT_FOUND', `run ${runId} disappeared`);
    return done;
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    stop();
  }
}
