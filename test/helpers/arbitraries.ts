/**
 * fast-check arbitraries for property tests: random VALID scenarios (DAGs of every node type
 * that needs no peer), their inputs, and random INVALID documents; plus `predict`, an
 * independent reference interpreter of §2–§3 (depth-first, no waves, no frames) that gives the
 * expected status, actions and outputs of a run.
 *
 * Structure of a valid scenario: nodes n0..nK in document order, every edge from node i goes to
 * a node j > i (so there is no cycle), catch and comment nodes are never targets, and the
 * start is node 0 (never a catch or comment).
 */
import fc from 'fast-check';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Doc = Record<string, unknown>;
export type Node = Record<string, unknown> & { id: string; type: string };

export interface Payload {
  items: number[];
  a: number;
  b: string;
  nested: { items: number[] };
}

export interface Case {
  doc: Doc;
  payload: Payload;
}

// ---------------------------------------------------------------------------------------------
// Function snippets: small, deterministic, defined for any payload (number, object, array...).
// ---------------------------------------------------------------------------------------------

/** Reads a numeric "value" of the payload: the number itself or its field `a`. */
const VALUE = "const p = msg.payload; const v = typeof p === 'number' ? p : (p && typeof p === 'object' && typeof p.a === 'number' ? p.a : null);";

export const SNIPPETS = {
  pass: () => 'return msg;',
  transform: (k: number) =>
    `const p = msg.payload;
if (typeof p === 'number') return { ...msg, payload: p + ${k} };
if (p && typeof p === 'object' && !Array.isArray(p)) return { ...msg, payload: { ...p, a: (typeof p.a === 'number' ? p.a : 0) + ${k} } };
return { ...msg, payload: { a: ${k}, was: p } };`,
  /** A payload with a fresh `items` array: lets loops nest over `msg.payload.items`. */
  wrap: (k: number) =>
    `const p = msg.payload;
return { ...msg, payload: { items: typeof p === 'number' ? [p, p + ${k}] : [${Array.from({ length: k % 4 }, (_, i) => i + 1).join(', ')}], a: typeof p === 'number' ? p : ${k}, b: 'w' } };`,
  none: () => 'return null;',
  two: () =>
    `const p = msg.payload;
return [msg, { ...msg, payload: typeof p === 'number' ? -p : { copy: p, a: 1 } }];`,
  fail: (k: number) => `throw new Error('boom ${k}');`,
  failIf: (k: number) => `${VALUE}
if (v !== null && v % ${k + 1} === 0) throw new Error('bad value ' + v);
return msg;`,
  badReturn: (k: number) => (k % 2 ? 'return 42;' : 'return [msg, 7];'),
  /** setVar, then read it back into the payload (`seen`, ignored where only order differs). */
  setVar: () =>
    `const c = (typeof vars.counter === 'number' ? vars.counter : 0) + 1;
setVar('counter', c);
const p = msg.payload;
return { ...msg, payload: p && typeof p === 'object' && !Array.isArray(p) ? { ...p, seen: vars.counter } : { v: p, seen: vars.counter } };`,
  log: () => "log('value', msg.payload); return msg;",
} as const;

export type SnippetName = keyof typeof SNIPPETS;

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

export type Condition = { path: string; op: string; value?: unknown } | { all: Condition[] } | { any: Condition[] } | { not: Condition };

/** Paths conditions read. Never `vars.counter`: which value a branch sees is scheduling-dependent. */
const NUM_PATHS = ['msg.payload', 'msg.payload.a', 'msg.loop.index', 'vars.list.0'];
const smallInt = fc.integer({ min: 0, max: 9 });

const leafCondition: fc.Arbitrary<Condition> = fc.oneof(
  fc.record({ path: fc.constantFrom(...NUM_PATHS), op: fc.constantFrom('eq', 'ne', 'gt', 'gte', 'lt', 'lte'), value: smallInt }),
  fc.record({ path: fc.constantFrom('msg.payload.items', 'msg.payload.nested.items', 'msg.payload'), op: fc.constantFrom('isEmpty', 'exists', 'notExists') }),
  fc.record({ path: fc.constantFrom('msg.payload.items', 'msg.payload.b'), op: fc.constant('contains'), value: fc.oneof(smallInt, fc.constantFrom('a', 'o')) }),
  fc.record({ path: fc.constantFrom(...NUM_PATHS), op: fc.constantFrom('in', 'notIn'), value: fc.array(smallInt, { maxLength: 4 }) }),
  fc.record({ path: fc.constant('msg.payload.b'), op: fc.constantFrom('eq', 'startsWith', 'endsWith'), value: fc.constantFrom('foo', 'ba', 'z', '') }),
  fc.record({ path: fc.constantFrom(...NUM_PATHS), op: fc.constantFrom('inList', 'notInList'), value: fc.constant('small') }),
);

export const conditionArb: fc.Arbitrary<Condition> = fc.letrec<{ c: Condition }>((tie) => ({
  c: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafCondition,
    fc.record({ all: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ any: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ not: tie('c') }),
  ),
})).c;

// ---------------------------------------------------------------------------------------------
// Valid scenarios
// ---------------------------------------------------------------------------------------------

export const KINDS = ['function', 'switch', 'filter', 'fanOut', 'sequencer', 'loop', 'conversion', 'catch', 'exception', 'comment', 'mail'] as const;
export type Kind = (typeof KINDS)[number];

/** Raw material for one node; `build` turns it into a node with targets after it. */
interface Slot {
  kind: Kind;
  snippet: SnippetName;
  k: number;
  picks: number[];
  flags: boolean[];
  conds: Condition[];
  over: string;
  maxItems: number | null;
  path: string;
  target: string | null;
  onMissing: 'keep' | 'default' | 'error' | null;
  code: string | null;
  mode: 'first' | 'all' | null;
}

const kindArb: fc.Arbitrary<Kind> = fc.oneof(
  { arbitrary: fc.constant<Kind>('function'), weight: 6 },
  { arbitrary: fc.constant<Kind>('switch'), weight: 2 },
  { arbitrary: fc.constant<Kind>('filter'), weight: 2 },
  { arbitrary: fc.constant<Kind>('fanOut'), weight: 3 },
  { arbitrary: fc.constant<Kind>('sequencer'), weight: 2 },
  { arbitrary: fc.constant<Kind>('loop'), weight: 4 },
  { arbitrary: fc.constant<Kind>('conversion'), weight: 2 },
  { arbitrary: fc.constant<Kind>('catch'), weight: 2 },
  { arbitrary: fc.constant<Kind>('exception'), weight: 1 },
  { arbitrary: fc.constant<Kind>('comment'), weight: 1 },
  { arbitrary: fc.constant<Kind>('mail'), weight: 1 },
);

const snippetArb: fc.Arbitrary<SnippetName> = fc.oneof(
  { arbitrary: fc.constantFrom<SnippetName>('pass', 'transform', 'wrap'), weight: 6 },
  { arbitrary: fc.constantFrom<SnippetName>('none', 'two', 'setVar', 'log'), weight: 3 },
  { arbitrary: fc.constantFrom<SnippetName>('fail', 'failIf', 'badReturn'), weight: 2 },
);

/** `arb` once in `1 + oneIn` draws, else null. */
function rarely<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: oneIn }, { arbitrary: arb, weight: 1 });
}

const slotArb: fc.Arbitrary<Slot> = fc.record({
  kind: kindArb,
  snippet: snippetArb,
  k: fc.integer({ min: 1, max: 5 }),
  picks: fc.array(fc.nat({ max: 10_000 }), { minLength: 4, maxLength: 4 }),
  flags: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
  conds: fc.array(conditionArb, { minLength: 3, maxLength: 3 }),
  over: fc.constantFrom('msg.payload.items', 'msg.payload.items', 'vars.list', 'vars.list', 'msg.payload.nested.items'),
  maxItems: rarely(fc.integer({ min: 1, max: 4 }), 5),
  path: fc.constantFrom('msg.payload', 'msg.payload.a', 'msg.payload.b'),
  target: fc.option(fc.constantFrom('msg.payload.label', 'msg.label', 'msg.payload.a'), { freq: 2 }),
  onMissing: fc.option(fc.constantFrom<'keep' | 'default' | 'error'>('keep', 'keep', 'default', 'error'), { freq: 3 }),
  code: fc.option(fc.constantFrom('EXCEPTION', 'BAD_INPUT', 'E2'), { freq: 2 }),
  mode: fc.option(fc.constantFrom<'first' | 'all'>('first', 'all'), { freq: 3 }),
});

const NOT_TARGET = new Set<Kind>(['catch', 'comment']);

/** Builds a valid scenario from its slots: node 0 is the start; edges only go forward. */
export function build(slots: Slot[], opts: { prefix: string; maxActionsPerRun: number | null; list: number[] }): Doc {
  const kinds = slots.map((s, i) => (i === 0 && NOT_TARGET.has(s.kind) ? 'function' : s.kind));
  const ids = slots.map((_, i) => `${opts.prefix}${i}`);
  const nodes: Node[] = [];
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    const id = ids[i]!;
    const later: string[] = [];
    for (let j = i + 1; j < slots.length; j++) if (!NOT_TARGET.has(kinds[j] as Kind)) later.push(ids[j]!);
    // Mostly one of the next two nodes (long chains), sometimes any later one.
    const pick = (n: number): string => {
      const p = s.picks[n % s.picks.length]!;
      return later[p % 4 === 0 ? Math.floor(p / 4) % later.length : (p % 4) % Math.min(2, later.length)]!;
    };
    // `next` is there 3 times in 4.
    const maybe = (n: number): string | undefined => (s.picks[(n + 2) % s.picks.length]! % 4 !== 3 && later.length > 0 ? pick(n) : undefined);
    const many = (n: number): string[] => Array.from({ length: 1 + (s.picks[n]! % 3) }, (_, m) => pick(n + m));
    const withNext = <T extends Node>(node: T, next: string | undefined): T => (next === undefined ? node : { ...node, next });
    let kind = kinds[i] as Kind;
    const needsTarget = kind === 'switch' || kind === 'fanOut' || kind === 'sequencer' || kind === 'loop';
    if (needsTarget && later.length === 0) kind = 'function';
    switch (kind) {
      case 'function': {
        const node: Node = { id, type: 'function', code: SNIPPETS[s.snippet](s.k) };
        nodes.push(withNext(node, maybe(0)));
        break;
      }
      case 'switch': {
        const n = 1 + (s.picks[3]! % 3);
        const node: Node = { id, type: 'switch', cases: Array.from({ length: n }, (_, c) => ({ when: s.conds[c]!, next: pick(c) })) };
        if (s.flags[1]) node.default = pick(3);
        if (s.mode) node.mode = s.mode;
        nodes.push(node);
        break;
      }
      case 'filter':
        nodes.push(withNext({ id, type: 'filter', when: s.conds[0]! }, maybe(0)));
        break;
      case 'fanOut':
        nodes.push({ id, type: 'fanOut', branches: many(0) });
        break;
      case 'sequencer':
        nodes.push(withNext({ id, type: 'sequencer', steps: many(1) }, maybe(0)));
        break;
      case 'loop': {
        const node: Node = { id, type: 'loop', over: s.over, body: pick(1) };
        if (s.flags[2]) node.collect = true;
        else if (s.flags[3]) node.collect = false;
        if (s.maxItems !== null) node.maxItems = s.maxItems;
        nodes.push(withNext(node, maybe(0)));
        break;
      }
      case 'conversion': {
        const node: Node = { id, type: 'conversion', table: s.flags[4] ? 'codes' : 'names', path: s.path };
        if (s.target !== null) node.target = s.target;
        if (s.onMissing !== null) node.onMissing = s.onMissing;
        if (s.onMissing === 'default' && s.flags[5]) node.defaultValue = { unknown: s.k };
        nodes.push(withNext(node, maybe(0)));
        break;
      }
      case 'catch': {
        const node: Node = { id, type: 'catch' };
        if (s.flags[1]) {
          // Scope: any node that runs (not a comment), even before this one.
          const pool = ids.filter((_, j) => kinds[j] !== 'comment');
          node.scope = [...new Set(Array.from({ length: 1 + (s.picks[2]! % 2) }, (_, m) => pool[(s.picks[m]! + m) % pool.length]!))];
        }
        nodes.push(withNext(node, maybe(0)));
        break;
      }
      case 'exception': {
        const node: Node = { id, type: 'exception', message: `failed at {{msg.payload.a}} (${s.k})` };
        if (s.code !== null) node.code = s.code;
        nodes.push(node);
        break;
      }
      case 'comment':
        nodes.push({ id, type: 'comment', text: `note ${s.k}: {{not a template}}` });
        break;
      case 'mail': {
        const node: Node = { id, type: 'mail', to: s.flags[1] ? 'ops@example.com' : '{{msg.payload.b}}@example.com', subject: 'a={{msg.payload.a}}' };
        if (s.flags[2]) node.text = 'value {{msg.payload.a}} of {{msg.loop.count}}';
        nodes.push(withNext(node, maybe(0)));
        break;
      }
    }
  }
  const doc: Doc = {
    id: 'prop',
    trigger: { type: 'manual' },
    variables: { list: opts.list, counter: 0 },
    lists: { small: [0, 1, 2, 3] },
    tables: {
      codes: { '0': 'zero', '1': 'one', '2': 'two', '3': 3, foo: 'F', bar: { b: true } },
      names: { '5': 'five', baz: 'Z' },
    },
    start: ids[0],
    nodes,
  };
  if (opts.maxActionsPerRun !== null) doc.maxActionsPerRun = opts.maxActionsPerRun;
  return doc;
}

export const payloadArb: fc.Arbitrary<Payload> = fc.record({
  items: fc.array(smallInt, { maxLength: 5 }),
  a: smallInt,
  b: fc.constantFrom('foo', 'bar', 'baz', ''),
  nested: fc.record({ items: fc.array(smallInt, { maxLength: 3 }) }),
});

/** Random valid scenario documents (without a cost bound). */
export interface ScenarioOptions {
  minNodes?: number;
  maxNodes?: number;
  /** Whether some scenarios get a `maxActionsPerRun` (default true). */
  budget?: boolean;
  /** Whether some scenarios are `billable: false` (default false). */
  nonBillable?: boolean;
}

export function scenarioArb(o: ScenarioOptions = {}): fc.Arbitrary<Doc> {
  return fc
    .record({
      slots: fc.array(slotArb, { minLength: o.minNodes ?? 2, maxLength: o.maxNodes ?? 14 }),
      prefix: fc.constantFrom('n', 'step-', 'x_'),
      maxActionsPerRun: o.budget === false ? fc.constant(null) : rarely(fc.integer({ min: 1, max: 40 }), 6),
      list: fc.array(smallInt, { minLength: 1, maxLength: 3 }),
      billable: o.nonBillable ? fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }) : fc.constant(true),
    })
    .map(({ slots, prefix, maxActionsPerRun, list, billable }) => {
      const doc = build(slots, { prefix, maxActionsPerRun, list });
      return billable ? doc : { ...doc, billable: false };
    });
}

/**
 * Random valid cases (scenario + input) whose runs stay small: the reference interpreter's
 * upper bound on actions (every path followed, failures or not) is within [minCost, maxCost].
 */
export function caseArb(o: ScenarioOptions & { minCost?: number; maxCost?: number } = {}): fc.Arbitrary<Case> {
  const maxCost = o.maxCost ?? 400;
  const minCost = o.minCost ?? 0;
  return fc.record({ doc: scenarioArb(o), payload: payloadArb }).filter((c) => {
    const cost = predict(c.doc, c.payload).upperBound;
    return cost >= minCost && cost <= maxCost;
  });
}

// ---------------------------------------------------------------------------------------------
// The reference interpreter
// ---------------------------------------------------------------------------------------------

export interface Prediction {
  status: 'succeeded' | 'failed';
  /** The first uncaught failure found (depth-first), when failed. */
  error: { nodeId: string; code: string } | null;
  /** Actions of the whole run, when succeeded (ignoring maxActionsPerRun). */
  actions: number;
  outputs: Array<Record<string, unknown>>;
  /** Actions when every path is followed to its end, failed or not: bounds any execution. */
  upperBound: number;
  /** Every uncaught failure on some path (`nodeId:code`): a failed run's error is one of them. */
  uncaught: string[];
}

class Failed extends Error {
  constructor(
    readonly nodeId: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Msg = Record<string, unknown>;
type Sink = { kind: 'run' } | { kind: 'loop'; collected: unknown[] | null };

function getPath(scope: { msg: unknown; vars: unknown }, path: string): unknown {
  const parts = path.split('.');
  let cur: unknown = parts[0] === 'msg' ? scope.msg : scope.vars;
  for (const key of parts.slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (!Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

class PathNotWritable extends Error {}

function setPath(msg: Msg, path: string, value: unknown): Msg {
  const parts = path.split('.').slice(1);
  const root: Msg = { ...msg };
  let cur: Record<string, unknown> = root;
  parts.forEach((key, i) => {
    // SPEC-independent engine rule: a named field cannot be written into an array.
    if (Array.isArray(cur) && !/^(0|[1-9]\d*)$/.test(key)) throw new PathNotWritable();
    if (i === parts.length - 1) cur[key] = value;
    else {
      const next = cur[key];
      const copy = Array.isArray(next) ? [...next] : next !== null && typeof next === 'object' ? { ...(next as object) } : {};
      cur[key] = copy;
      cur = copy as Record<string, unknown>;
    }
  });
  return root;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function render(tpl: string, scope: { msg: unknown; vars: unknown }): string {
  return tpl.replace(/\{\{\s*([^{}]+?)\s*\}\}/g, (_, p: string) => text(getPath(scope, p)));
}

/** Deep equality of JSON values (the values compared here are numbers, strings and arrays). */
const same = (a: unknown, b: unknown): boolean =>
  a === b || (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && JSON.stringify(a) === JSON.stringify(b));

function holds(c: Condition, scope: { msg: unknown; vars: unknown }, lists: Record<string, unknown[]>): boolean {
  if ('all' in c) return c.all.every((x) => holds(x, scope, lists));
  if ('any' in c) return c.any.some((x) => holds(x, scope, lists));
  if ('not' in c) return !holds(c.not, scope, lists);
  const actual = getPath(scope, c.path);
  const v = c.value;
  const num = typeof actual === 'number' && typeof v === 'number';
  switch (c.op) {
    case 'eq':
      return same(actual, v);
    case 'ne':
      return !same(actual, v);
    case 'gt':
      return num && (actual as number) > (v as number);
    case 'gte':
      return num && (actual as number) >= (v as number);
    case 'lt':
      return num && (actual as number) < (v as number);
    case 'lte':
      return num && (actual as number) <= (v as number);
    case 'in':
      return Array.isArray(v) && v.some((x) => same(x, actual));
    case 'notIn':
      return !(Array.isArray(v) && v.some((x) => same(x, actual)));
    case 'contains':
      if (typeof actual === 'string') return typeof v === 'string' && actual.includes(v);
      return Array.isArray(actual) && actual.some((x) => same(x, v));
    case 'startsWith':
      return typeof actual === 'string' && typeof v === 'string' && actual.startsWith(v);
    case 'endsWith':
      return typeof actual === 'string' && typeof v === 'string' && actual.endsWith(v);
    case 'exists':
      return actual !== undefined && actual !== null;
    case 'notExists':
      return actual === undefined || actual === null;
    case 'isEmpty':
      return (
        actual === undefined ||
        actual === null ||
        actual === '' ||
        (Array.isArray(actual) ? actual.length === 0 : typeof actual === 'object' && Object.keys(actual).length === 0)
      );
    case 'inList':
      return (lists[String(v)] ?? []).some((x) => same(x, actual));
    case 'notInList':
      return !(lists[String(v)] ?? []).some((x) => same(x, actual));
    default:
      throw new Error(`model: unknown op ${c.op}`);
  }
}

type ModelFn = (msg: unknown, vars: unknown, setVar: (name: string, value: unknown) => void, log: () => void) => unknown;
const compiled = new Map<string, ModelFn>();
function fnOf(code: string): ModelFn {
  let f = compiled.get(code);
  if (!f) {
    f = new Function('msg', 'vars', 'setVar', 'log', `"use strict";\n${code}\n`) as ModelFn;
    compiled.set(code, f);
  }
  return f;
}

const isMsg = (v: unknown): v is Msg => v !== null && typeof v === 'object' && !Array.isArray(v);
const EMITS = new Set(['function', 'conversion', 'mail']);

/**
 * The expected outcome of one run, by §2–§3 read literally: depth-first, one path at a time.
 * Orders inside a run may differ from the engine's (it runs branches concurrently), so
 * compare outputs with `canonical`.
 */
export function predict(doc: Doc, payload: unknown, limit = 5000): Prediction {
  try {
    const bound = interpret(doc, payload, false, limit);
    const full = interpret(doc, payload, true, limit);
    return { ...full, upperBound: bound.actions, uncaught: bound.uncaught };
  } catch (e) {
    if (e instanceof TooBig) return { status: 'failed', error: null, actions: Infinity, outputs: [], upperBound: Infinity, uncaught: [] };
    throw e;
  }
}

class TooBig extends Error {}

function interpret(doc: Doc, payload: unknown, failFast: boolean, limit: number): Omit<Prediction, 'upperBound'> {
  const uncaught = new Set<string>();
  const nodes = doc.nodes as Node[];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const lists = (doc.lists ?? {}) as Record<string, unknown[]>;
  const tables = (doc.tables ?? {}) as Record<string, Record<string, unknown>>;
  const vars: Record<string, unknown> = structuredClone((doc.variables ?? {}) as Record<string, unknown>);
  const scoped = nodes.filter((n) => n.type === 'catch' && Array.isArray(n.scope));
  const catchAll = nodes.filter((n) => n.type === 'catch' && !Array.isArray(n.scope));
  const outputs: Msg[] = [];
  let actions = 1; // the trigger
  let firstFailure: Failed | null = null;

  const deliver = (sink: Sink, msgs: Msg[]) => {
    if (sink.kind === 'run') outputs.push(...msgs);
    else if (sink.collected) for (const m of msgs) sink.collected.push(m.payload);
  };

  const exec = (node: Node, msg: Msg, caught: string[], sink: Sink): void => {
    if (++actions > limit) throw new TooBig();
    const scope = { msg, vars };
    const go = (to: string, m: Msg) => run(to, m, caught, sink);
    const emit = (msgs: Msg[]) => {
      if (typeof node.next === 'string') for (const m of msgs) go(node.next, m);
      else if (EMITS.has(node.type)) deliver(sink, msgs);
    };
    switch (node.type) {
      case 'function': {
        let r: unknown;
        try {
          r = fnOf(node.code as string)(
            structuredClone(msg),
            structuredClone(vars),
            (name: string, value: unknown) => {
              vars[name] = value;
            },
            () => undefined,
          );
        } catch (e) {
          throw new Failed(node.id, 'FUNCTION_ERROR', String(e));
        }
        r = r === undefined ? null : JSON.parse(JSON.stringify(r));
        if (r === null) return;
        if (Array.isArray(r)) {
          if (!r.every(isMsg)) throw new Failed(node.id, 'FUNCTION_ERROR', 'bad item');
          emit(r as Msg[]);
        } else if (isMsg(r)) emit([r]);
        else throw new Failed(node.id, 'FUNCTION_ERROR', 'not a message');
        return;
      }
      case 'switch': {
        const cases = node.cases as Array<{ when: Condition; next: string }>;
        const targets: string[] = [];
        for (const c of cases) {
          if (holds(c.when, scope, lists)) {
            targets.push(c.next);
            if (node.mode !== 'all') break;
          }
        }
        if (targets.length === 0 && typeof node.default === 'string') targets.push(node.default);
        for (const t of targets) go(t, msg);
        return;
      }
      case 'filter':
        if (holds(node.when as Condition, scope, lists) && typeof node.next === 'string') go(node.next, msg);
        return;
      case 'fanOut':
        for (const b of node.branches as string[]) go(b, msg);
        return;
      case 'sequencer':
        for (const s of node.steps as string[]) go(s, msg);
        if (typeof node.next === 'string') go(node.next, msg);
        return;
      case 'loop': {
        const items = getPath(scope, node.over as string);
        if (!Array.isArray(items)) throw new Failed(node.id, 'LOOP_NOT_ARRAY', 'not an array');
        if (items.length > ((node.maxItems as number | undefined) ?? 10_000)) throw new Failed(node.id, 'LOOP_TOO_LARGE', 'too many');
        const inner: Sink = { kind: 'loop', collected: node.collect === true ? [] : null };
        items.forEach((item, index) => {
          actions++;
          run(node.body as string, { ...msg, payload: item, loop: { index, count: items.length } }, caught, inner);
        });
        if (typeof node.next === 'string') go(node.next, inner.collected ? { ...msg, payload: inner.collected } : msg);
        return;
      }
      case 'conversion': {
        const table = tables[node.table as string] ?? {};
        const value = getPath(scope, node.path as string);
        const key = typeof value === 'string' ? value : JSON.stringify(value ?? null);
        let mapped: unknown;
        if (Object.hasOwn(table, key)) mapped = table[key];
        else if ((node.onMissing ?? 'keep') === 'keep') mapped = value;
        else if (node.onMissing === 'default') mapped = node.defaultValue ?? null;
        else throw new Failed(node.id, 'CONVERSION_MISSING', 'missing');
        let out: Msg;
        try {
          out = setPath(msg, (node.target ?? node.path) as string, mapped);
        } catch (e) {
          if (e instanceof PathNotWritable) throw new Failed(node.id, 'PATH_NOT_WRITABLE', 'not writable');
          throw e;
        }
        emit([out]);
        return;
      }
      case 'exception':
        throw new Failed(node.id, (node.code as string | undefined) ?? 'EXCEPTION', render(node.message as string, scope));
      case 'mail': {
        const to = render(node.to as string, scope).trim();
        if (!to) throw new Failed(node.id, 'MAIL_ERROR', 'no recipient');
        const mail: Record<string, unknown> = { from: 'flowmeter@localhost', to, subject: render((node.subject as string | undefined) ?? '', scope) };
        if (typeof node.text === 'string') mail.text = render(node.text, scope);
        emit([{ ...msg, mail: { ...mail, captured: true } }]);
        return;
      }
      case 'catch':
        if (typeof node.next === 'string') go(node.next, msg);
        return;
      default:
        throw new Error(`model: node type ${node.type} is not modelled`);
    }
  };

  const run = (id: string, msg: Msg, caught: string[], sink: Sink): void => {
    const node = byId.get(id)!;
    try {
      exec(node, msg, caught, sink);
    } catch (e) {
      if (!(e instanceof Failed)) throw e;
      if (e.nodeId !== node.id) throw e; // a failure further down, already handled there
      const handler = scoped.find((c) => (c.scope as string[]).includes(node.id) && !caught.includes(c.id)) ?? catchAll.find((c) => !caught.includes(c.id));
      if (handler) {
        run(handler.id, { ...msg, error: { nodeId: node.id, code: e.code, message: e.message } }, [...caught, handler.id], sink);
        return;
      }
      firstFailure ??= e;
      uncaught.add(`${e.nodeId}:${e.code}`);
      if (failFast) throw new Failed('$uncaught', e.code, e.message);
    }
  };

  const trigger: Msg = { payload: payload ?? null };
  try {
    run(doc.start as string, trigger, [], { kind: 'run' });
  } catch (e) {
    if (!(e instanceof Failed)) throw e;
  }
  const f = firstFailure as Failed | null;
  return {
    status: f ? 'failed' : 'succeeded',
    error: f ? { nodeId: f.nodeId, code: f.code } : null,
    actions,
    outputs,
    uncaught: [...uncaught],
  };
}

/**
 * A canonical form for comparing outputs whose order inside a run is scheduling-dependent:
 * JSON, arrays sorted, error messages and read-back variables (`seen`) dropped.
 */
export function canonical(v: unknown): string {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x))
      return x
        .map(walk)
        .map((e) => JSON.stringify(e))
        .sort();
    if (x !== null && typeof x === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) {
        if (k === 'seen') continue;
        const val = (x as Record<string, unknown>)[k];
        if (val === undefined) continue;
        if (k === 'error' && val !== null && typeof val === 'object') {
          const { message: _m, ...rest } = val as Record<string, unknown>;
          out[k] = walk(rest);
        } else out[k] = walk(val);
      }
      return out;
    }
    return x;
  };
  return JSON.stringify(walk(JSON.parse(JSON.stringify(v ?? null))));
}

// ---------------------------------------------------------------------------------------------
// Invalid documents
// ---------------------------------------------------------------------------------------------

export interface Mutation {
  doc: unknown;
  /** What was done, for the failure report. */
  what: string;
  /** A problem must mention this (e.g. "cycle"), when set. */
  mentions?: RegExp;
}

/** Every node id a node's edges point to, by field. */
function edgesOf(n: Node): string[] {
  const out: string[] = [];
  if (typeof n.next === 'string') out.push(n.next);
  if (typeof n.body === 'string') out.push(n.body);
  if (typeof n.default === 'string') out.push(n.default);
  if (Array.isArray(n.branches)) out.push(...(n.branches as string[]));
  if (Array.isArray(n.steps)) out.push(...(n.steps as string[]));
  if (Array.isArray(n.cases)) out.push(...(n.cases as Array<{ next: string }>).map((c) => c.next));
  return out;
}

/** Adds an edge from `from` to `to` in whichever field the node type has for one. */
function addEdge(n: Node, to: string): Node {
  switch (n.type) {
    case 'switch':
      return { ...n, cases: [...(n.cases as unknown[]), { when: { path: 'msg.payload', op: 'exists' }, next: to }] };
    case 'fanOut':
      return { ...n, branches: [...(n.branches as string[]), to] };
    case 'sequencer':
      return { ...n, steps: [...(n.steps as string[]), to] };
    case 'loop':
      return n.next === undefined ? { ...n, next: to } : { ...n, body: to };
    default:
      return { ...n, next: to };
  }
}

const BAD_IDS = ['', 'Upper', 'has space', '$trigger', 'a'.repeat(65), 'dot.ted', 'é', 'new\nline'];
const REQUIRED: Record<string, string[]> = {
  function: ['code'],
  switch: ['cases'],
  filter: ['when'],
  fanOut: ['branches'],
  sequencer: ['steps'],
  loop: ['over', 'body'],
  conversion: ['table', 'path'],
  exception: ['message'],
  comment: ['text'],
  mail: ['to'],
};

/** A value of another JSON type than `v` (never accepted where `v` was required). */
function wrongType(v: unknown, pick: number): unknown {
  const options: unknown[] = [];
  if (typeof v !== 'number') options.push(12345);
  if (typeof v !== 'string') options.push('text');
  if (typeof v !== 'boolean') options.push(true);
  if (!Array.isArray(v)) options.push(['x']);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) options.push({ x: 1 });
  if (v !== null) options.push(null);
  return options[pick % options.length];
}

/**
 * Mutations of a valid scenario that each make it invalid: a dropped required field, a wrong
 * type, a dangling reference, a back edge (a cycle), a duplicate id, a bad id, a catch or
 * comment as a target, an unknown field or node type.
 */
export function mutate(doc: Doc, how: number, a: number, b: number): Mutation {
  const nodes = (doc.nodes as Node[]).map((n) => ({ ...n }));
  const at = (i: number) => nodes[i % nodes.length]!;
  const ofNodes = (what: string, mentions?: RegExp): Mutation => ({ doc: { ...doc, nodes }, what, mentions });
  const runnable = nodes.map((n, i) => [n, i] as const).filter(([n]) => n.type !== 'catch' && n.type !== 'comment');
  switch (how % 11) {
    case 0: {
      const key = ['id', 'start', 'nodes'][a % 3]!;
      const { [key]: _drop, ...rest } = doc;
      return { doc: rest, what: `dropped top-level ${key}` };
    }
    case 1: {
      const n = at(a);
      const fields = ['id', 'type', ...(REQUIRED[n.type] ?? [])];
      const key = fields[b % fields.length]!;
      delete n[key];
      return ofNodes(`dropped ${n.id ?? '?'}.${key}`);
    }
    case 2: {
      const n = at(a);
      const keys = Object.keys(n).filter((k) => k !== 'defaultValue');
      const key = keys[b % keys.length]!;
      n[key] = wrongType(n[key], a + b);
      return ofNodes(`wrong type at ${n.id}.${key}`);
    }
    case 3: {
      const key = ['id', 'start', 'nodes', 'variables', 'tables', 'maxActionsPerRun', 'trigger'][a % 7]!;
      const v = key === 'maxActionsPerRun' ? (b % 2 ? 0 : 'ten') : wrongType(doc[key], b);
      return { doc: { ...doc, [key]: v }, what: `wrong type at ${key}` };
    }
    case 4: {
      // A dangling reference: an edge, a start, a table or a list that does not exist.
      const withEdge = runnable.filter(([n]) => n.type !== 'exception');
      if (b % 4 === 0 || withEdge.length === 0) return { doc: { ...doc, start: a % 2 ? 'nope-zz' : 'no\npe' }, what: 'dangling start' };
      if (b % 4 === 1) {
        const conv = nodes.find((n) => n.type === 'conversion');
        if (conv) {
          conv.table = 'no-such-table';
          return ofNodes('dangling table');
        }
      }
      if (b % 4 === 2) {
        nodes.push({ id: 'zz-filter', type: 'filter', when: { path: 'msg.payload', op: 'inList', value: a % 2 ? 'nolist' : 'no\nlist' } });
        return ofNodes('dangling list');
      }
      const [n, i] = withEdge[a % withEdge.length]!;
      nodes[i] = addEdge(n, a % 3 ? 'nope-zz' : 'nope\nzz');
      return ofNodes(`dangling edge from ${n.id}`);
    }
    case 5: {
      // A back edge: from a node to itself or to a node it is reachable from.
      const withEdge = runnable.filter(([n]) => n.type !== 'exception');
      if (withEdge.length === 0)
        return {
          doc: { ...doc, nodes: [...nodes, { id: 'loopy', type: 'filter', when: { path: 'msg.payload', op: 'exists' }, next: 'loopy' }] },
          what: 'added self loop',
          mentions: /cycle/,
        };
      const [n, i] = withEdge[a % withEdge.length]!;
      const ancestors = nodes.filter((m) => m.type !== 'catch' && m.type !== 'comment' && reaches(nodes, m.id, n.id));
      const to = ancestors[b % ancestors.length]!; // n reaches itself, so never empty
      nodes[i] = addEdge(n, to.id);
      return ofNodes(`back edge ${n.id} → ${to.id}`, /cycle/);
    }
    case 6: {
      if (nodes.length < 2) return { doc: { ...doc, nodes: [...nodes, { ...nodes[0]! }] }, what: 'duplicate node' };
      const i = a % nodes.length;
      let j = b % nodes.length;
      if (j === i) j = (j + 1) % nodes.length;
      nodes[j]!.id = nodes[i]!.id;
      return ofNodes(`duplicate id ${nodes[i]!.id}`);
    }
    case 7: {
      const bad = BAD_IDS[b % BAD_IDS.length]!;
      if (a % 2) return { doc: { ...doc, id: bad }, what: `bad scenario id ${JSON.stringify(bad)}` };
      at(a).id = bad;
      return ofNodes(`bad node id ${JSON.stringify(bad)}`);
    }
    case 8: {
      // A catch or comment node as the target of an edge (or the start).
      const targetKind = a % 2 ? 'catch' : 'comment';
      const added: Node = targetKind === 'catch' ? { id: 'zz-target', type: 'catch' } : { id: 'zz-target', type: 'comment', text: 't' };
      const withEdge = runnable.filter(([n]) => n.type !== 'exception');
      if (b % 3 === 0 || withEdge.length === 0) return { doc: { ...doc, start: 'zz-target', nodes: [...nodes, added] }, what: `start is a ${targetKind}` };
      const [n, i] = withEdge[b % withEdge.length]!;
      nodes[i] = addEdge(n, 'zz-target');
      nodes.push(added);
      return ofNodes(`edge into a ${targetKind}`);
    }
    case 9: {
      const key = ['extraField', 'bad\nkey', 'x: y', ''][(a >> 1) % 4]!;
      if (a % 2) return { doc: { ...doc, [key]: b }, what: `unknown top-level field ${JSON.stringify(key)}` };
      at(b)[key] = a;
      return ofNodes(`unknown node field ${JSON.stringify(key)}`);
    }
    default: {
      at(a).type = ['webhook', 'Function', '', 'loopy', 'toString', '__proto__'][b % 6]!;
      return ofNodes(`unknown node type ${at(a).type}`);
    }
  }
}

/** Whether `to` is reachable from `from` along edges (a node reaches itself). */
function reaches(nodes: Node[], from: string, to: string): boolean {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    const n = byId.get(id);
    if (n) stack.push(...edgesOf(n));
  }
  return false;
}

export const mutationArb: fc.Arbitrary<Mutation> = fc
  .record({ doc: scenarioArb({ maxNodes: 6 }), how: fc.nat(), a: fc.nat(), b: fc.nat() })
  .map(({ doc, how, a, b }) => mutate(doc, how, a, b));

/** Strings from characters that matter: separators, braces, `$`, control characters, newlines. */
const weirdString = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', 'z', '0', '-', '_', 'A', ' ', '.', ':', '$', '{', '}', '\n', '\r', '\t', '\u2028', 'é') }),
  fc.constantFrom('n0', 'msg.payload', '{{msg.payload}}', '{{ bad path }}', '__proto__', 'constructor', 'toString', 'function', 'loop'),
);
const weirdJson = fc.jsonValue({ stringUnit: fc.constantFrom('a', '\n', '.', '{', '}', ' ', '$') as fc.Arbitrary<string> });
const weirdValue = fc.oneof(weirdString, weirdJson, fc.dictionary(weirdString, weirdJson, { maxKeys: 3 }));
const nodeKeys = fc.constantFrom(
  'id',
  'type',
  'next',
  'code',
  'body',
  'over',
  'cases',
  'branches',
  'steps',
  'scope',
  'when',
  'table',
  'path',
  'to',
  'message',
  'default',
);

/** Documents shaped roughly like scenarios, with random values (and keys) in their fields. */
export const looseDocArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  weirdJson,
  fc.record(
    {
      id: weirdValue,
      start: weirdValue,
      trigger: fc.oneof(
        fc.record(
          { type: fc.oneof(weirdString, fc.constantFrom('cron', 'webhook', 'manual')), schedule: weirdString, timezone: weirdString, path: weirdString },
          { requiredKeys: ['type'] },
        ),
        weirdValue,
      ),
      nodes: fc.oneof(
        fc.array(fc.oneof(fc.dictionary(nodeKeys, weirdValue), fc.dictionary(fc.oneof(nodeKeys, weirdString), weirdValue), weirdValue), { maxLength: 4 }),
        weirdValue,
      ),
      tables: weirdValue,
      lists: weirdValue,
      variables: weirdValue,
      connections: weirdValue,
      maxActionsPerRun: weirdValue,
      extra: weirdValue,
    },
    { requiredKeys: [] },
  ),
);
