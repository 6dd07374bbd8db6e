/**
 * The dashboard's actions, driven in headless Chromium against a real server on an embedded
 * platform: enable/disable, a test run with a JSON payload (bad JSON starts nothing), replay,
 * a refused resume with its numbers, each cron scenario's next firing, a run link opened in a
 * fresh browser (key prompt, then the run), the page marked complete at load, and the usage
 * chart's limit and projection tags apart.
 */
import { DateTime } from 'luxon';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { type ServedDashboard, serveDashboard } from './helpers/dashboard-browser.js';
import { fn, scenarioOf } from './helpers/run.js';

const ECHO = scenarioOf({ id: 'echo', name: 'Echo', start: 'a', nodes: [fn('a', 'return { payload: { got: msg.payload } };')] });
const NIGHTLY = scenarioOf({
  id: 'nightly',
  name: 'Nightly',
  trigger: { type: 'cron', schedule: '30 9 * * *', timezone: 'Asia/Kolkata' },
  start: 'a',
  nodes: [fn('a', 'return msg;')],
});
const THREE = scenarioOf({ id: 'three', start: 'a', nodes: [fn('a', 'return msg;', 'b'), fn('b', 'return msg;', 'c'), fn('c', 'return msg;')] });

let platform: Embedded;
let served: ServedDashboard | undefined;
let base: string;
let browser: Browser;
const keys: Record<string, string> = {};
const pageErrors: string[] = [];

async function call<T>(tenant: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${keys[tenant]}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as T };
}

/** A fresh browser context (its own sessionStorage), in New York time. */
async function context(): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'America/New_York' });
}

async function open(ctx: BrowserContext, hash: string, tenant?: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
  if (tenant) {
    await page.goto(`${base}/#key=${encodeURIComponent(keys[tenant]!)}`);
    await page.waitForSelector('body[data-ready=true]');
    if (hash !== '#/') await page.evaluate((h) => (location.hash = h), hash);
  } else await page.goto(`${base}/${hash}`);
  return page;
}

const runIdOf = (page: Page) => page.evaluate(() => /^#\/runs\/(.+)$/.exec(location.hash)?.[1] ?? null);

beforeAll(async () => {
  platform = createEmbedded();
  for (const s of [ECHO, NIGHTLY, { ...ECHO, id: 'old', name: 'Old' }]) await platform.scenarios.deploy('acme', s);
  await platform.scenarios.enable('acme', 'nightly', undefined);
  await platform.ledger.setQuota('acme', { monthlyActions: 100_000 });
  await platform.scenarios.deploy('tight', THREE);
  await platform.ledger.setQuota('tight', { monthlyActions: 2, overage: 'halt', resumeHalted: 'manual' });
  await platform.scenarios.deploy('near', ECHO);
  for (const t of ['acme', 'tight', 'near']) keys[t] = await platform.keys.create(t);
  served = await serveDashboard(platform);
  ({ base, browser } = served);
});

afterAll(async () => {
  await (served ? served.close() : platform?.close());
});

describe('dashboard actions', () => {
  it('is complete at load: data-ready on <body>, no loading placeholder left', async () => {
    const ctx = await context();
    const page = await open(ctx, '#/', 'acme');
    expect(await page.getAttribute('body', 'data-ready')).toBe('true');
    expect(await page.locator('.loading').count()).toBe(0);
    expect(await page.locator('#used').count()).toBe(1);
    expect(await page.locator('#scenarios tr[data-scenario-id=echo]').count()).toBe(1);
    await ctx.close();
  });

  it('enables and disables a scenario, and the API follows', async () => {
    const enabled = async () =>
      (await call<Array<{ id: string; enabled: boolean }>>('acme', 'GET', '/api/scenarios')).json.find((s) => s.id === 'echo')!.enabled;
    expect(await enabled()).toBe(false);
    const ctx = await context();
    const page = await open(ctx, '#/', 'acme');
    await page.click('#scenarios tr[data-scenario-id=echo] .toggle');
    await page.waitForSelector('#scenarios tr[data-scenario-id=echo][data-enabled=true]');
    expect(await enabled()).toBe(true);
    expect(await page.textContent('#scenarios tr[data-scenario-id=echo] .pill')).toBe('enabled');
    await page.click('#scenarios tr[data-scenario-id=echo] .toggle');
    await page.waitForSelector('#scenarios tr[data-scenario-id=echo][data-enabled=false]');
    expect(await enabled()).toBe(false);
    // Refused (nightly is the one active scenario allowed): the reason stays on the row.
    await platform.ledger.setQuota('acme', { maxActiveScenarios: 1 });
    try {
      await page.click('#scenarios tr[data-scenario-id=echo] .toggle');
      const status = page.locator('#scenarios tr[data-scenario-id=echo] .row-status.error-text');
      await status.waitFor({ state: 'visible' });
      expect(await status.textContent()).toContain('(MAX_ACTIVE_SCENARIOS)');
      expect(await enabled()).toBe(false);
    } finally {
      await platform.ledger.setQuota('acme', { maxActiveScenarios: 100 });
    }
    await ctx.close();
  });

  it('a bad JSON payload shows what is wrong and starts nothing; a good one opens the new test run with it', async () => {
    const before = (await call<unknown[]>('acme', 'GET', '/api/runs')).json.length;
    const ctx = await context();
    const page = await open(ctx, '#/', 'acme');
    await page.click('#scenarios tr[data-scenario-id=echo] .test-run');
    const form = page.locator('tr[data-form-for=echo] form');
    await form.locator('.payload-editor').fill('{"order": 42,');
    await form.locator('.start-test-run').click();
    const error = form.locator('.payload-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(/^The payload is not valid JSON: .+\. Nothing was started\.$/);
    await page.locator('#scenarios').screenshot({ path: '/tmp/dashboard-test-run-form.png' });
    expect(await page.evaluate(() => location.hash)).toBe('#/');
    expect((await call<unknown[]>('acme', 'GET', '/api/runs')).json.length).toBe(before);

    const payload = { order: 42, name: '<b>x</b>' };
    await form.locator('.payload-editor').fill(JSON.stringify(payload));
    await form.locator('.start-test-run').click();
    await page.waitForFunction(() => location.hash.startsWith('#/runs/'));
    const runId = (await runIdOf(page))!;
    await page.waitForSelector(`#run-header[data-run-id="${runId}"][data-status=succeeded]`);
    expect(await page.textContent('#payload pre')).toBe(JSON.stringify(payload, null, 2));
    const run = (await call<RunRecord>('acme', 'GET', `/api/runs/${runId}`)).json;
    expect(run.trigger).toMatchObject({ type: 'manual', test: true });
    expect(run.billable).toBe(false);
    expect(run.outputs).toEqual([{ payload: { got: payload } }]);
    expect((await call<unknown[]>('acme', 'GET', '/api/runs')).json.length).toBe(before + 1);
    await ctx.close();
  });

  it('replays a run: a new run with replayOf, and its page links back', async () => {
    const first = (await call<RunRecord>('acme', 'POST', '/api/scenarios/echo/trigger?wait=true', { payload: { n: 7 } })).json;
    const ctx = await context();
    const page = await open(ctx, `#/runs/${first.runId}`, 'acme');
    await page.waitForSelector(`#run-header[data-run-id="${first.runId}"]`);
    await page.click('#replay');
    await page
      .waitForFunction((id) => location.hash.startsWith('#/runs/') && !location.hash.endsWith(id), first.runId, { timeout: 5000 })
      .catch(async (err) => {
        throw new Error(`${err}: ${await page.textContent('#run-actions-bar')}`);
      });
    const replayId = (await runIdOf(page))!;
    await page.waitForSelector(`#run-header[data-run-id="${replayId}"][data-status=succeeded]`);
    const replay = (await call<RunRecord>('acme', 'GET', `/api/runs/${replayId}`)).json;
    expect(replay.replayOf).toBe(first.runId);
    expect(replay.outputs).toEqual(first.outputs);
    expect(await page.textContent('#replay-of a')).toBe(first.runId);
    expect(await page.textContent('#payload pre')).toBe(JSON.stringify({ n: 7 }, null, 2));
    await ctx.close();
  });

  it('deletes a scenario only after confirming in place', async () => {
    const ids = async () => (await call<Array<{ id: string }>>('acme', 'GET', '/api/scenarios')).json.map((x) => x.id);
    const ctx = await context();
    const page = await open(ctx, '#/', 'acme');
    const row = '#scenarios tr[data-scenario-id=old]';
    await page.click(`${row} .delete`);
    expect(await page.textContent(`${row} .confirm`)).toContain('Delete old?');
    await page.click(`${row} .cancel-delete`);
    await page.waitForSelector(`${row} .delete`);
    expect(await ids()).toContain('old');
    await page.click(`${row} .delete`);
    await page.click(`${row} .confirm-delete`);
    await page.waitForSelector(row, { state: 'detached' });
    expect(await ids()).not.toContain('old');
    await ctx.close();
  });

  it("shows a cron scenario's next firing in its timezone and the viewer's", async () => {
    const next = (await call<Array<{ id: string; nextFiring?: string }>>('acme', 'GET', '/api/scenarios')).json.find((s) => s.id === 'nightly')!.nextFiring!;
    expect(next).toMatch(/T09:30:00\+05:30$/);
    const ctx = await context();
    const page = await open(ctx, '#/', 'acme');
    const line = page.locator('#scenarios tr[data-scenario-id=nightly] .next-firing');
    expect(await line.getAttribute('data-next-firing')).toBe(next);
    const inZone = (await line.locator('.next-scenario-tz').textContent()) ?? '';
    expect(inZone).toContain('09:30');
    expect(inZone).toContain('(Asia/Kolkata)');
    const ny = DateTime.fromISO(next).setZone('America/New_York');
    expect(await line.locator('.next-viewer-tz').textContent()).toContain(`${ny.toFormat('HH:mm')}`);
    expect(await line.locator('.next-viewer-tz').textContent()).toContain('your time');
    // No next firing for a scenario that is not cron.
    expect(await page.locator('#scenarios tr[data-scenario-id=echo] .next-firing').count()).toBe(0);
    await ctx.close();
  });

  it('a run link opened in a fresh browser asks for the key, then shows that run; the key is never in the URL', async () => {
    const run = (await call<RunRecord>('acme', 'POST', '/api/scenarios/echo/trigger?wait=true', { payload: 'shared' })).json;
    const ctx = await context();
    const page = await open(ctx, `#/runs/${run.runId}`);
    await page.waitForSelector('body[data-ready=login]');
    expect(await page.isVisible('#login-form')).toBe(true);
    expect(await page.textContent('#login-target')).toContain(`run ${run.runId}`);
    await page.fill('#login-key', keys.acme!);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector(`body[data-ready=true] #run-header[data-run-id="${run.runId}"]`);
    expect(await page.evaluate(() => location.hash)).toBe(`#/runs/${run.runId}`);
    expect(page.url()).not.toContain(keys.acme!);
    expect(await page.getAttribute('#share-link', 'href')).toBe(`${base}/#/runs/${run.runId}`);
    await ctx.close();
  });

  it('Resume shows the refusal with how many actions are missing, and the run stays halted once', async () => {
    const run = (await call<RunRecord>('tight', 'POST', '/api/scenarios/three/trigger?wait=true', {})).json;
    expect(run.status).toBe('halted');
    const ctx = await context();
    const page = await open(ctx, `#/runs/${run.runId}`, 'tight');
    await page.waitForSelector(`#run-header[data-run-id="${run.runId}"][data-status=halted]`);
    await page.click('#resume');
    const refusal = page.locator('#resume-refusal');
    await refusal.waitFor({ state: 'visible' });
    expect(await refusal.getAttribute('data-code')).toBe('QUOTA_EXHAUSTED');
    expect(await refusal.getAttribute('data-needed')).toBe('1');
    const text = (await refusal.textContent()) ?? '';
    expect(text).toContain('The run needs at least 1 more action; 0 are left in');
    expect(text).toContain(`run ${run.runId} would halt again: tenant tight has 0 actions left`);
    await page.screenshot({ path: '/tmp/dashboard-resume-refused.png' });
    const after = (await call<RunRecord>('tight', 'GET', `/api/runs/${run.runId}`)).json;
    expect(after.status).toBe('halted');
    expect(after.tasks.filter((t) => t.status === 'halted')).toHaveLength(1);
    await ctx.close();
  });

  it('draws the limit and the projection tags apart when they fall at the same height', async () => {
    for (let i = 0; i < 5; i++) await call('near', 'POST', '/api/scenarios/echo/trigger?wait=true', { payload: i });
    const projected = (await call<{ projection: { projectedUsed: number } }>('near', 'GET', '/api/usage')).json.projection.projectedUsed;
    await platform.ledger.setQuota('near', { monthlyActions: projected });
    const ctx = await context();
    const page = await open(ctx, '#/', 'near');
    const limitTag = page.locator('#usage .chart g.limit-label');
    const projTag = page.locator('#usage .chart g.projection-label');
    const boxOf = async (tag: typeof limitTag) => (await tag.locator('rect.tag-box').boundingBox())!;
    // Where they belong: the same height on the running-total axis, so they would overlap there.
    const [wantLimit, wantProj] = [Number(await limitTag.getAttribute('data-y')), Number(await projTag.getAttribute('data-y'))];
    expect(Math.abs(wantLimit - wantProj)).toBeLessThan(16);
    const [a, b] = [await boxOf(limitTag), await boxOf(projTag)];
    const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    expect(overlap, JSON.stringify({ a, b })).toBe(false);
    // Both name their values, and the legend says the limit is on the running-total axis.
    expect(await limitTag.textContent()).toBe(`limit ${projected.toLocaleString('en-US')}`);
    // The projection moves while the page loads (early in a period, by about one action a second):
    // the page's lies between the API's before and after it.
    const later = (await call<{ projection: { projectedUsed: number } }>('near', 'GET', '/api/usage')).json.projection.projectedUsed;
    const shown = Number((await projTag.textContent())!.replace(/^projected /, '').replace(/,/g, ''));
    expect(shown).toBeGreaterThanOrEqual(Math.min(projected, later));
    expect(shown).toBeLessThanOrEqual(Math.max(projected, later));
    expect(await page.textContent('#usage .legend')).toContain('limit, on the running-total axis');
    await page.locator('#usage').screenshot({ path: '/tmp/dashboard-chart-tags.png' });
    await ctx.close();
    expect(pageErrors).toEqual([]);
  });
});
