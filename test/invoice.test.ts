/** Invoices (SPEC §11): exact money, overage past included + add-ons, prorated add-ons. */

import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { formatInvoice, type InvoiceInput, invoiceMinor, invoiceOf, toInvoice } from '../metering/invoice.js';
import { type Ledger, MemoryLedger } from '../metering/ledger.js';
import { periodByKey } from '../metering/periods.js';
import { type Plan, parsePlan } from '../metering/plan.js';
import { useProduction } from './helpers/production.js';

const TZ = 'America/New_York';
const PLAN = {
  name: 'Team',
  currency: 'USD',
  basePrice: 29.9,
  includedActions: 1000,
  overagePrice: 0.5,
  overageUnit: 100,
  addOnPrice: 100,
  addOnActions: 500,
  meters: { connectorRequests: { included: 10, price: 0.01, unit: 1 } },
};

const ledgers: Array<[string, () => Promise<{ ledger: Ledger; close: () => Promise<void> }>]> = [
  ['memory', async () => ({ ledger: new MemoryLedger(), close: async () => undefined })],
  [
    'redis',
    async () => {
      const p = await useProduction();
      return { ledger: p.ledger, close: () => p.close() };
    },
  ],
];

/** Bills `n` actions at `at` in one settlement (allow mode: nothing is held). */
async function bill(ledger: Ledger, tenant: string, n: number, at: Date): Promise<void> {
  const { period, date } = await ledger.periodOf(tenant, at);
  const lease = await ledger.lease({ tenant, runId: 'r', want: n, at });
  expect(lease).toMatchObject({ granted: n, held: false });
  const entries = Array.from({ length: n }, (_, i) => ({ key: String(i), trigger: i === 0, date }));
  await ledger.settle({ tenant, runId: 'r', scenarioId: 's', billable: true, period, entries, heldUsed: 0, release: 0, at });
}

describe.each(ledgers)('an invoice from the %s ledger', (_name, make) => {
  it('bills base, a prorated add-on bought mid-period in New York, overage per unit and a meter', async () => {
    const { ledger, close } = await make();
    await ledger.setQuota('acme', { timezone: TZ, overage: 'allow' });
    await ledger.setPlan('acme', parsePlan(PLAN));
    // November 2026 in New York: 1 Nov 00:00 EDT to 1 Dec 00:00 EST, 721 hours (clocks go back on 1 Nov).
    const bought = DateTime.fromISO('2026-11-21T00:00', { zone: TZ }).toJSDate();
    await ledger.addActions('acme', 500, bought);
    await bill(ledger, 'acme', 1700, DateTime.fromISO('2026-11-25T10:00', { zone: TZ }).toJSDate());
    await ledger.count('acme', 'connectorRequests', 25, bought);
    const during = await invoiceOf(ledger, 'acme', DateTime.fromISO('2026-11-28T00:00', { zone: TZ }).toJSDate(), '2026-11');
    expect(during.preview).toBe(true);
    const inv = await invoiceOf(ledger, 'acme', new Date('2027-01-05T00:00:00Z'), '2026-11');
    expect(inv).toMatchObject({ tenant: 'acme', period: '2026-11', currency: 'USD', preview: false, total: 64.34 });
    expect(inv.lines.map(({ description: _d, ...l }) => l)).toEqual([
      { kind: 'base', quantity: 1, unitPrice: 29.9, amount: 29.9 },
      // 240 of 721 hours left: 100 × 240 / 721 = 33.287… → 33.29 (30 days of 24 h would give 33.33)
      { kind: 'addOn', quantity: 1, unitPrice: 100, amount: 33.29 },
      // 1700 used − (1000 included + 500 add-on) = 200 → 2 units of 100
      { kind: 'overage', quantity: 2, unitPrice: 0.5, amount: 1 },
      { kind: 'meter', quantity: 15, unitPrice: 0.01, amount: 0.15 },
    ]);
    const table = formatInvoice(inv);
    expect(table).toContain('total');
    expect(table).toMatch(/addOn .* 33\.29\n/);
    expect(table.trimEnd().split('\n').at(-1)).toMatch(/^total\s+64\.34$/);
    await close();
  });

  it('refuses a tenant without a plan in one line', async () => {
    const { ledger, close } = await make();
    await expect(invoiceOf(ledger, 'nobody', new Date())).rejects.toThrow(
      /^tenant nobody has no plan; set one with plan set --file PLAN.json or PUT \/api\/plan$/,
    );
    await close();
  });
});

const price = fc.integer({ min: 0, max: 1_000_000 });
const unit = fc.integer({ min: 1, max: 1000 });
const planArb: fc.Arbitrary<Plan> = fc
  .record({
    name: fc.constant('P'),
    currency: fc.constantFrom('USD', 'JPY', 'KWD'),
    digits: fc.constant(0),
    basePrice: price,
    includedActions: fc.integer({ min: 0, max: 100_000 }),
    overagePrice: price,
    overageUnit: unit,
    addOnPrice: price,
    addOnActions: unit,
    meters: fc.record({ runs: fc.record({ included: fc.integer({ min: 0, max: 1000 }), price, unit }) }, { requiredKeys: [] }),
  })
  .map((p) => ({ ...p, digits: p.currency === 'JPY' ? 0 : p.currency === 'KWD' ? 3 : 2 }));

const period = periodByKey('2026-03', 'Europe/Berlin');
const start = Date.parse(period.start);
const end = Date.parse(period.end);
const inputArb: fc.Arbitrary<InvoiceInput> = fc
  .record({
    plan: planArb,
    used: fc.integer({ min: 0, max: 300_000 }),
    runs: fc.integer({ min: 0, max: 5000 }),
    addOns: fc.array(fc.record({ t: fc.integer({ min: start, max: end - 1 }), actions: fc.integer({ min: 1, max: 50_000 }) }), { maxLength: 4 }),
  })
  .map(({ plan, used, runs, addOns }) => ({
    tenant: 't',
    plan,
    period,
    used,
    meters: { runs },
    at: new Date(end),
    addOns: addOns.map((a, i) => ({ id: String(i), at: new Date(a.t).toISOString(), actions: a.actions })),
  }));

describe('invoice properties', () => {
  it('the total is the sum of the lines, every amount whole minor units, also in major units', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const inv = invoiceMinor(input);
        expect(inv.total).toBe(inv.lines.reduce((s, l) => s + l.amount, 0));
        for (const l of inv.lines) expect(Number.isSafeInteger(l.amount) && l.amount >= 0).toBe(true);
        const major = toInvoice(inv, input.plan.digits);
        const scale = 10 ** input.plan.digits;
        expect(major.lines.map((l) => Math.round(l.amount * scale))).toEqual(inv.lines.map((l) => l.amount));
        expect(Math.round(major.total * scale)).toBe(inv.total);
      }),
      { numRuns: 300 },
    );
  });

  it('overage never bills an action the plan or an add-on included', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const inv = invoiceMinor(input);
        const included = input.plan.includedActions + input.addOns.reduce((s, a) => s + a.actions, 0);
        const overage = inv.lines.filter((l) => l.kind === 'overage');
        const expected = Math.max(0, Math.ceil((input.used - included) / input.plan.overageUnit));
        expect(overage.reduce((s, l) => s + l.quantity, 0)).toBe(expected);
        if (input.used <= included) expect(overage).toEqual([]);
        for (const l of overage) expect(l.amount).toBe(l.quantity * input.plan.overagePrice);
      }),
      { numRuns: 300 },
    );
  });

  it('an add-on costs its price times the fraction of the period left, rounded half up', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const lines = invoiceMinor(input).lines.filter((l) => l.kind === 'addOn');
        expect(lines).toHaveLength(input.addOns.length);
        input.addOns.forEach((a, i) => {
          const packs = Math.ceil(a.actions / input.plan.addOnActions);
          const exact = (input.plan.addOnPrice * packs * (end - Date.parse(a.at))) / (end - start);
          expect(Math.abs(lines[i]!.amount - exact)).toBeLessThanOrEqual(0.5);
          expect(lines[i]!.amount).toBeLessThanOrEqual(input.plan.addOnPrice * packs);
        });
      }),
      { numRuns: 300 },
    );
  });
});
