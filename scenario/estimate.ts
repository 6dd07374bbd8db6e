/**
 * `estimate`: from the graph alone, the fewest and the most actions one run can cost (SPEC §3),
 * and for cron scenarios per month. Pure: no I/O, the clock is a parameter.
 *
 * Every path from a node is summarised as an Outcome: the range of actions over the courses
 * where it goes on to its end (`ok`), and the range over the courses where an uncaught failure
 * ends the run on it (`fail`). Each range carries the choices that give its min and its max.
 * Outcomes are memoised per (node, caught set): the graph is a DAG, so this is linear in the
 * number of (node, caught set) pairs, not in the number of paths.
 */
import { CronExpressionParser } from 'cron-parser';
import { normalizeCron } from '../core/cron.js';
import { DateTime } from 'luxon';
import { compile } from './compile.js';
import type { Scenario } from './schema.js';

export const DEFAULT_ITEMS = 10;
/** Firings counted one by one before the month's total is extrapolated. */
export const MAX_FIRINGS = 50_000;

export interface Estimate {
  /** Fewest and most actions of one run (trigger included). */
  perRun: { min: number; max: number };
  /** The range of the runs that end without an uncaught failure; null when every run fails. */
  succeeded: { min: number; max: number } | null;
  /** Cron scenarios: firings in the next full calendar month and the monthly range. */
  perMonth?: { firings: number; min: number; max: number; month: string; timezone: string; capped: boolean };
  /** Items each loop is taken at. */
  items: number;
  assumptions: string[];
  /** The choices that give the fewest and the most actions. */
  minPath: string[];
  maxPath: string[];
}

interface Range { min: number; max: number; minWhy: string[]; maxWhy: string[] }
interface Outcome { ok: Range | null; fail: Range | null }

const join = (a: string[], b: string[]): string[] => (a.length === 0 ? b : b.length === 0 ? a : [...new Set([...a, ...b])]);
const range = (n: number, why?: string): Range => ({ min: n, max: n, minWhy: why ? [why] : [], maxWhy: why ? [why] : [] });
const EMPTY: Outcome = { ok: range(0), fail: null };

function add(a: Range | null, b: Range | null): Range | null {
  if (!a || !b) return null;
  return { min: a.min + b.min, max: a.max + b.max, minWhy: join(a.minWhy, b.minWhy), maxWhy: join(a.maxWhy, b.maxWhy) };
}

/** Either course may happen: the lower min and the higher max (the first wins ties). */
function either(a: Range | null, b: Range | null): Range | null {
  if (!a) return b;
  if (!b) return a;
  const lo = b.min < a.min ? b : a;
  const hi = b.max > a.max ? b : a;
  return { min: lo.min, minWhy: lo.minWhy, max: hi.max, maxWhy: hi.maxWhy };
}

const alt = (...os: Outcome[]): Outcome => ({
  ok: os.reduce<Range | null>((r, o) => either(r, o.ok), null),
  fail: os.reduce<Range | null>((r, o) => either(r, o.fail), null),
});
/** `a`, then (when it goes on) `b`: strictly one after the other. */
const then = (a: Outcome, b: Outcome): Outcome => ({ ok: add(a.ok, b.ok), fail: either(a.fail, add(a.ok, b.fail)) });
const prefix = (r: Range, o: Outcome): Outcome => then({ ok: r, fail: null }, o);

/**
 * Branches run together (Fan Out, Switch in `all` mode). When one fails uncaught the others
 * stop after their current node: each has run at least its first node (same wave), at most all.
 */
function concurrent(bs: Outcome[]): Outcome {
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
function repeat(iter: Outcome, n: number): Outcome {
  if (n === 0) return EMPTY;
  const ok = iter.ok ? { ...iter.ok, min: iter.ok.min * n, max: iter.ok.max * n } : null;
  let fail: Range | null = null;
  if (iter.fail) {
    const before = iter.ok && n > 1 ? { ...iter.ok, min: 0, max: iter.ok.max * (n - 1) } : range(0);
    fail = { min: iter.fail.min, minWhy: iter.fail.minWhy, max: before.max + iter.fail.max, maxWhy: join(before.maxWhy, iter.fail.maxWhy) };
  }
  return { ok, fail };
}

const tag = (o: Outcome, why: string): Outcome => prefix(range(0, why), o);

export function estimateScenario(scenario: Scenario, opts: { items?: number; now?: Date } = {}): Estimate {
  const items = opts.items ?? DEFAULT_ITEMS;
  const compiled = compile(scenario);
  const memo = new Map<string, Outcome>();
  const seen = new Set<string>();

  const cost = (id: string, caught: readonly string[]): Outcome => {
    const key = `${id}|${[...caught].sort().join(',')}`;
    const hit = memo.get(key);
    if (hit) return hit;
    const node = compiled.nodes.get(id);
    if (!node) throw new Error(`node ${id} does not exist`);
    const n = node.config as Record<string, unknown> & { id: string; type: string; next?: string };
    seen.add(n.type);
    const label = `${n.type} \`${id}\``;
    const next = (to: unknown): Outcome => (typeof to === 'string' ? cost(to, caught) : EMPTY);
    const one = (o: Outcome): Outcome => prefix(range(1), o);
    const failing = (): Outcome => {
      seen.add('$fails');
      const h = compiled.catchFor(id, caught);
      if (h) return prefix(range(1, `${label} fails → catch \`${h}\``), cost(h, [...caught, h]));
      return { ok: null, fail: range(1, `${label} fails, uncaught: the run ends`) };
    };
    let out: Outcome;
    switch (n.type) {
      case 'function':
        out = alt(
          n.next ? one(alt(tag(EMPTY, `${label} returns no message`), tag(next(n.next), `${label} returns one message`))) : one(EMPTY),
          failing(),
        );
        break;
      case 'connector':
      case 'mail':
        out = alt(one(next(n.next)), failing());
        break;
      case 'conversion': {
        const target = String(n.target ?? n.path);
        if (!target.startsWith('msg.')) out = failing();
        else out = n.onMissing === 'error' ? alt(one(next(n.next)), failing()) : one(next(n.next));
        break;
      }
      case 'exception':
        out = failing();
        break;
      case 'filter':
        out = one(n.next ? alt(tag(EMPTY, `${label} drops the message`), tag(next(n.next), `${label} passes`)) : EMPTY);
        break;
      case 'switch': {
        const cases = n.cases as Array<{ next: string }>;
        const each = cases.map((c, i) => tag(next(c.next), `${label}: case ${i + 1} → \`${c.next}\``));
        const none = typeof n.default === 'string'
          ? tag(next(n.default), `${label}: no case matches → default \`${n.default}\``)
          : tag(EMPTY, `${label}: no case matches, the path ends`);
        const all = n.mode === 'all' && cases.length > 1 ? [tag(concurrent(cases.map((c) => next(c.next))), `${label}: every case matches`)] : [];
        out = one(alt(...each, none, ...all));
        break;
      }
      case 'fanOut':
        out = one(concurrent((n.branches as string[]).map(next)));
        break;
      case 'sequencer':
        out = one(then((n.steps as string[]).map(next).reduce(then, EMPTY), next(n.next)));
        break;
      case 'loop': {
        const maxItems = typeof n.maxItems === 'number' ? n.maxItems : 10_000;
        const body = repeat(one(next(n.body)), items);
        const run = items > maxItems ? null : prefix(range(1, `${label}: ${items} items`), then(body, next(n.next)));
        out = run ? alt(run, failing()) : failing();
        break;
      }
      case 'catch':
        out = one(next(n.next));
        break;
      case 'comment':
        out = EMPTY;
        break;
      default:
        throw new Error(`unknown node type ${n.type}`);
    }
    memo.set(key, out);
    return out;
  };

  const total = prefix(range(1), cost(scenario.start, []));
  const whole = either(total.ok, total.fail)!;
  let min = whole.min;
  let max = whole.max;
  const assumptions: string[] = [];
  if (seen.has('function')) {
    assumptions.push('each Function is taken as returning no message or one message (one returning an array of k messages runs what follows it k times, beyond this estimate)');
  }
  if (seen.has('loop')) {
    assumptions.push(`loops are taken at ${items} item${items === 1 ? '' : 's'} for the fewest and the most alike${opts.items === undefined ? ' (the default; set another count with --items)' : ''}; a loop over fewer items costs less`);
  }
  if (seen.has('switch') || seen.has('filter')) {
    assumptions.push('every Switch case, Switch default and Filter outcome is taken as possible, whatever the conditions and the payload');
  }
  if (seen.has('$fails')) {
    assumptions.push('a node that can fail is taken both ways: the fewest counts a failure (an uncaught one ends the run, a caught one goes on along the catch path) only where that costs less than going on; the most takes the catch path where it costs more');
  }
  const budget = scenario.maxActionsPerRun;
  if (budget !== undefined && max > budget) {
    assumptions.push(`maxActionsPerRun ${budget} caps every run: one that would spend more fails with RUN_BUDGET_EXCEEDED`);
    max = budget;
    min = Math.min(min, budget);
  }
  const ok = total.ok ? { min: Math.min(total.ok.min, max), max: Math.min(total.ok.max, max) } : null;
  const est: Estimate = { perRun: { min, max }, succeeded: ok, items, assumptions, minPath: whole.minWhy, maxPath: whole.maxWhy };

  const trigger = scenario.trigger;
  if (trigger.type === 'cron') {
    const tz = trigger.timezone ?? 'UTC';
    const m = firingsPerMonth(trigger.schedule, tz, opts.now ?? new Date());
    est.perMonth = { firings: m.firings, min: m.firings * min, max: m.firings * max, month: m.month, timezone: tz, capped: m.capped };
    assumptions.push(`per month: the firings of ${JSON.stringify(trigger.schedule)} in ${m.month} (the next full calendar month, ${tz})${m.capped ? `, extrapolated from the first ${MAX_FIRINGS} firings` : ''}, each costing the per-run range`);
  }
  return est;
}

/** The instants of `schedule` in the calendar month after the one holding `now`, in `tz`. */
export function firingsPerMonth(schedule: string, tz: string, now: Date): { firings: number; month: string; capped: boolean } {
  const start = DateTime.fromJSDate(now, { zone: tz }).startOf('month').plus({ months: 1 });
  const end = start.plus({ months: 1 }).toMillis();
  const from = start.toMillis();
  const it = CronExpressionParser.parse(normalizeCron(schedule), { tz, currentDate: new Date(from - 1) });
  let firings = 0;
  let first = 0;
  for (;;) {
    let at: number;
    try {
      at = it.next().getTime();
    } catch {
      break; // no further instant
    }
    if (at >= end) break;
    if (firings++ === 0) first = at;
    if (firings >= MAX_FIRINGS) {
      // Too many to count one by one: the month's share at the rate seen so far.
      const rate = (firings - 1) / Math.max(1, at - first);
      return { firings: Math.max(firings, Math.round((end - first) * rate)), month: start.toFormat('yyyy-LL'), capped: true };
    }
  }
  return { firings, month: start.toFormat('yyyy-LL'), capped: false };
}
