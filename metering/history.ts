/** Usage history (SPEC §11): one summary per billing period, newest first. */
import type { Ledger } from './ledger.js';

export interface PeriodSummary {
  period: string;
  start: string;
  end: string;
  /** The quota's monthlyActions now (a quota's past values are not kept). */
  limit: number;
  addOns: number;
  used: number;
  remaining: number;
  overage: number;
  nonBillable: number;
  runs: number;
}

/** `YYYY-MM` shifted back by `n` months. */
export function monthsBefore(key: string, n: number): string {
  const [y, m] = key.split('-').map(Number) as [number, number];
  const i = y * 12 + (m - 1) - n;
  return `${String(Math.floor(i / 12)).padStart(4, '0')}-${String((i % 12) + 1).padStart(2, '0')}`;
}

/** The last `months` periods up to the one containing `at`, newest first. */
export async function usageHistory(ledger: Ledger, tenant: string, at: Date, months: number): Promise<PeriodSummary[]> {
  const { period: current } = await ledger.periodOf(tenant, at);
  const keys = Array.from({ length: months }, (_, i) => monthsBefore(current, i));
  const reports = await Promise.all(keys.map((k) => ledger.usage(tenant, at, k)));
  return reports.map((u) => ({
    period: u.period.key,
    start: u.period.start,
    end: u.period.end,
    limit: u.limit,
    addOns: u.addOns,
    used: u.used,
    remaining: u.remaining,
    overage: u.overage,
    nonBillable: u.nonBillable,
    runs: u.meters.runs,
  }));
}

export function formatHistory(rows: PeriodSummary[]): string {
  const lines = ['period     limit  add-ons     used  overage  non-billable   runs'];
  for (const r of rows) {
    lines.push(
      `${r.period}  ${String(r.limit).padStart(6)}  ${String(r.addOns).padStart(7)}  ${String(r.used).padStart(7)}  ${String(r.overage).padStart(7)}  ${String(r.nonBillable).padStart(12)}  ${String(r.runs).padStart(5)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
