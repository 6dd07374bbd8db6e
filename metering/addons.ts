/**
 * Add-on purchases (SPEC §4, §11): extra actions for one period, recorded with the time they
 * were bought (invoices prorate their price) and an optional expiry (expired add-on actions
 * stop counting toward the limit).
 */
import { randomUUID } from 'node:crypto';
import { FlowError } from '../core/errors.js';
import type { Period } from './periods.js';

export interface AddOnPurchase {
  id: string;
  /** When it was bought, ISO 8601 (UTC, as `Date.toISOString()`). */
  at: string;
  actions: number;
  /** When its actions stop counting, ISO 8601 UTC; absent: at the period's end. */
  expires?: string;
}

export interface AddOnOptions {
  /** The actions stop counting toward the limit at this instant (must be after the purchase). */
  expires?: Date;
}

/** Validates an add-on and makes its purchase record; one-line INVALID_INPUT errors. */
export function checkAddOn(actions: number, at: Date, opts: AddOnOptions = {}): AddOnPurchase {
  if (!Number.isSafeInteger(actions) || actions <= 0)
    throw new FlowError('INVALID_INPUT', `add-on actions must be a positive whole number, got ${JSON.stringify(actions)}`);
  const p: AddOnPurchase = { id: randomUUID(), at: at.toISOString(), actions };
  if (opts.expires !== undefined) {
    if (Number.isNaN(opts.expires.getTime())) throw new FlowError('INVALID_INPUT', 'add-on expiry is not a valid date');
    if (opts.expires.getTime() <= at.getTime())
      throw new FlowError('INVALID_INPUT', `add-on expiry ${opts.expires.toISOString()} is not after now (${at.toISOString()})`);
    p.expires = opts.expires.toISOString();
  }
  return p;
}

/** Actions of the add-ons that count at `at`: those without expiry and those not yet expired. */
export function validAddOns(purchases: readonly AddOnPurchase[], at: Date): number {
  const now = at.toISOString();
  let sum = 0;
  for (const p of purchases) if (p.expires === undefined || p.expires > now) sum += p.actions;
  return sum;
}

/** The instant a period's report counts add-ons at: `at`, or the period's last instant once it is over. */
export function reportInstant(period: Period, at: Date): Date {
  return new Date(Math.min(at.getTime(), Date.parse(period.end) - 1));
}
