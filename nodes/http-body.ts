/**
 * Reading a Connector's response body within a bound. A body is held whole in the worker (it
 * becomes part of a message), so without a bound one tenant's Connector pointed at a server
 * that streams without end filled the worker's memory, and every tenant's runs on it died with
 * the worker.
 */
import { FlowError } from '../core/errors.js';

/** The most bytes of a response body a Connector reads: 10 MB, as much as a Function may return. */
export const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

/**
 * The body of `res`, at most `max` bytes; past that, reading stops (the connection is let go)
 * and HTTP_ERROR says so, naming `where` and the status. A Content-Length over `max` is refused
 * before any of the body is read. `onBytes` is told what was read either way.
 */
export async function readBody(res: Response, where: string, onBytes: (n: number) => void, max = MAX_RESPONSE_BYTES): Promise<Uint8Array> {
  const tooLarge = () =>
    new FlowError('HTTP_ERROR', `${where} → ${res.status}: the response body is larger than ${max.toLocaleString('en-US')} bytes; it was not read`, {
      status: res.status,
    });
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    onBytes(0);
    throw tooLarge();
  }
  if (!res.body) {
    onBytes(0);
    return new Uint8Array(0);
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    onBytes(size);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
