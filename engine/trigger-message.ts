/** The message a run's trigger creates (§1): `{ payload }`, plus `headers`/`query` or `firedAt`. */
import type { Message, RunRecord } from '../core/types.js';

export function triggerMessage(run: RunRecord, payload: unknown): Message {
  const t = run.trigger;
  if (t.type === 'webhook') return { headers: t.headers ?? {}, query: t.query ?? {}, payload: payload ?? null };
  if (t.type === 'cron') return { firedAt: t.firedAt ?? run.startedAt, payload: payload ?? null };
  return { payload: payload ?? null };
}
