/**
 * The operator dashboard (`GET /`), driven in headless Chromium against a real server on an
 * embedded platform: usage numbers, the daily chart, the projection warning, the scenario and
 * run tables, live updates over SSE, the run page with its task log and context viewer, the
 * scenario's variables, and a refused key.
 */

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { periodAt } from '../metering/periods.js';
import { parsePlan } from '../metering/plan.js';
import type { UsageReport } from '../metering/quota.js';
import { type ServedDashboard, serveDashboard } from './helpers/dashboard-browser.js';
import { fn, scenarioOf } from './helpers/run.js';

const ADMIN_KEY = 'admin-key-for-dashboard-tests';
const DAY = 86_400_000;

const SCENARIOS = {
  ping: scenarioOf({ id: 'ping', name: 'Ping <b>bold</b>', start: 'echo', nodes: [fn('echo', 'return { payload: { pong: msg.payload } };')] }),
  counter: scenarioOf({
    id: 'counter',
    name: 'Counter',
    variables: { count: 0, label: '<img src=x onerror=alert(1)>' },
    start: 'bump',
    nodes: [
      fn('bump', "setVar('count', vars.count + 1); setVar('last', msg.payload); log('count is now ' + vars.count); return { payload: { count: vars.count } };"),
    ],
  }),
  batch: scenarioOf({
    id: 'batch',
    name: 'Batch import',
    start: 'each',
    nodes: [
      { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'double', collect: true },
      fn('double', 'return { payload: { n: msg.payload * 2 } };'),
    ],
  }),
  big: scenarioOf({ id: 'big', name: 'Big output', start: 'blob', nodes: [fn('blob', "return { payload: { blob: 'x'.repeat(6000) } };")] }),
};

let platform: Embedded;
let served: ServedDashboard | undefined;
let base: string;
let browser: Browser;
let clock: Date | null = null;
let acmeKey: string;
const runs: Record<string, RunRecord> = {};
const pageErrors: string[] = [];

/** Triggers a run (with the clock at `at`) and waits for it to end. */
async function run(tenant: string, id: keyof typeof SCENARIOS, payload: unknown, at: Date | null = null): Promise<RunRecord> {
  clock = at;
  try {
    const { runId } = await platform.trigger(tenant, id, payload, { type: 'manual' });
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) {
      const r = await platform.runs.get(tenant, runId);
      if (r && ['succeeded', 'failed', 'halted', 'rejected'].includes(r.status)) return r;
    }
    throw new Error(`run ${runId} did not end`);
  } finally {
    clock = null;
  }
}

async function usage(tenant: string, key: string, admin = false): Promise<UsageReport> {
  const res = await fetch(`${base}/api/usage${admin ? `?tenant=${tenant}` : ''}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as UsageReport;
}

async function open(ctx: BrowserContext, hash: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
  await page.goto(`${base}/${hash}`);
  return page;
}

const fmt = (n: number) => n.toLocaleString('en-US');

beforeAll(async () => {
  platform = createEmbedded({ now: () => clock ?? new Date(), taskBytes: 2048 });
  for (const t of ['acme', 'calm']) for (const s of Object.values(SCENARIOS)) await platform.scenarios.deploy(t, s);
  await platform.scenarios.enable('acme', 'ping', undefined);

  // acme: 30 actions, halting, spread over the last few days of this period.
  await platform.ledger.setQuota('acme', { monthlyActions: 30, overage: 'halt', resumeHalted: 'manual' });
  const now = Date.now();
  const start = Date.parse(periodAt(new Date(now), 'UTC').start);
  const daysAgo = (k: number) => new Date(Math.max(start + 60_000, now - k * DAY));
  runs.ping1 = await run('acme', 'ping', 1, daysAgo(3));
  runs.ping2 = await run('acme', 'ping', 2, daysAgo(3));
  runs.counter1 = await run('acme', 'counter', 'a', daysAgo(2));
  runs.counter2 = await run('acme', 'counter', 'b', daysAgo(2));
  runs.big = await run('acme', 'big', null, daysAgo(1));
  runs.ping3 = await run('acme', 'ping', 3, daysAgo(1));
  runs.batch = await run('acme', 'batch', { items: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }); // needs 22, 18 left: halts
  expect(runs.batch.status).toBe('halted');
  // Then overage is allowed: two more runs go past the limit.
  await platform.ledger.setQuota('acme', { overage: 'allow' });
  runs.ping4 = await run('acme', 'ping', 4);
  runs.ping5 = await run('acme', 'ping', 5);

  // calm: a large quota, a little use.
  await platform.ledger.setQuota('calm', { monthlyActions: 100_000 });
  for (let i = 0; i < 3; i++) await run('calm', 'ping', i);

  await platform.ledger.setPlan('acme', parsePlan({ name: 'Starter', currency: 'EUR', basePrice: 9.5, includedActions: 30, overagePrice: 0.25 }));
  acmeKey = await platform.keys.create('acme');
  served = await serveDashboard(platform, { adminKey: ADMIN_KEY });
  ({ base, browser } = served);
});

afterAll(async () => {
  await (served ? served.close() : platform?.close());
});

describe('dashboard', () => {
  it('serves the page and its modules with a strict content security policy', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    for (const f of ['app.js', 'app.css', 'chart.js']) expect((await fetch(`${base}/dashboard/${f}`)).status).toBe(200);
    expect((await fetch(`${base}/dashboard/..%2Fdashboard.ts`)).status).toBe(404);
    expect((await fetch(`${base}/dashboard/nope.js`)).status).toBe(404);
  });

  it('shows usage, chart, projection warning, scenarios and runs of a tenant key', async () => {
    const report = await usage('acme', acmeKey);
    expect(report.used).toBe(34);
    expect(report.overage).toBe(4);
    expect(report.projection?.willExceed).toBe(true);

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await open(ctx, `#key=${encodeURIComponent(acmeKey)}`);
    await page.waitForSelector('#used');
    // The key left the URL for sessionStorage.
    expect(await page.evaluate(() => location.hash)).toBe('#/');
    expect(await page.evaluate(() => sessionStorage.getItem('flowmeter.key'))).toBe(acmeKey);
    expect(await page.textContent('#tenant-name')).toBe('acme');

    // Numbers equal the usage report.
    expect(await page.textContent('#used')).toBe(fmt(report.used));
    expect(await page.textContent('#entitlement')).toBe(fmt(report.limit + report.addOns));
    expect(await page.textContent('#limit')).toBe(fmt(report.limit));
    expect(await page.textContent('[data-stat=remaining] .stat-value')).toBe(fmt(report.remaining));
    expect(await page.textContent('[data-stat=overage] .stat-value')).toBe(fmt(report.overage));
    expect(await page.textContent('[data-stat=nonBillable] .stat-value')).toBe(fmt(report.nonBillable));
    expect(await page.textContent('[data-stat=runs] .stat-value')).toBe(fmt(report.meters.runs));
    expect(await page.locator('#alerts li').count()).toBe(report.alerts.length);

    // One bar per day with actions, the limit line, the overage in its own colour.
    const bars = await page.$$eval('g.day-bar', (gs) =>
      gs.map((g) => ({ date: (g as SVGElement).dataset.date, actions: Number((g as SVGElement).dataset.actions) })),
    );
    expect(bars).toEqual(report.byDay.filter((d) => d.actions > 0));
    expect(await page.locator('.limit-line').count()).toBe(1);
    expect(await page.getAttribute('g.limit', 'data-limit')).toBe(String(report.limit + report.addOns));
    const over = await page.$$eval('g.day-bar', (gs) => gs.reduce((a, g) => a + Number((g as SVGElement).dataset.over), 0));
    expect(over).toBe(report.overage);
    expect(await page.locator('rect.bar-over').count()).toBeGreaterThan(0);
    expect(await page.getAttribute('.cum-line', 'data-total')).toBe(String(report.used));

    // Projected past the limit: a clear warning.
    const warning = page.locator('#projection');
    expect(await warning.getAttribute('data-will-exceed')).toBe('true');
    const text = (await warning.textContent()) ?? '';
    // The projection moves while the page loads (early in a period, by about one action a second):
    // the page's lies between the report's before and after it.
    const later = (await usage('acme', acmeKey)).projection!.projectedUsed;
    const shown = Number(/you will use ([\d,]+) actions by/.exec(text)?.[1]?.replace(/,/g, '') ?? Number.NaN);
    expect(shown).toBeGreaterThanOrEqual(Math.min(report.projection!.projectedUsed, later));
    expect(shown).toBeLessThanOrEqual(Math.max(report.projection!.projectedUsed, later));
    expect(text).toContain(`more than your limit of ${fmt(report.limit + report.addOns)}`);

    // Scenarios: most runs first, joined with names (as text, not markup).
    const rows = await page.$$eval('#scenarios tbody tr', (trs) =>
      trs.map((tr) => ({ id: (tr as HTMLElement).dataset.scenarioId, runs: Number((tr as HTMLElement).dataset.runs) })),
    );
    expect(rows.slice(0, report.byScenario.length)).toEqual(report.byScenario.map((s) => ({ id: s.scenarioId, runs: s.runs })));
    expect(rows.map((r) => r.runs)).toEqual([...rows.map((r) => r.runs)].sort((a, b) => b - a));
    expect(rows[0]!.id).toBe('ping');
    expect(await page.textContent('#scenarios tr[data-scenario-id=ping] .name')).toBe('Ping <b>bold</b>');
    expect(await page.locator('#scenarios b').count()).toBe(0);

    // Recent runs: every run with its status.
    const listed = await page.$$eval('#runs-table tbody tr', (trs) =>
      Object.fromEntries(trs.map((tr) => [(tr as HTMLElement).dataset.runId, (tr as HTMLElement).dataset.status])),
    );
    for (const r of Object.values(runs).filter((r) => r.tenant === 'acme')) expect(listed[r.runId], r.runId).toBe(r.status);
    expect(await page.textContent(`#runs-table tr[data-run-id="${runs.batch.runId}"] .status`)).toBe('halted');

    await page.screenshot({ path: '/tmp/dashboard.png', fullPage: true });
    await ctx.close();
  });

  it('shows the invoice with its lines and 12 monthly bars with the entitlement line', async () => {
    const report = await usage('acme', acmeKey);
    const res = await fetch(`${base}/api/invoice`, { headers: { authorization: `Bearer ${acmeKey}` } });
    const invoice = (await res.json()) as { lines: Array<{ kind: string; amount: number }>; total: number };
    // 34 used, 30 included: 4 overage actions at 0.25.
    expect(invoice.lines).toEqual([expect.objectContaining({ kind: 'base', amount: 9.5 }), expect.objectContaining({ kind: 'overage', amount: 1 })]);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 1600 } });
    const page = await open(ctx, `#key=${encodeURIComponent(acmeKey)}`);
    await page.waitForSelector('#invoice-lines');
    const lines = await page.$$eval('#invoice-lines tbody tr', (trs) =>
      trs.map((tr) => ({ kind: (tr as HTMLElement).dataset.kind, amount: Number((tr as HTMLElement).dataset.amount) })),
    );
    expect(lines).toEqual(invoice.lines.map((l) => ({ kind: l.kind, amount: l.amount })));
    expect(await page.textContent('#invoice-total')).toBe('€10.50');
    const months = await page.$$eval('#history-chart g.month-bar', (gs) =>
      gs.map((g) => ({
        period: (g as SVGElement).dataset.period,
        used: Number((g as SVGElement).dataset.used),
        entitlement: Number((g as SVGElement).dataset.entitlement),
      })),
    );
    expect(months).toHaveLength(12);
    expect(months.at(-1)).toEqual({ period: report.period.key, used: report.used, entitlement: report.limit + report.addOns });
    expect(months.map((m) => m.period)).toEqual([...months.map((m) => m.period)].sort());
    expect(await page.locator('#history-chart .entitlement-line').count()).toBe(1);
    expect(await page.locator('#history-chart rect.bar-over').count()).toBe(1);
    await ctx.close();
  });

  it('shows a run: header, tasks, the context viewer, truncation and variables', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await open(ctx, `#key=${encodeURIComponent(acmeKey)}`);
    await page.waitForSelector('#runs-table');

    // Navigate from the runs table to the halted batch run.
    await page.click(`#runs-table a[href="#/runs/${runs.batch.runId}"]`);
    await page.waitForSelector('#run-header');
    const batch = runs.batch;
    expect(await page.getAttribute('#run-header', 'data-status')).toBe('halted');
    expect(await page.textContent('#run-actions')).toBe(String(batch.actions));
    expect(await page.textContent('#run-error')).toContain('QUOTA_EXHAUSTED');
    expect(await page.locator('tr.task').count()).toBe(batch.tasks.length);
    expect(await page.locator('tr.task .iter').count()).toBe(batch.tasks.filter((t) => typeof t.iteration === 'number').length);

    // Opening a task shows its input and output as pretty JSON.
    const t = batch.tasks.find((x) => x.nodeId === 'double')!;
    await page.click(`tr.task[data-seq="${t.seq}"]`);
    const detail = page.locator(`tr[data-detail-for="${t.seq}"]`);
    await detail.waitFor({ state: 'visible' });
    expect(await detail.locator('[data-part=input] pre').textContent()).toBe(JSON.stringify(t.input, null, 2));
    expect(await detail.locator('[data-part=output] pre').textContent()).toBe(JSON.stringify(t.output, null, 2));
    await page.click(`tr.task[data-seq="${t.seq}"]`);
    await detail.waitFor({ state: 'hidden' });

    // A truncated output says so.
    await page.goto(`${base}/#/runs/${runs.big.runId}`);
    await page.waitForSelector('#run-header');
    const blob = runs.big.tasks.find((x) => x.nodeId === 'blob')!;
    expect((blob.output as { $truncated?: boolean }).$truncated).toBe(true);
    await page.click(`tr.task[data-seq="${blob.seq}"]`);
    const trunc = page.locator(`tr[data-detail-for="${blob.seq}"] [data-part=output] .truncated`);
    await trunc.waitFor({ state: 'visible' });
    expect(await trunc.textContent()).toContain('Truncated in the task log');
    expect(await page.locator('#outputs pre').first().textContent()).toContain('x'.repeat(6000)); // outputs are whole

    // The counter's variables, as text.
    await page.goto(`${base}/#/runs/${runs.counter2.runId}`);
    await page.waitForSelector('#vars table');
    const vars = (await (await fetch(`${base}/api/scenarios/counter`, { headers: { authorization: `Bearer ${acmeKey}` } })).json()) as {
      vars: Record<string, unknown>;
    };
    expect(vars.vars.count).toBe(2);
    expect(await page.textContent('#vars tr[data-var=count] pre')).toBe('2');
    expect(await page.textContent('#vars tr[data-var=last] pre')).toBe('"b"');
    expect(await page.textContent('#vars tr[data-var=label] pre')).toBe(JSON.stringify('<img src=x onerror=alert(1)>'));
    expect(await page.locator('#vars img').count()).toBe(0);
    // The Function's log lines are in the task's detail.
    const bump = runs.counter2.tasks.find((x) => x.nodeId === 'bump')!;
    await page.click(`tr.task[data-seq="${bump.seq}"]`);
    expect(await page.textContent(`tr[data-detail-for="${bump.seq}"] .logs pre`)).toBe('count is now 2');
    await ctx.close();
  });

  it('with the admin key and a tenant: no warning on track, live runs appear without reload', async () => {
    const report = await usage('calm', ADMIN_KEY, true);
    expect(report.projection?.willExceed).toBe(false);

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await open(ctx, '');
    await page.waitForSelector('#login-form');
    await page.fill('#login-key', ADMIN_KEY);
    await page.fill('#login-tenant', 'calm');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#used');
    expect(await page.textContent('#tenant-name')).toBe('calm');
    expect(await page.textContent('#used')).toBe(fmt(report.used));
    expect(await page.textContent('#entitlement')).toBe(fmt(100_000));
    expect(await page.getAttribute('#projection', 'data-will-exceed')).toBe('false');
    expect(await page.textContent('#projection')).not.toContain('more than your limit');
    expect(await page.locator('#runs-table tbody tr').count()).toBe(3);
    await page.waitForSelector('#live[data-state=on]');

    // A run started now shows up, and the usage follows.
    const live = await run('calm', 'counter', 'live');
    await page.waitForSelector(`#runs-table tr[data-run-id="${live.runId}"][data-status=succeeded]`, { timeout: 5000 });
    await page.waitForFunction((n) => document.querySelector('#used')?.textContent === n, fmt(report.used + live.actions), { timeout: 5000 });
    expect(await page.locator('#runs-table tbody tr').count()).toBe(4);
    await ctx.close();
  });

  it('a wrong key shows an error, not a crash', async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx, '#key=fmk_wrong');
    const err = page.locator('#login-error');
    await err.waitFor({ state: 'visible' });
    expect(await err.textContent()).toContain('invalid API key');
    expect(await page.isVisible('#login-form')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('flowmeter.key'))).toBeNull();
    // The admin key without a tenant is sent back to the form too.
    await page.fill('#login-key', ADMIN_KEY);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => /tenant/.test(document.querySelector('#login-error')?.textContent ?? ''));
    await ctx.close();
    expect(pageErrors).toEqual([]);
  });
});
