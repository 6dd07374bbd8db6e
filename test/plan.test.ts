/** Plans (SPEC §11): validation with exact money, storage on both ledgers, the API routes. */

import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { Platform } from '../engine/platform.js';
import { type Ledger, MemoryLedger } from '../metering/ledger.js';
import { toMinor } from '../metering/money.js';
import { parsePlan, planDocument } from '../metering/plan.js';
import { bothPlatforms, useProduction } from './helpers/production.js';

const PLAN = {
  name: 'Team',
  currency: 'EUR',
  basePrice: 29.9,
  includedActions: 10_000,
  overagePrice: 0.5,
  overageUnit: 1000,
  addOnPrice: 10,
  addOnActions: 5000,
  meters: { connectorRequests: { included: 1000, price: 0.01, unit: 100 } },
};

const problem = (doc: unknown): string => {
  try {
    parsePlan(doc);
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe('plan documents', () => {
  it('converts prices to exact minor units and back', () => {
    const p = parsePlan(PLAN);
    expect(p).toMatchObject({
      digits: 2,
      basePrice: 2990,
      overagePrice: 50,
      addOnPrice: 1000,
      meters: { connectorRequests: { included: 1000, price: 1, unit: 100 } },
    });
    expect(planDocument(p)).toEqual(PLAN);
    expect(parsePlan({ name: 'Yen', currency: 'JPY', basePrice: 3000, includedActions: 1, overagePrice: 2 })).toMatchObject({
      digits: 0,
      basePrice: 3000,
      overagePrice: 2,
    });
    expect(parsePlan({ ...PLAN, currency: 'KWD', basePrice: 1.234 }).basePrice).toBe(1234);
    const d = parsePlan({ name: 'Min', currency: 'USD', basePrice: 0, includedActions: 5 });
    expect(d).toMatchObject({ overagePrice: 0, overageUnit: 1, addOnPrice: 0, addOnActions: 1, meters: {} });
  });

  it('refuses bad plans in one line naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...PLAN, basePrice: -1 }, /^invalid plan: basePrice: must not be negative$/],
      [{ ...PLAN, currency: 'EUX' }, /^invalid plan: currency: must be an ISO 4217 currency code/],
      [{ ...PLAN, overageUnit: 0 }, /^invalid plan: overageUnit: must be at least 1$/],
      [{ ...PLAN, overagePrice: 0.005 }, /^invalid plan: overagePrice: has 3 decimals but EUR has 2, got 0.005$/],
      [{ name: 'Yen', currency: 'JPY', basePrice: 10.5, includedActions: 1 }, /^invalid plan: basePrice: has 1 decimals but JPY has 0, got 10.5$/],
      [{ ...PLAN, meters: { cpu: { included: 1, price: 1 } } }, /^invalid plan: meters: Unrecognized key: "cpu"$/],
      [{ ...PLAN, meters: { runs: { included: 1, price: -2 } } }, /^invalid plan: meters\.runs\.price: must not be negative$/],
      [{ ...PLAN, extra: 1 }, /^invalid plan: .*extra/],
      [{ ...PLAN, includedActions: 1.5 }, /^invalid plan: includedActions: must be a whole number$/],
    ];
    for (const [doc, re] of cases) {
      const msg = problem(doc);
      expect(msg).toMatch(re);
      expect(msg).not.toContain('\n');
    }
  });

  it('money: any amount with at most the currency decimals converts exactly (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), fc.constantFrom(0, 2, 3), (minor, digits) => {
        const major = Number((minor / 10 ** digits).toFixed(digits));
        expect(toMinor(major, digits)).toBe(minor);
      }),
    );
  });
});

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

describe.each(ledgers)('plans on the %s ledger', (_name, make) => {
  it('stores the plan per tenant and sets monthlyActions from includedActions', async () => {
    const { ledger, close } = await make();
    expect(await ledger.getPlan('a')).toBeNull();
    await ledger.setPlan('a', parsePlan(PLAN));
    expect((await ledger.getQuota('a')).monthlyActions).toBe(10_000);
    expect(planDocument((await ledger.getPlan('a'))!)).toEqual(PLAN);
    expect(await ledger.getPlan('b')).toBeNull();
    expect((await ledger.getQuota('b')).monthlyActions).toBe(500);
    await close();
  });
});

const ADMIN = 'admin-key-0123456789abcdef';
const platforms = bothPlatforms();

describe.each(platforms)('plan routes on the %s platform', (_mode, make) => {
  let platform: Platform;
  let app: Awaited<ReturnType<typeof buildServer>>;
  let key: string;
  beforeEach(async () => {
    platform = await make();
    app = await buildServer(platform, { adminKey: ADMIN });
    key = await platform.keys.create('acme');
  });
  afterEach(async () => {
    await app.close();
    await platform.close();
  });
  const call = (method: 'GET' | 'PUT', url: string, k: string, body?: unknown) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${k}` }, ...(body !== undefined && { payload: body as object }) });

  it('PUT needs the admin key; GET shows the tenant its plan', async () => {
    expect((await call('GET', '/api/plan', key)).statusCode).toBe(404);
    expect((await call('PUT', '/api/plan', key, PLAN)).statusCode).toBe(403);
    const bad = await call('PUT', '/api/plan?tenant=acme', ADMIN, { ...PLAN, overageUnit: 0 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toEqual({ code: 'INVALID_INPUT', message: 'invalid plan: overageUnit: must be at least 1' });
    const ok = await call('PUT', '/api/plan?tenant=acme', ADMIN, PLAN);
    expect(ok.statusCode).toBe(200);
    expect((await call('GET', '/api/plan', key)).json()).toEqual(PLAN);
    expect((await call('GET', '/api/quota', key)).json().monthlyActions).toBe(10_000);
  });

  it('GET /api/invoice: the current period as a preview; bad ?period and no plan are refused', async () => {
    expect((await call('GET', '/api/invoice', key)).json().error.code).toBe('NOT_FOUND');
    await call('PUT', '/api/plan?tenant=acme', ADMIN, PLAN);
    const res = await call('GET', '/api/invoice', key);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      tenant: 'acme',
      currency: 'EUR',
      preview: true,
      total: 29.9,
      lines: [{ kind: 'base', quantity: 1, unitPrice: 29.9, amount: 29.9 }],
    });
    const bad = await call('GET', '/api/invoice?period=2026-13', key);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toBe('?period must be YYYY-MM, got "2026-13"');
  });
});
