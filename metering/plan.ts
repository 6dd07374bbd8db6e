/**
 * A tenant's plan (SPEC §11): prices in the currency's major units as JSON gives them, held
 * inside as integer minor units. `includedActions` becomes the quota's `monthlyActions`.
 */
import { z } from 'zod';
import { FlowError } from '../core/errors.js';
import { isCurrency, minorDigits, toMajor, toMinor } from './money.js';

/** Meters a plan may price (SPEC §3). */
export const PRICED_METERS = ['runs', 'connectorRequests', 'connectorBytes', 'mailsSent'] as const;
export type PricedMeter = (typeof PRICED_METERS)[number];

const price = z.number({ error: 'must be a number' }).min(0, 'must not be negative');
const unit = z.number().int('must be a whole number').min(1, 'must be at least 1').default(1);

/** The plan document, as `plan set --file` and `PUT /api/plan` take it (prices in major units). */
export const planSchema = z.strictObject({
  /** Shown on invoices. */
  name: z.string().min(1, 'must not be empty').max(100),
  /** ISO 4217 code, e.g. `EUR`. */
  currency: z.string().refine(isCurrency, 'must be an ISO 4217 currency code such as USD or EUR'),
  /** The price of one period. */
  basePrice: price,
  /** Actions included in the base price: sets the quota's `monthlyActions`. */
  includedActions: z.number().int('must be a whole number').min(0, 'must not be negative'),
  /** The price of each `overageUnit` actions past the included ones (and add-ons). */
  overagePrice: price.default(0),
  /** Overage is billed per this many actions, rounded up (default 1). */
  overageUnit: unit,
  /** The price of one add-on pack of `addOnActions` actions for a whole period (prorated). */
  addOnPrice: price.default(0),
  /** Actions in one add-on pack (default 1). */
  addOnActions: unit,
  /** Informational meters billed past their `included` use, per `unit`, at `price`. */
  meters: z
    .partialRecord(
      z.enum(PRICED_METERS),
      z.strictObject({ included: z.number().int('must be a whole number').min(0, 'must not be negative').default(0), price, unit }),
    )
    .default({}),
});

export type PlanDocument = z.infer<typeof planSchema>;

/** A plan with every price in integer minor units of `currency` (`digits` decimals). */
export interface Plan {
  name: string;
  currency: string;
  digits: number;
  basePrice: number;
  includedActions: number;
  overagePrice: number;
  overageUnit: number;
  addOnPrice: number;
  addOnActions: number;
  meters: Partial<Record<PricedMeter, { included: number; price: number; unit: number }>>;
}

function path(p: ReadonlyArray<PropertyKey>): string {
  return p.map(String).join('.') || '(document)';
}

/** Validates a plan document and converts its prices exactly; throws INVALID_INPUT in one line. */
export function parsePlan(doc: unknown): Plan {
  const parsed = planSchema.safeParse(doc);
  if (!parsed.success) {
    throw new FlowError('INVALID_INPUT', `invalid plan: ${parsed.error.issues.map((i) => `${path(i.path)}: ${i.message}`).join('; ')}`);
  }
  const d = parsed.data;
  const digits = minorDigits(d.currency);
  const problems: string[] = [];
  const minor = (value: number, where: string): number => {
    const m = toMinor(value, digits);
    if (typeof m === 'string') problems.push(`${where}: ${m.replace('the currency', d.currency)}`);
    return typeof m === 'number' ? m : 0;
  };
  const meters: Plan['meters'] = {};
  const plan: Plan = {
    name: d.name,
    currency: d.currency,
    digits,
    basePrice: minor(d.basePrice, 'basePrice'),
    includedActions: d.includedActions,
    overagePrice: minor(d.overagePrice, 'overagePrice'),
    overageUnit: d.overageUnit,
    addOnPrice: minor(d.addOnPrice, 'addOnPrice'),
    addOnActions: d.addOnActions,
    meters,
  };
  for (const [name, m] of Object.entries(d.meters) as Array<[PricedMeter, { included: number; price: number; unit: number }]>) {
    meters[name] = { included: m.included, price: minor(m.price, `meters.${name}.price`), unit: m.unit };
  }
  if (problems.length) throw new FlowError('INVALID_INPUT', `invalid plan: ${problems.join('; ')}`);
  return plan;
}

/** The plan as its document again (prices in major units), as `GET /api/plan` shows it. */
export function planDocument(p: Plan): PlanDocument {
  const major = (m: number) => toMajor(m, p.digits);
  const meters: PlanDocument['meters'] = {};
  for (const [name, m] of Object.entries(p.meters) as Array<[PricedMeter, { included: number; price: number; unit: number }]>) {
    meters[name] = { included: m.included, price: major(m.price), unit: m.unit };
  }
  return {
    name: p.name,
    currency: p.currency,
    basePrice: major(p.basePrice),
    includedActions: p.includedActions,
    overagePrice: major(p.overagePrice),
    overageUnit: p.overageUnit,
    addOnPrice: major(p.addOnPrice),
    addOnActions: p.addOnActions,
    meters,
  };
}
