/**
 * Cost bounds of paths, for `estimate` (SPEC §3): the algebra each node's `estimate` hook uses
 * to state what it costs and where it goes. Pure.
 *
 * Every path from a node is summarised as an Outcome: the range of actions over the courses
 * where it goes on to its end (`ok`), and the range over the courses where an uncaught failure
 * ends the run on it (`fail`). Each range carries the choices that give its min and its max.
 */

/** A range of actions, with the choices that give its min and its max. */
export interface Range {
  min: number;
  max: number;
  minWhy: string[];
  maxWhy: string[];
}
/** The courses of a path: going on to its end (`ok`), or an uncaught failure ending the run (`fail`); null = never. */
export interface Outcome {
  ok: Range | null;
  fail: Range | null;
}

/** What a node's `estimate` hook may ask of the walker. */
export interface CostContext {
  /** `type \`id\``: how explanations name this node. */
  readonly label: string;
  /** Items each loop is taken at. */
  readonly items: number;
  /** The outcome of the path from node `id` on; an absent id ends the path (costs 0). */
  next(id: string | undefined): Outcome;
  /** This node failing (1 action): on to the catch that handles it, else the run ends. */
  fails(): Outcome;
  /** Records a warning about the estimate (one line; the same line once). */
  warn(message: string): void;
}

/** What a node type's estimate note may depend on. */
export interface CostNoteContext {
  /** Items each loop is taken at. */
  readonly items: number;
  /** Whether the caller chose `items` (false: the default). */
  readonly itemsGiven: boolean;
}

const join = (a: string[], b: string[]): string[] => (a.length === 0 ? b : b.length === 0 ? a : [...new Set([...a, ...b])]);

/** Exactly `n` actions, optionally with the choice that leads to them. */
export const range = (n: number, why?: string): Range => ({ min: n, max: n, minWhy: why ? [why] : [], maxWhy: why ? [why] : [] });
/** A path that ends at once, costing nothing. */
export const EMPTY: Outcome = { ok: range(0), fail: null };

export function add(a: Range | null, b: Range | null): Range | null {
  if (!a || !b) return null;
  return { min: a.min + b.min, max: a.max + b.max, minWhy: join(a.minWhy, b.minWhy), maxWhy: join(a.maxWhy, b.maxWhy) };
}

/** Either course may happen: the lower min and the higher max (the first wins ties). */
export function either(a: Range | null, b: Range | null): Range | null {
  if (!a) return b;
  if (!b) return a;
  const lo = b.min < a.min ? b : a;
  const hi = b.max > a.max ? b : a;
  return { min: lo.min, minWhy: lo.minWhy, max: hi.max, maxWhy: hi.maxWhy };
}

/** One of these outcomes happens. */
export const alt = (...os: Outcome[]): Outcome => ({
  ok: os.reduce<Range | null>((r, o) => either(r, o.ok), null),
  fail: os.reduce<Range | null>((r, o) => either(r, o.fail), null),
});
/** `a`, then (when it goes on) `b`: strictly one after the other. (Not named `then`: a module exporting `then` is a thenable, and `await import()` of it never settles.) */
export const andThen = (a: Outcome, b: Outcome): Outcome => ({ ok: add(a.ok, b.ok), fail: either(a.fail, add(a.ok, b.fail)) });
/** `r` actions, then `o`. */
export const prefix = (r: Range, o: Outcome): Outcome => andThen({ ok: r, fail: null }, o);
/** The node's own action, then `o`. */
export const one = (o: Outcome): Outcome => prefix(range(1), o);
/** `o`, explained by `why` when it gives the min or the max. */
export const tag = (o: Outcome, why: string): Outcome => prefix(range(0, why), o);

/**
 * Branches run together (Fan Out, Switch in `all` mode). When one fails uncaught the others
 * stop after their current node: each has run at least its first node (same wave), at most all.
 */
export function concurrent(bs: Outcome[]): Outcome {
  const ok = bs.reduce<Range | null>((r, b) => add(r, b.ok), range(0));
  const any = bs.map((b) => either(b.ok, b.fail)!);
  let fail: Range | null = null;
  for (const [j, b] of bs.entries()) {
    if (!b.fail) continue;
    const others = any.filter((_, i) => i !== j);
    fail = either(fail, {
      min: b.fail.min + others.length,
      minWhy: b.fail.minWhy,
      max: b.fail.max + others.reduce((s, r) => s + r.max, 0),
      maxWhy: others.reduce((w, r) => join(w, r.maxWhy), b.fail.maxWhy),
    });
  }
  return { ok, fail };
}

/** Iterations one after another: an uncaught failure in one stops the loop (and the run). */
export function repeat(iter: Outcome, n: number): Outcome {
  if (n === 0) return EMPTY;
  const ok = iter.ok ? { ...iter.ok, min: iter.ok.min * n, max: iter.ok.max * n } : null;
  let fail: Range | null = null;
  if (iter.fail) {
    const before = iter.ok && n > 1 ? { ...iter.ok, min: 0, max: iter.ok.max * (n - 1) } : range(0);
    fail = { min: iter.fail.min, minWhy: iter.fail.minWhy, max: before.max + iter.fail.max, maxWhy: join(before.maxWhy, iter.fail.maxWhy) };
  }
  return { ok, fail };
}
