/**
 * Task log entries as stored: inputs and outputs over the size cap are truncated (with a
 * marker saying so), and every registered secret is scrubbed.
 */
import type { Redactor } from '../core/redact.js';
import type { ErrorInfo, TaskRecord } from '../core/types.js';

/** Default cap on a task's serialised input or output, in bytes. */
export const DEFAULT_TASK_BYTES = 16 * 1024;

export interface TruncatedMarker {
  $truncated: true;
  /** The size of the original's JSON (string escapes not counted for large values). */
  bytes: number;
  preview: string;
}

/**
 * The size of a JSON value's serialisation, counted without building it (string escapes are
 * not counted), stopping once it passes `stop`. Strings count their UTF-16 length, or with
 * `exact` their UTF-8 bytes.
 */
function jsonSize(value: unknown, stop: number, exact = false, acc = 0): number {
  if (typeof value === 'string') return acc + (exact ? Buffer.byteLength(value) : value.length) + 2;
  if (value === null || typeof value !== 'object') return acc + 8;
  acc += 2;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if ((acc = jsonSize(value[i], stop, exact, acc + 1)) > stop) return acc;
    return acc;
  }
  for (const k in value) {
    if ((acc = jsonSize((value as Record<string, unknown>)[k], stop, exact, acc + k.length + 4)) > stop) return acc;
  }
  return acc;
}

/**
 * A copy of `value` cut down to about `budget` characters of JSON (for a preview). Strings
 * are scrubbed before they are cut, so no part of a secret survives the cut.
 */
function pruned(value: unknown, budget: { left: number }, redactor: Redactor | null): unknown {
  if (budget.left <= 0) return '…';
  if (typeof value === 'string') {
    const clean = redactor && redactor.size > 0 ? redactor.redact(value) : value;
    const s = clean.length > budget.left ? `${clean.slice(0, budget.left)}…` : clean;
    budget.left -= s.length + 2;
    return s;
  }
  if (value === null || typeof value !== 'object') {
    budget.left -= String(value).length;
    return value;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of entries) {
    if (budget.left <= 0) break;
    budget.left -= k.length + 4;
    out.push([k, pruned(v, budget, redactor)]);
  }
  return Array.isArray(value) ? out.map(([, v]) => v) : Object.fromEntries(out);
}

function capped(value: unknown, maxBytes: number, redactor: Redactor | null): unknown {
  if (value === undefined || value === null) return value ?? null;
  if (typeof value !== 'object' && typeof value !== 'string') return value;
  // A value well over the cap is never serialised whole (a 10 MB payload would be, per task).
  const size = jsonSize(value, maxBytes * 2);
  if (size > maxBytes * 2) {
    const preview = JSON.stringify(pruned(value, { left: Math.min(1024, maxBytes) }, redactor));
    const marker: TruncatedMarker = { $truncated: true, bytes: jsonSize(value, Number.POSITIVE_INFINITY, true), preview };
    return marker;
  }
  const scrub = redactor !== null && redactor.size > 0;
  // Nothing to scrub, and under the cap even if every character took 6 bytes (\uXXXX; numbers
  // are counted 8, longer ones take fewer than 48): kept as it is, without serialising it.
  if (!scrub && size * 6 <= maxBytes) return value;
  let json = JSON.stringify(value);
  if (json === undefined) return null;
  if (scrub) json = redactor.redact(json);
  if (json.length > maxBytes) {
    const bytes = Buffer.byteLength(json);
    if (bytes > maxBytes) {
      const marker: TruncatedMarker = { $truncated: true, bytes, preview: json.slice(0, Math.min(1024, maxBytes)) };
      return marker;
    }
  }
  return scrub ? JSON.parse(json) : value;
}

export function scrubError(error: ErrorInfo | null, redactor: Redactor | null): ErrorInfo | null {
  if (!error || !redactor || redactor.size === 0) return error;
  return { ...error, message: redactor.redact(error.message) };
}

/** The stored form of a task: capped, scrubbed, and detached from live messages. */
export function storedTask(task: TaskRecord, maxBytes: number, redactor: Redactor | null): TaskRecord {
  const out: TaskRecord = {
    ...task,
    input: capped(task.input, maxBytes, redactor),
    output: capped(task.output, maxBytes, redactor),
    error: scrubError(task.error, redactor),
  };
  if (task.logs && redactor && redactor.size > 0) out.logs = task.logs.map((l) => redactor.redact(l));
  return out;
}
