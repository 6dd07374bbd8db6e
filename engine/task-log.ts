/**
 * Task log entries as stored: inputs and outputs over the size cap are truncated (with a
 * marker saying so), and every registered secret is scrubbed.
 */
import type { Redactor } from './secrets.js';
import type { ErrorInfo, TaskRecord } from './types.js';

/** Default cap on a task's serialised input or output, in bytes. */
export const DEFAULT_TASK_BYTES = 16 * 1024;

export interface TruncatedMarker {
  $truncated: true;
  bytes: number;
  preview: string;
}

function capped(value: unknown, maxBytes: number, redactor: Redactor | null): unknown {
  if (value === undefined || value === null) return value ?? null;
  if (typeof value !== 'object' && typeof value !== 'string') return value;
  let json = JSON.stringify(value);
  if (json === undefined) return null;
  const scrub = redactor !== null && redactor.size > 0;
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
