/**
 * Invoices (SPEC §11): a pure function of the plan, the period's counters and the add-ons
 * bought in it. Money is integer minor units throughout (`invoiceMinor`); `toInvoice` shows it
 * in major units as the plan document does.
 */
import { FlowError } from '../core/errors.js';
import type { AddOnPurchase } from './addons.js';
import type { Ledger } from './ledger.js';
import { formatMinor, minorDigits, mulDivRoundHalfUp, toMajor } from './money.js';
import type { Period } from './periods.js';
import type { Plan, PricedMeter } from './plan.js';

export type InvoiceLineKind = 'base' | 'overage' | 'addOn' | 'meter';

export interface InvoiceLine {
  kind: InvoiceLineKind;
  description: string;
  quantity: number;
  unitPrice: number;
  amount: number;
}

export interface Invoice {
  tenant: string;
  period: string;
  currency: string;
  lines: InvoiceLine[];
  total: number;
  /** The period has not ended: the invoice may still change. */
  preview: boolean;
}

/** What an invoice is computed from. */
export interface InvoiceInput {
  tenant: string;
  plan: Plan;
  period: Period;
  /** Billable actions used in the period (the usage report's `used`). */
  used: number;
  /** The period's informational meters (the usage report's `meters`). */
  meters: Partial<Record<PricedMeter, number>>;
  /** The add-ons bought in the period. */
  addOns: readonly AddOnPurchase[];
  /** Now: an invoice of a period that has not ended is a preview. */
  at: Date;
}

const n = (x: number): string => x.toLocaleString('en-US');
const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);

/** Units of `unit` needed to cover `over` (> 0), rounded up; 0 when nothing is over. */
export function unitsOver(use: number, included: number, unit: number): number {
  return use > included ? ceilDiv(use - included, unit) : 0;
}

/** The invoice with every money amount in integer minor units of the plan's currency. */
export function invoiceMinor(input: InvoiceInput): Invoice {
  const { plan, period } = input;
  const lines: InvoiceLine[] = [
    {
      kind: 'base',
      description: `${plan.name} plan, ${n(plan.includedActions)} actions included`,
      quantity: 1,
      unitPrice: plan.basePrice,
      amount: plan.basePrice,
    },
  ];
  const start = Date.parse(period.start);
  const end = Date.parse(period.end);
  let addOnActions = 0;
  for (const a of input.addOns) {
    addOnActions += a.actions;
    const packs = ceilDiv(a.actions, plan.addOnActions);
    const left = Math.min(Math.max(end - Date.parse(a.at), 0), end - start);
    const pct = Math.round((left / (end - start)) * 1000) / 10;
    lines.push({
      kind: 'addOn',
      description: `add-on: ${n(a.actions)} actions bought ${a.at}, ${pct}% of the period left${a.expires ? `, expires ${a.expires}` : ''}`,
      quantity: packs,
      unitPrice: plan.addOnPrice,
      amount: mulDivRoundHalfUp(plan.addOnPrice * packs, left, end - start),
    });
  }
  const included = plan.includedActions + addOnActions;
  const over = unitsOver(input.used, included, plan.overageUnit);
  if (over > 0) {
    lines.push({
      kind: 'overage',
      description: `overage: ${n(input.used - included)} actions past ${n(included)}${plan.overageUnit > 1 ? `, per ${n(plan.overageUnit)}` : ''}`,
      quantity: over,
      unitPrice: plan.overagePrice,
      amount: over * plan.overagePrice,
    });
  }
  for (const [name, m] of Object.entries(plan.meters) as Array<[PricedMeter, { included: number; price: number; unit: number }]>) {
    const use = input.meters[name] ?? 0;
    const q = unitsOver(use, m.included, m.unit);
    if (q > 0)
      lines.push({
        kind: 'meter',
        description: `${name}: ${n(use - m.included)} past ${n(m.included)}${m.unit > 1 ? `, per ${n(m.unit)}` : ''}`,
        quantity: q,
        unitPrice: m.price,
        amount: q * m.price,
      });
  }
  return {
    tenant: input.tenant,
    period: period.key,
    currency: plan.currency,
    lines,
    total: lines.reduce((s, l) => s + l.amount, 0),
    preview: input.at.getTime() < end,
  };
}

/** The invoice in major units (12.34), as the CLI's --json and the API show it. */
export function toInvoice(minor: Invoice, digits: number): Invoice {
  const major = (m: number) => toMajor(m, digits);
  return { ...minor, lines: minor.lines.map((l) => ({ ...l, unitPrice: major(l.unitPrice), amount: major(l.amount) })), total: major(minor.total) };
}

/** The invoice of a tenant's period (default: the current one, a preview), from the ledger. */
export async function invoiceOf(ledger: Ledger, tenant: string, at: Date, periodKey?: string): Promise<Invoice> {
  const plan = await ledger.getPlan(tenant);
  if (!plan) throw new FlowError('NOT_FOUND', `tenant ${tenant} has no plan; set one with plan set --file PLAN.json or PUT /api/plan`);
  const usage = await ledger.usage(tenant, at, periodKey);
  const addOns = await ledger.addOnPurchases(tenant, usage.period.key);
  const inv = invoiceMinor({ tenant, plan, period: usage.period, used: usage.used, meters: usage.meters, addOns, at });
  return toInvoice(inv, plan.digits);
}

/** A readable table of an invoice (amounts in major units). */
export function formatInvoice(inv: Invoice): string {
  const digits = minorDigits(inv.currency);
  const money = (x: number) => formatMinor(Math.round(x * 10 ** digits), digits);
  const rows = inv.lines.map((l) => [l.kind, l.description, n(l.quantity), money(l.unitPrice), money(l.amount)]);
  const w = [7, Math.max(11, ...rows.map((r) => r[1]!.length)), 8, 12, 12];
  const fmt = (r: string[]) => [r[0]!.padEnd(w[0]!), r[1]!.padEnd(w[1]!), r[2]!.padStart(w[2]!), r[3]!.padStart(w[3]!), r[4]!.padStart(w[4]!)].join('  ');
  return `${[
    `invoice for ${inv.tenant}, period ${inv.period}, ${inv.currency}${inv.preview ? ' (preview: the period has not ended)' : ''}`,
    fmt(['kind', 'description', 'quantity', 'unit price', 'amount']),
    ...rows.map(fmt),
    fmt(['total', '', '', '', money(inv.total)]),
  ].join('\n')}\n`;
}
