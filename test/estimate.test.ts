import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../cli/errors.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { DEFAULT_ITEMS, estimateScenario } from '../scenario/estimate.js';
import type { Scenario } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { type CliRun, runCli } from './helpers/cli.js';

type Doc = Record<string, unknown>;
const scn = (start: string, nodes: Doc[], extra: Doc = {}): Scenario => {
  const v = validateScenario({ id: 'est', trigger: { type: 'manual' }, tables: { t: {} }, start, nodes, ...extra });
  if (!v.scenario) throw new Error(v.problems.join('\n'));
  return v.scenario;
};
const nx = (next?: string) => (next ? { next } : {});
/** A node that cannot fail. */
const conv = (id: string, next?: string) => ({ id, type: 'conversion', table: 't', path: 'msg.payload.k', ...nx(next) });
const filter = (id: string, next?: string) => ({ id, type: 'filter', when: { path: 'msg.payload.pass', op: 'eq', value: true }, ...nx(next) });
const fn = (id: string, code: string, next?: string) => ({ id, type: 'function', code, ...nx(next) });
const exc = (id: string) => ({ id, type: 'exception', message: 'no' });
const catcher = (id: string, next?: string, scope?: string[]) => ({ id, type: 'catch', ...nx(next), ...(scope && { scope }) });
const loop = (id: string, body: string, next?: string, extra: Doc = {}) => ({ id, type: 'loop', over: 'msg.payload.items', body, ...nx(next), ...extra });
const when = (path: string) => ({ path: `msg.payload.${path}`, op: 'exists' });
const sw = (id: string, cases: string[], mode: 'first' | 'all', dflt?: string) => ({
  id,
  type: 'switch',
  mode,
  cases: cases.map((next, i) => ({ when: when(`c${i}`), next })),
  ...(dflt && { default: dflt }),
});
const range = (s: Scenario, items?: number) => estimateScenario(s, { items }).perRun;

describe('estimateScenario: hand-computed', () => {
  it('function then mail: none or one message', () => {
    const e = estimateScenario(scn('f', [fn('f', 'return msg;', 'm'), { id: 'm', type: 'mail', to: 'a@b.c' }]));
    expect(e.perRun).toEqual({ min: 2, max: 3 });
    expect(e.minPath.join()).toContain('function `f` returns no message');
    expect(e.maxPath.join()).toContain('function `f` returns one message');
    expect(e.assumptions.join()).toMatch(/Function .*no message or one message/);
  });

  it('switch first: min/max over cases and default; no match ends the path', () => {
    const nodes = [conv('c1', 'c2'), conv('c2'), conv('c3'), conv('d')];
    expect(range(scn('s', [sw('s', ['c1', 'c3'], 'first'), ...nodes]))).toEqual({ min: 2, max: 4 });
    const e = estimateScenario(scn('s', [sw('s', ['c1', 'c3'], 'first', 'd'), ...nodes]));
    expect(e.perRun).toEqual({ min: 3, max: 4 });
    expect(e.maxPath).toEqual(['switch `s`: case 1 → `c1`']);
  });

  it('switch all: max is every case together (or the default)', () => {
    const nodes = [conv('c1', 'c2'), conv('c2'), conv('c3'), conv('d')];
    expect(range(scn('s', [sw('s', ['c1', 'c3'], 'all', 'd'), ...nodes]))).toEqual({ min: 3, max: 5 });
    const e = estimateScenario(scn('s', [sw('s', ['c1', 'c3'], 'all'), ...nodes]));
    expect(e.perRun).toEqual({ min: 2, max: 5 });
    expect(e.maxPath).toContain('switch `s`: every case matches');
  });

  it('filter: drop or pass', () => {
    expect(range(scn('f', [filter('f', 'c'), conv('c')]))).toEqual({ min: 2, max: 3 });
    expect(range(scn('f', [filter('f')]))).toEqual({ min: 2, max: 2 });
  });

  it('loop: 1 + N × (1 + body), then next; a loop may fail', () => {
    const nodes = [loop('l', 'f', 'c2'), filter('f', 'c1'), conv('c1'), conv('c2')];
    const e = estimateScenario(scn('l', nodes), { items: 3 });
    expect(e.succeeded).toEqual({ min: 9, max: 12 });
    expect(e.perRun).toEqual({ min: 2, max: 12 }); // the loop fails (not an array), uncaught
    expect(e.maxPath).toContain('loop `l`: 3 items');
    expect(estimateScenario(scn('l', nodes)).succeeded).toEqual({ min: 1 + 1 + DEFAULT_ITEMS * 2 + 1, max: 1 + 1 + DEFAULT_ITEMS * 3 + 1 });
    expect(estimateScenario(scn('l', nodes), { items: 0 }).succeeded).toEqual({ min: 3, max: 3 });
    // a caught loop failure: 1 + loop + catch + c3
    expect(range(scn('l', [...nodes, catcher('k', 'c3'), conv('c3')]), 3)).toEqual({ min: 4, max: 12 });
    // more items than maxItems: taken at maxItems, with a warning naming the loop
    const big = estimateScenario(scn('l', [loop('l', 'c1', undefined, { maxItems: 2 }), conv('c1')]), { items: 3 });
    expect(big.perRun).toEqual({ min: 2, max: 1 + 1 + 2 * 2 });
    expect(big.warnings).toEqual(['loop `l` takes at most 2 items (maxItems; more fail with LOOP_TOO_LARGE): counted at 2, not 3']);
    expect(estimateScenario(scn('l', nodes), { items: 3 }).warnings).toEqual([]);
  });

  it('fan-out sums its branches; sequencer sums its steps then next', () => {
    expect(range(scn('o', [{ id: 'o', type: 'fanOut', branches: ['c1', 'f'] }, conv('c1', 'c2'), conv('c2'), filter('f', 'c3'), conv('c3')]))).toEqual({
      min: 5,
      max: 6,
    });
    expect(range(scn('q', [{ id: 'q', type: 'sequencer', steps: ['f', 'c2'], next: 'c3' }, filter('f', 'c1'), conv('c1'), conv('c2'), conv('c3')]))).toEqual({
      min: 5,
      max: 6,
    });
  });

  it('catches: scoped wins over catch-all; never on its own path', () => {
    const tail = [conv('c1'), catcher('k2', 'c2'), conv('c2', 'c3'), conv('c3')];
    expect(range(scn('e1', [exc('e1'), catcher('k1', 'c1', ['e1']), ...tail]))).toEqual({ min: 4, max: 4 });
    expect(range(scn('e1', [exc('e1'), catcher('k1', 'c1', ['c3']), ...tail]))).toEqual({ min: 5, max: 5 });
    const own = estimateScenario(scn('e1', [exc('e1'), catcher('k2', 'e2'), exc('e2')]));
    expect(own.perRun).toEqual({ min: 4, max: 4 });
    expect(own.succeeded).toBeNull();
    expect(own.minPath).toEqual(['exception `e1` fails → catch `k2`', 'exception `e2` fails, uncaught: the run ends']);
  });

  it('exception uncaught, comment not counted', () => {
    expect(estimateScenario(scn('e', [exc('e')]))).toMatchObject({ perRun: { min: 2, max: 2 }, succeeded: null });
    expect(range(scn('c', [conv('c'), { id: 'note', type: 'comment', text: 'hi' }]))).toEqual({ min: 2, max: 2 });
  });

  it('a connector may divert to its catch path, for the min or the max', () => {
    const x = { id: 'x', type: 'connector', url: 'http://x.example', next: 'c1' };
    const e = estimateScenario(scn('x', [x, conv('c1', 'c2'), conv('c2'), catcher('k')]));
    expect(e.perRun).toEqual({ min: 3, max: 4 });
    expect(e.minPath).toEqual(['connector `x` fails → catch `k`']);
    const long = estimateScenario(scn('x', [x, conv('c1', 'c2'), conv('c2'), catcher('k', 'c3'), conv('c3', 'c4'), conv('c4', 'c5'), conv('c5')]));
    expect(long.perRun).toEqual({ min: 4, max: 6 });
    expect(long.maxPath).toEqual(['connector `x` fails → catch `k`']);
  });

  it('maxActionsPerRun caps the estimate', () => {
    const s = scn('l', [loop('l', 'c1'), conv('c1')], { maxActionsPerRun: 15 });
    expect(range(s)).toEqual({ min: 2, max: 15 });
  });

  it('is memoised: 40 nested diamonds are estimated at once', () => {
    const nodes: Doc[] = [conv('end')];
    for (let i = 0; i < 40; i++) {
      const to = i === 39 ? 'end' : `o${i + 1}`;
      nodes.push({ id: `o${i}`, type: 'fanOut', branches: [`a${i}`, `b${i}`] }, conv(`a${i}`, to), conv(`b${i}`, to));
    }
    let c = 1;
    for (let i = 0; i < 40; i++) c = 1 + 2 * (1 + c);
    expect(range(scn('o0', nodes))).toEqual({ min: 1 + c, max: 1 + c });
  });
});

describe('estimateScenario: cron', () => {
  const cron = (schedule: string, timezone = 'UTC') => scn('c', [conv('c')], { trigger: { type: 'cron', schedule, timezone } });
  const now = new Date('2026-01-15T12:00:00Z');
  it('counts the firings of a calendar month (default: the one holding now, in the timezone)', () => {
    expect(estimateScenario(cron('0 * * * *'), { month: '2026-02' }).perMonth).toMatchObject({
      firings: 24 * 28,
      min: 24 * 28 * 2,
      max: 24 * 28 * 2,
      month: '2026-02',
      capped: false,
    });
    expect(estimateScenario(cron('*/5 * * * *'), { month: '2026-02' }).perMonth).toMatchObject({ firings: 12 * 24 * 28, month: '2026-02' });
    expect(estimateScenario(cron('0 * * * *'), { now }).perMonth).toMatchObject({ firings: 24 * 31, month: '2026-01' });
    // 2026-01-31T23:30Z is already February in Oslo.
    expect(estimateScenario(cron('0 12 * * *', 'Europe/Oslo'), { now: new Date('2026-01-31T23:30:00Z') }).perMonth).toMatchObject({
      firings: 28,
      month: '2026-02',
    });
    // March 2026 in Oslo loses an hour to summer time.
    expect(estimateScenario(cron('0 * * * *', 'Europe/Oslo'), { month: '2026-03' }).perMonth?.firings).toBe(24 * 31 - 1);
    expect(estimateScenario(scn('c', [conv('c')])).perMonth).toBeUndefined();
  });
  it('counts DST months as the scheduler fires them', () => {
    const ny = (schedule: string, month: string) => estimateScenario(cron(schedule, 'America/New_York'), { month }).perMonth!.firings;
    // 14 March 2027: 02:00-02:59 does not exist; the four 2:xx times fire once, at 03:00.
    expect(ny('*/15 2 * * *', '2027-03')).toBe(31 * 4 - 3);
    // 7 November 2027: 01:30 happens twice and fires at the first only.
    expect(ny('30 1 * * *', '2027-11')).toBe(30);
    // A month without a change: 30 days of 4 firings.
    expect(ny('*/15 2 * * *', '2027-06')).toBe(30 * 4);
  });
  it('refuses a month that is not YYYY-MM', () => {
    expect(() => estimateScenario(cron('0 * * * *'), { month: '2026-13' })).toThrow('month must be YYYY-MM, got "2026-13"');
  });
  it('extrapolates very frequent schedules', () => {
    const m = estimateScenario(cron('* * * * * *'), { month: '2026-02' }).perMonth!;
    expect(m.capped).toBe(true);
    expect(Math.abs(m.firings - 86_400 * 28)).toBeLessThan(86_400 * 28 * 0.001);
  });
});

/** Real runs: actions within the estimate at the loop sizes the run met. */
async function realRun(engine: Embedded, s: Scenario, payload: unknown): Promise<{ actions: number; min: number; max: number }> {
  const run = await engine.run(s, payload);
  expect(['succeeded', 'failed']).toContain(run.status);
  const sizes = run.tasks.filter((t) => t.type === 'loop' && t.iteration === undefined && t.status === 'ok').map((t) => (t.output as { items: number }).items);
  const lo = sizes.length ? Math.min(...sizes) : DEFAULT_ITEMS;
  const hi = sizes.length ? Math.max(...sizes) : DEFAULT_ITEMS;
  let min = Infinity;
  let max = -Infinity;
  for (let n = lo; n <= hi; n++) {
    const e = estimateScenario(s, { items: n }).perRun;
    min = Math.min(min, e.min);
    max = Math.max(max, e.max);
  }
  expect(run.actions, `${s.id} ${JSON.stringify(payload)}: ${run.actions} not in [${min}, ${max}]`).toBeGreaterThanOrEqual(min);
  expect(run.actions, `${s.id} ${JSON.stringify(payload)}: ${run.actions} not in [${min}, ${max}]`).toBeLessThanOrEqual(max);
  return { actions: run.actions, min, max };
}

async function withEngine(f: (e: Embedded) => Promise<void>, services: Parameters<typeof createEmbedded>[0] = {}): Promise<void> {
  const engine = createEmbedded({ env: {}, ...services });
  await engine.ledger.setQuota('default', { monthlyActions: 1_000_000 });
  try {
    await f(engine);
  } finally {
    await engine.close();
  }
}

const maybe = fn('fn1', 'if (msg.payload.boom) throw new Error("boom"); return msg.payload.ret ? msg : null;', 'm1');
/** Loop-free: every choice reachable by a payload. */
const routing = scn('sw', [
  {
    id: 'sw',
    type: 'switch',
    cases: [
      { when: { path: 'msg.payload.kind', op: 'eq', value: 'a' }, next: 'fa' },
      { when: { path: 'msg.payload.kind', op: 'eq', value: 'b' }, next: 'fo' },
    ],
    default: 'ex',
  },
  filter('fa', 'cv1'),
  conv('cv1', 'fn1'),
  maybe,
  { id: 'm1', type: 'mail', to: '{{msg.payload.to}}' },
  { id: 'fo', type: 'fanOut', branches: ['cv2', 'sq'] },
  conv('cv2'),
  { id: 'sq', type: 'sequencer', steps: ['cv3', 'cv4'], next: 'cv5' },
  conv('cv3'),
  conv('cv4'),
  conv('cv5'),
  exc('ex'),
  catcher('k', 'cv6'),
  conv('cv6'),
]);
/** Loop-free, switch in all mode, an uncaught failure. */
const allMode = scn('sw', [
  sw('sw', ['c1', 'f'], 'all', 'c3'),
  conv('c1', 'c2'),
  conv('c2'),
  fn('f', 'if (msg.payload.boom) throw new Error("boom"); return msg;'),
  conv('c3'),
]);
/** Loops, nested, with a scoped catch in the body. */
const loops = scn('outer', [
  { id: 'outer', type: 'loop', over: 'msg.payload.groups', body: 'inner', next: 'after' },
  loop('inner', 'fl', 'cv1'),
  filter('fl', 'fb'),
  fn('fb', 'if (msg.payload.boom) throw new Error("x"); return msg.payload.ret ? msg : null;', 'cv2'),
  conv('cv1'),
  conv('cv2'),
  conv('after'),
  catcher('k', 'cv3', ['fb']),
  conv('cv3'),
]);

describe('estimates against real runs (no connectors)', () => {
  it('loop-free scenarios: every run inside, and the bounds reached', async () => {
    await withEngine(async (engine) => {
      const cases: Array<[Scenario, unknown[]]> = [
        [
          routing,
          [
            { kind: 'a', pass: false },
            { kind: 'a', pass: true },
            { kind: 'a', pass: true, ret: true, to: 'x@y.z' },
            { kind: 'a', pass: true, ret: true, to: '' },
            { kind: 'a', pass: true, boom: true },
            { kind: 'b' },
            { kind: 'z' },
            null,
          ],
        ],
        [allMode, [{}, { c0: 1 }, { c1: 1 }, { c0: 1, c1: 1 }, { c0: 1, c1: 1, boom: true }, { c1: 1, boom: true }]],
      ];
      for (const [s, payloads] of cases) {
        const seen = [];
        for (const p of payloads) seen.push(await realRun(engine, s, p));
        const est = estimateScenario(s, {}).perRun;
        expect(Math.min(...seen.map((r) => r.actions)), 'min reached').toBe(est.min);
        expect(Math.max(...seen.map((r) => r.actions)), 'max reached').toBe(est.max);
      }
    });
  });

  it('loops: every run inside the estimate at its loop sizes', async () => {
    await withEngine(async (engine) => {
      const item = (pass: boolean, ret: boolean, boom = false) => ({ pass, ret, boom });
      const payloads = [
        { groups: [] },
        { groups: [{ items: [] }] },
        { groups: 'nope' },
        { groups: [{ items: 5 }] },
        { groups: [{ items: [item(true, true), item(false, false)] }, { items: [item(true, false)] }] },
        { groups: [{ items: [item(true, true, true), item(true, true)] }, { items: [item(true, true), item(true, true), item(true, true)] }] },
        { groups: Array.from({ length: 4 }, () => ({ items: Array.from({ length: 4 }, () => item(true, true)) })) },
      ];
      for (const p of payloads) await realRun(engine, loops, p);
    });
  });
});

describe('estimates against real runs of examples/*.json', () => {
  const dir = join(import.meta.dirname, '..', 'examples');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.input.json')) : [];
  it.skipIf(files.length === 0)('every example run falls inside its estimate (HTTP stubbed: echo, empty, 500)', async () => {
    for (const f of files) {
      const v = validateScenario(JSON.parse(readFileSync(join(dir, f), 'utf8')));
      expect(v.problems, f).toEqual([]);
      const s = v.scenario!;
      const inputFile = join(dir, f.replace(/\.json$/, '.input.json'));
      const payloads: unknown[] = [null, {}];
      if (existsSync(inputFile)) payloads.push(JSON.parse(readFileSync(inputFile, 'utf8')));
      if (s.trigger.type === 'cron' && s.trigger.input !== undefined) payloads.push(s.trigger.input);
      for (const mode of ['echo', 'empty', 'fail'] as const) {
        const fetch = (async (_url: string, init?: RequestInit) => {
          if (mode === 'fail') return new Response('no', { status: 500 });
          const body = mode === 'echo' && typeof init?.body === 'string' ? init.body : '{}';
          return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
        }) as typeof globalThis.fetch;
        const env = new Proxy({}, { get: (_t, name) => (String(name).startsWith('FLOWMETER_') ? undefined : 'http://stub.example') });
        await withEngine(
          async (engine) => {
            for (const p of payloads) await realRun(engine, s, p);
          },
          { env, services: { fetch, sleep: async () => undefined, mail: { send: async () => null } } },
        );
      }
    }
  });
});

describe('flowmeter estimate', () => {
  const cli = (...args: string[]): Promise<CliRun> => runCli(args);
  const file = join(mkdtempSync(join(tmpdir(), 'fm-est-')), 'cron.json');
  writeFileSync(file, JSON.stringify({ id: 'c', trigger: { type: 'cron', schedule: '0 * * * *' }, start: 'l', nodes: [loop('l', 'f'), filter('f')] }));

  it('--json prints perRun and perMonth', async () => {
    const doc = JSON.parse((await cli('estimate', file, '--items', '2', '--json')).stdout);
    expect(doc.perRun).toEqual({ min: 2, max: 6 });
    expect(doc.perMonth.firings).toBeGreaterThanOrEqual(24 * 28);
    expect(doc.perMonth.max).toBe(doc.perMonth.firings * 6);
  });
  it('explains each figure', async () => {
    const out = (await cli('estimate', file)).stdout;
    expect(out).toMatch(/2 to 22 actions per run/);
    expect(out).toMatch(/fewest, 2: loop `l` fails, uncaught/);
    expect(out).toMatch(/most, 22: loop `l`: 10 items/);
    expect(out).toMatch(/per month: .* firings of "0 \* \* \* \*"/);
    expect(out).toMatch(/loops are taken at 10 items/);
  });
  it('rejects a bad --items', async () => {
    // A CliError: one line, exit 2, nothing printed.
    const r = await cli('estimate', file, '--items', 'x');
    expect(r).toEqual({ code: EXIT.invalid, stdout: '', stderr: 'flowmeter: --items must be a whole number, got "x"\n' });
  });
  it('--month picks the month counted; a bad one is refused in one line, exit 2', async () => {
    const doc = JSON.parse((await cli('estimate', file, '--month', '2027-02', '--json')).stdout);
    expect(doc.perMonth).toMatchObject({ firings: 24 * 28, month: '2027-02', timezone: 'UTC' });
    for (const bad of ['2027-2', '2027-00', 'march']) {
      const r = await cli('estimate', file, '--month', bad);
      expect(r).toEqual({ code: EXIT.invalid, stdout: '', stderr: `flowmeter: --month must be YYYY-MM, got ${JSON.stringify(bad)}\n` });
    }
  });
});
