/**
 * How long Redis keeps what expires, in seconds, as the TypeScript side passes it to the
 * scripts. What the scripts set on their own is named in redis/lua/lib-ttl.lua.
 */

const DAY = 86_400;

/** A run's billed task keys (renewed at each settlement): 35 days, past the end of any period. */
export const BILLED_TTL_SECONDS = 35 * DAY;

/** Seconds in `days` days (retention settings). */
export function daysToSeconds(days: number): number {
  return Math.round(days * DAY);
}
