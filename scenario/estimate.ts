/**
 * `estimate`: from the graph alone, the fewest and the most actions one run can cost (SPEC §3),
 * and for cron scenarios per month. Pure: no I/O, the clock is a parameter.
 *
 * A generic walker: each node's definition states its own cost bounds (`estimate` in
 * `nodes/*.ts`, with the algebra of `nodes/cost.ts`); the walker memoises them per (node,
 * caught set) and follows failures to their catch. The graph is a DAG, so this is linear in
 * the number of (node, caught set) pairs, not in the number of paths.
 */
import { DateTime } from 'luxon';
import { instantsBetween } from '../core/cron.js';
import { type CostContext, EMPTY, either, type Outcome, prefix, range } from '../nodes/cost.js';
import type { NodeDefinition } from '../nodes/define.js';
import { NODE_TYPES } from '../nodes/index.js';
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
  /** Cron scenarios: firings in the calendar month (`YYYY-MM`, in the trigger's timezone) and the monthly range. */
  perMonth?: { firings: number; min: number; max: number; month: string; timezone: string; capped: boolean };
  /** Items each loop is taken at (a loop with a lower `maxItems` at that, with a warning). */
  items: number;
  assumptions: string[];
  /** What the estimate had to change, such as `items` above a loop's `maxItems`. */
  warnings: string[];
  /** The choices that give the fewest and the most actions. */
  minPath: string[];
  maxPath: string[];
}

/** Options of {@link estimateScenario}. */
export interface EstimateOptions {
  /** Items each loop is taken at (default {@link DEFAULT_ITEMS}). */
  items?: number;
  /** Cron scenarios: the calendar month counted, `YYYY-MM` (default: the month holding `now`, in the trigger's timezone). */
  month?: string;
  /** The clock, for the default month (default: the current time). */
  now?: Date;
}

export function estimateScenario(scenario: Scenario, opts: EstimateOptions = {}): Estimate {
  const items = opts.items ?? DEFAULT_ITEMS;
  const compiled = compile(scenario);
  const memo = new Map<string, Outcome>();

  const seenTypes = new Set<NodeDefinition>();
  let canFail = false;
  const warnings: string[] = [];
  const cost = (id: string, caught: readonly string[]): Outcome => {
    const key = `${id}|${[...caught].sort().join(',')}`;
    const hit = memo.get(key);
    if (hit) return hit;
    const node = compiled.nodes.get(id);
    if (!node) throw new Error(`node ${id} does not exist`);
    seenTypes.add(node.def);
    const label = `${node.type} \`${id}\``;
    const ctx: CostContext = {
      label,
      items,
      next: (to) => (typeof to === 'string' ? cost(to, caught) : EMPTY),
      warn: (message) => {
        if (!warnings.includes(message)) warnings.push(message);
      },
      fails: () => {
        canFail = true;
        const h = compiled.catchFor(id, caught);
        if (h) return prefix(range(1, `${label} fails → catch \`${h}\``), cost(h, [...caught, h]));
        return { ok: null, fail: range(1, `${label} fails, uncaught: the run ends`) };
      },
    };
    const out = node.def.estimate(node.config as never, ctx);
    memo.set(key, out);
    return out;
  };

  const total = prefix(range(1), cost(scenario.start, []));
  const whole = either(total.ok, total.fail)!;
  let min = whole.min;
  let max = whole.max;
  const assumptions: string[] = [];
  const noteCtx = { items, itemsGiven: opts.items !== undefined };
  for (const def of NODE_TYPES.filter((d) => seenTypes.has(d))) {
    const note = def.costNote?.(noteCtx);
    if (note !== undefined && !assumptions.includes(note)) assumptions.push(note);
  }
  if (canFail) {
    assumptions.push(
      'a node that can fail is taken both ways: the fewest counts a failure (an uncaught one ends the run, a caught one goes on along the catch path) only where that costs less than going on; the most takes the catch path where it costs more',
    );
  }
  const budget = scenario.maxActionsPerRun;
  if (budget !== undefined && max > budget) {
    assumptions.push(`maxActionsPerRun ${budget} caps every run: one that would spend more fails with RUN_BUDGET_EXCEEDED`);
    max = budget;
    min = Math.min(min, budget);
  }
  const ok = total.ok ? { min: Math.min(total.ok.min, max), max: Math.min(total.ok.max, max) } : null;
  const est: Estimate = { perRun: { min, max }, succeeded: ok, items, assumptions, warnings, minPath: whole.minWhy, maxPath: whole.maxWhy };

  const trigger = scenario.trigger;
  if (trigger.type === 'cron') {
    const tz = trigger.timezone ?? 'UTC';
    const month = opts.month ?? monthOf(opts.now ?? new Date(), tz);
    const m = firingsInMonth(trigger.schedule, tz, month);
    est.perMonth = { firings: m.firings, min: m.firings * min, max: m.firings * max, month, timezone: tz, capped: m.capped };
    assumptions.push(
      `per month: the firings of ${JSON.stringify(trigger.schedule)} in ${month} (from local midnight on the 1st to local midnight on the 1st of the next month, ${tz})${m.capped ? `, extrapolated from the first ${MAX_FIRINGS} firings` : ''}, each costing the per-run range`,
    );
  }
  return est;
}

/**
 * For a billable cron scenario being enabled: one warning line when its firings from `now` to
 * the end of the tenant's billing period (`periodEnd`, exclusive) would cost more than the
 * `remaining` actions, with the numbers; undefined when they fit, or for another trigger.
 */
export function cronBudgetWarning(
  scenario: Scenario,
  usage: { tenant: string; remaining: number; period: { key: string; end: string } },
  now: Date,
): string | undefined {
  if (scenario.trigger.type !== 'cron' || scenario.billable === false) return undefined;
  const { schedule, timezone } = scenario.trigger;
  // instantsBetween takes (from, to]: a firing at the period's end belongs to the next one.
  const firings = instantsBetween(schedule, timezone ?? 'UTC', now, new Date(Date.parse(usage.period.end) - 1), MAX_FIRINGS + 1);
  const capped = firings.length > MAX_FIRINGS;
  const n = Math.min(firings.length, MAX_FIRINGS);
  const { min, max } = estimateScenario(scenario).perRun;
  if (n * max <= usage.remaining) return undefined;
  const more = capped ? 'more than ' : '';
  const cost = min === max ? `${n * min}` : `${n * min} to ${n * max}`;
  return `${scenario.id} fires ${more}${n} times by the end of ${usage.period.key} (${usage.period.end}), ${more}${cost} actions (${min === max ? min : `${min} to ${max}`} a run), and tenant ${usage.tenant} has ${usage.remaining} actions left`;
}

const MONTH_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** Whether `month` is a calendar month written `YYYY-MM`. */
export function isMonth(month: string): boolean {
  return MONTH_RE.test(month);
}

/** The calendar month (`YYYY-MM`) holding `now` in `tz`. */
export function monthOf(now: Date, tz: string): string {
  return DateTime.fromJSDate(now, { zone: tz }).toFormat('yyyy-LL');
}

/**
 * How many times `schedule` fires in `month` (`YYYY-MM`) in `tz`: the instants from local
 * midnight on the 1st up to local midnight on the 1st of the next month, as the scheduler
 * fires them (`core/cron.ts`: a skipped local time fires once after the gap, a repeated one
 * once). Past {@link MAX_FIRINGS} the rest of the month is extrapolated at the rate seen.
 */
export function firingsInMonth(schedule: string, tz: string, month: string): { firings: number; capped: boolean } {
  const m = MONTH_RE.exec(month);
  if (!m) throw new Error(`month must be YYYY-MM, got ${JSON.stringify(month)}`);
  const start = DateTime.fromObject({ year: Number(m[1]), month: Number(m[2]), day: 1 }, { zone: tz });
  if (!start.isValid) throw new Error(`unknown IANA timezone ${JSON.stringify(tz)}`);
  const from = start.toMillis();
  const end = start.plus({ months: 1 }).toMillis();
  // instantsBetween takes (from, to]: shifted by 1 ms, that is [from, end).
  const at = instantsBetween(schedule, tz, new Date(from - 1), new Date(end - 1), MAX_FIRINGS + 1);
  if (at.length <= MAX_FIRINGS) return { firings: at.length, capped: false };
  // Too many to count one by one: the month's share at the rate of the first MAX_FIRINGS.
  const first = at[0]!.getTime();
  const rate = (MAX_FIRINGS - 1) / Math.max(1, at[MAX_FIRINGS - 1]!.getTime() - first);
  return { firings: Math.max(MAX_FIRINGS, Math.round((end - first) * rate)), capped: true };
}
