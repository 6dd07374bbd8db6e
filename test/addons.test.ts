/** Add-ons (SPEC §4, §11): purchases recorded with their time, and expiry, on both ledgers. */
import { describe, expect, it } from 'vitest';
import { type Ledger, MemoryLedger } from '../metering/ledger.js';
import { useProduction } from './helpers/production.js';

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

/** One action for a task, as a run's Budget spends it: a lease of one, then its settlement. */
async function spend(ledger: Ledger, tenant: string, key: string, at: Date): Promise<boolean> {
  const { period, date } = await ledger.periodOf(tenant, at);
  const lease = await ledger.lease({ tenant, runId: 'r', want: 1, at });
  if (lease.granted === 0) return false;
  await ledger.settle({ tenant, runId: 'r', scenarioId: 's', billable: true, period, entries: [{ key, trigger: false, date }], heldUsed: 1, release: 0, at });
  return true;
}

const T0 = new Date('2026-11-10T12:00:00Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const HOUR = 3600_000;

describe.each(ledgers)('add-ons on the %s ledger', (_name, make) => {
  it('records each purchase with its time, amount and expiry', async () => {
    const { ledger, close } = await make();
    await ledger.setQuota('a', { timezone: 'Europe/Berlin' });
    await ledger.addActions('a', 100, T0);
    await ledger.addActions('a', 50, later(HOUR), { expires: later(5 * HOUR) });
    const list = await ledger.addOnPurchases('a', '2026-11');
    expect(list.map(({ id: _id, ...p }) => p)).toEqual([
      { at: '2026-11-10T12:00:00.000Z', actions: 100 },
      { at: '2026-11-10T13:00:00.000Z', actions: 50, expires: '2026-11-10T17:00:00.000Z' },
    ]);
    expect(new Set(list.map((p) => p.id)).size).toBe(2);
    expect(await ledger.addOnPurchases('a', '2026-10')).toEqual([]);
    expect((await ledger.usage('a', later(2 * HOUR))).addOns).toBe(150);
    expect((await ledger.usage('a', later(6 * HOUR))).addOns).toBe(100);
    await close();
  });

  it('expired add-on actions stop counting toward the limit', async () => {
    const { ledger, close } = await make();
    await ledger.setQuota('b', { monthlyActions: 2 });
    await ledger.addActions('b', 3, T0, { expires: later(HOUR) });
    for (let i = 1; i <= 5; i++) expect(await spend(ledger, 'b', String(i), later(i * 60_000))).toBe(true);
    expect(await spend(ledger, 'b', '6', later(10 * 60_000))).toBe(false);
    const u = await ledger.usage('b', later(30 * 60_000));
    expect(u).toMatchObject({ used: 5, limit: 2, addOns: 3, remaining: 0, overage: 0 });
    // After the expiry: used 5 > limit 2, nothing more is granted; a new add-on without expiry counts.
    expect((await ledger.usage('b', later(2 * HOUR))).addOns).toBe(0);
    expect(await spend(ledger, 'b', '7', later(2 * HOUR))).toBe(false);
    await ledger.addActions('b', 4, later(2 * HOUR));
    expect(await spend(ledger, 'b', '7', later(2 * HOUR))).toBe(true); // 2 + 4 - 5 = 1 left
    expect(await spend(ledger, 'b', '8', later(2 * HOUR))).toBe(false);
    expect(await ledger.usage('b', later(3 * HOUR))).toMatchObject({ used: 6, addOns: 4, remaining: 0, overage: 0 });
    await close();
  });

  it('refuses an expiry that is not after the purchase, in one line', async () => {
    const { ledger, close } = await make();
    await expect(ledger.addActions('c', 5, T0, { expires: T0 })).rejects.toThrow(
      /^add-on expiry 2026-11-10T12:00:00.000Z is not after now \(2026-11-10T12:00:00.000Z\)$/,
    );
    await expect(ledger.addActions('c', 0, T0)).rejects.toThrow(/^add-on actions must be a positive whole number, got 0$/);
    expect(await ledger.addOnPurchases('c', '2026-11')).toEqual([]);
    await close();
  });
});
