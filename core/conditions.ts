/**
 * Conditions of Switch and Filter: `{ path, op, value }`, `{ all }`, `{ any }`, `{ not }`.
 */

import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { getPath, PATH_RE, type Scope } from './paths.js';
import { renderDeep, templatePaths } from './templates.js';
import type { NodeRef } from './types.js';

export const OPS = [
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'notIn',
  'contains',
  'startsWith',
  'endsWith',
  'exists',
  'notExists',
  'isEmpty',
  'inList',
  'notInList',
] as const;
export type Op = (typeof OPS)[number];

export type Condition = { path: string; op: Op; value?: unknown } | { all: Condition[] } | { any: Condition[] } | { not: Condition };

const pathField = z.string().regex(PATH_RE, 'must be a path rooted at msg or vars, like msg.payload.score');

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ path: pathField, op: z.enum(OPS), value: z.unknown().optional() }),
    z.strictObject({ all: z.array(conditionSchema).min(1) }),
    z.strictObject({ any: z.array(conditionSchema).min(1) }),
    z.strictObject({ not: conditionSchema }),
  ]),
) as z.ZodType<Condition>;

function compare(a: unknown, b: unknown): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'number' && typeof b === 'string' && b.trim() !== '' && !Number.isNaN(Number(b))) return a - Number(b);
  if (typeof a === 'string' && typeof b === 'number' && a.trim() !== '' && !Number.isNaN(Number(a))) return Number(a) - b;
  return null;
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

function includes(list: unknown, v: unknown): boolean {
  return Array.isArray(list) && list.some((x) => isDeepStrictEqual(x, v));
}

/** A list of a scenario (named, or a condition's literal value), indexed: its primitive entries in a Set (-0 apart: a Set takes it for 0), its objects in order. */
interface ListIndex {
  primitives: Set<unknown>;
  negativeZero: boolean;
  objects: unknown[];
}
const listIndexes = new WeakMap<unknown[], ListIndex>();

/**
 * `includes` for a list of the scenario's own (inList/notInList, or in/notIn with a literal
 * list): the same answers, but a lookup of a string or number is a Set's, not a scan calling
 * isDeepStrictEqual on each entry (1.3 ms for 100,000 entries, on the worker's event loop, for
 * every message a Filter looks at). The list must not change: scenario documents do not.
 */
function inScenarioList(list: unknown, v: unknown): boolean {
  if (!Array.isArray(list)) return false;
  let index = listIndexes.get(list);
  if (!index) {
    index = { primitives: new Set(), negativeZero: false, objects: [] };
    for (const x of list) {
      if (x !== null && typeof x === 'object') index.objects.push(x);
      else if (Object.is(x, -0)) index.negativeZero = true;
      else index.primitives.add(x);
    }
    listIndexes.set(list, index);
  }
  if (v !== null && typeof v === 'object') return index.objects.some((x) => isDeepStrictEqual(x, v));
  return Object.is(v, -0) ? index.negativeZero : index.primitives.has(v);
}

const templateFree = new WeakMap<object, boolean>();

/**
 * A condition's `value` rendered against the scope. An array or object without any `{{` is
 * itself, looked at once (conditions only read it): not copied for every message.
 */
function expectedOf(value: unknown, scope: Scope): unknown {
  if (value === null || typeof value !== 'object') return renderDeep(value, scope);
  let free = templateFree.get(value);
  if (free === undefined) templateFree.set(value, (free = templatePaths(value).length === 0));
  return free ? value : renderDeep(value, scope);
}

/** `in`: a literal list (`expected` is the condition's own value) through its index, a rendered one scanned. */
function isIn(value: unknown, expected: unknown, actual: unknown): boolean {
  return expected === value ? inScenarioList(expected, actual) : includes(expected, actual);
}

export function evaluate(c: Condition, scope: Scope, lists: Record<string, unknown[]> = {}): boolean {
  if ('all' in c) return c.all.every((x) => evaluate(x, scope, lists));
  if ('any' in c) return c.any.some((x) => evaluate(x, scope, lists));
  if ('not' in c) return !evaluate(c.not, scope, lists);
  const actual = getPath(scope, c.path);
  const expected = c.op === 'inList' || c.op === 'notInList' ? c.value : expectedOf(c.value, scope);
  switch (c.op) {
    case 'eq':
      return isDeepStrictEqual(actual, expected);
    case 'ne':
      return !isDeepStrictEqual(actual, expected);
    case 'gt': {
      const d = compare(actual, expected);
      return d !== null && d > 0;
    }
    case 'gte': {
      const d = compare(actual, expected);
      return d !== null && d >= 0;
    }
    case 'lt': {
      const d = compare(actual, expected);
      return d !== null && d < 0;
    }
    case 'lte': {
      const d = compare(actual, expected);
      return d !== null && d <= 0;
    }
    case 'in':
      return isIn(c.value, expected, actual);
    case 'notIn':
      return !isIn(c.value, expected, actual);
    case 'contains':
      if (typeof actual === 'string') return typeof expected === 'string' && actual.includes(expected);
      return includes(actual, expected);
    case 'startsWith':
      return typeof actual === 'string' && typeof expected === 'string' && actual.startsWith(expected);
    case 'endsWith':
      return typeof actual === 'string' && typeof expected === 'string' && actual.endsWith(expected);
    case 'exists':
      return actual !== undefined && actual !== null;
    case 'notExists':
      return actual === undefined || actual === null;
    case 'isEmpty':
      return isEmpty(actual);
    case 'inList':
      return inScenarioList(lists[String(c.value)], actual);
    case 'notInList':
      return !inScenarioList(lists[String(c.value)], actual);
  }
}

/** Problems a condition can have beyond its shape: inList/notInList naming a list. */
export function conditionRefs(c: Condition, path: string, out: NodeRef[] = []): NodeRef[] {
  if ('all' in c) for (const [i, x] of c.all.entries()) conditionRefs(x, `${path}.all.${i}`, out);
  else if ('any' in c) for (const [i, x] of c.any.entries()) conditionRefs(x, `${path}.any.${i}`, out);
  else if ('not' in c) conditionRefs(c.not, `${path}.not`, out);
  else if (c.op === 'inList' || c.op === 'notInList') out.push({ path: `${path}.value`, kind: 'list', name: String(c.value ?? '') });
  return out;
}
