/**
 * Money, exactly: amounts are integers in the currency's minor unit (cents for USD, yen for JPY,
 * fils for KWD). Prices arrive as decimal numbers in major units and are converted without
 * floating-point arithmetic; a price with more decimals than its currency has is refused.
 */

const currencies = new Set(Intl.supportedValuesOf('currency'));

/** Whether `code` is an ISO 4217 currency this runtime knows. */
export function isCurrency(code: string): boolean {
  return currencies.has(code);
}

/** Digits of the currency's minor unit (2 for USD, 0 for JPY, 3 for KWD). */
export function minorDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/**
 * A non-negative major-unit amount as minor units, exactly (`12.34` USD → 1234), or an error
 * message: more decimals than the currency has, negative, or not a plain decimal.
 */
export function toMinor(value: number, digits: number): number | string {
  if (!Number.isFinite(value)) return `must be a number, got ${JSON.stringify(value)}`;
  if (value < 0) return `must not be negative, got ${value}`;
  const m = /^(\d+)(?:\.(\d+))?$/.exec(String(value));
  if (!m) return `must be a plain decimal amount, got ${value}`;
  const frac = m[2] ?? '';
  if (frac.length > digits) return `has ${frac.length} decimals but the currency has ${digits}, got ${value}`;
  const minor = BigInt(m[1]!) * 10n ** BigInt(digits) + BigInt(frac.padEnd(digits, '0') || '0');
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) return `is too large, got ${value}`;
  return Number(minor);
}

/** Minor units as a major-unit number (1234 → 12.34): the nearest double, printed as the decimal. */
export function toMajor(minor: number, digits: number): number {
  return Number(formatMinor(minor, digits));
}

/** Minor units as a decimal string with exactly `digits` decimals (1234, 2 → "12.34"). */
export function formatMinor(minor: number, digits: number): string {
  const neg = minor < 0;
  const s = String(Math.abs(minor)).padStart(digits + 1, '0');
  const out = digits === 0 ? s : `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  return neg ? `-${out}` : out;
}

/** round(a × b / c) half up, exactly, for non-negative integers (c > 0). */
export function mulDivRoundHalfUp(a: number, b: number, c: number): number {
  const n = 2n * BigInt(a) * BigInt(b) + BigInt(c);
  return Number(n / (2n * BigInt(c)));
}
