/**
 * Why a queued run waits, in the dashboard (SPEC §10): in headless Chromium against a real
 * server on the production platform (real Redis, an in-process worker). A tenant with
 * concurrency 1 has one run held in a loopback service that answers only when the test lets
 * it; the tenant's next run waits for the limit, and the run page and the overview both show
 * the reason as visible text. Once the service answers, both runs end and the reason goes.
 */
import type { ServerResponse } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import type { Production } from '../redis/production.js';
import { type ServedDashboard, serveDashboard } from './helpers/dashboard-browser.js';
import { type Listener, listen } from './helpers/listener.js';
import { waitUntil } from './helpers/processes.js';
import { useProduction } from './helpers/production.js';
import { scenarioOf } from './helpers/run.js';

const REASON = 'tenant concurrency 1 reached';

let p: Production | undefined;
let served: ServedDashboard | undefined;
let svc: Listener | undefined;
let base: string;
let browser: Browser;
let key: string;
/** Requests the service holds; `released` answers them and every later one at once. */
const held: ServerResponse[] = [];
let released = false;
const answer = (res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{}');
};
const pageErrors: string[] = [];
let first: string;
let second: string;

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

async function open(ctx: BrowserContext, hash: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
  await page.goto(`${base}/#key=${encodeURIComponent(key)}`);
  await page.waitForSelector('body[data-ready=true]');
  if (hash !== '#/') {
    await page.evaluate((h) => (location.hash = h), hash);
    await page.waitForSelector('body[data-ready=true]');
  }
  return page;
}

beforeAll(async () => {
  svc = await listen((_req, res) => (released ? answer(res) : held.push(res)));
  p = await useProduction({ env: { FLOWMETER_EGRESS_ALLOW: '127.0.0.1' } });
  await p.ledger.setQuota('acme', { concurrency: 1, monthlyActions: 10_000 });
  await p.scenarios.deploy(
    'acme',
    scenarioOf({
      id: 'slow',
      name: 'Slow call',
      connections: { svc: { baseUrl: svc.base } },
      start: 'call',
      nodes: [{ id: 'call', type: 'connector', connection: 'svc', method: 'GET', url: '/hold' }],
    }),
  );
  key = await p.keys.create('acme');
  served = await serveDashboard(p);
  ({ base, browser } = served);
  // Room for both runs in the worker: only the tenant's limit holds the second one.
  p.startWorker({ concurrency: 2 });
  first = (await p.trigger('acme', 'slow', 1, { type: 'manual' })).runId;
  await waitUntil('the first run to be held in the service', () => held.length === 1, { timeoutMs: 20_000, intervalMs: 10 });
  second = (await p.trigger('acme', 'slow', 2, { type: 'manual' })).runId;
  const platform = p;
  await waitUntil('the second run to show why it waits', async () => (await platform.runs.get('acme', second))?.waiting === REASON, {
    timeoutMs: 20_000,
    intervalMs: 20,
  });
}, 60_000);

afterAll(async () => {
  released = true;
  for (const res of held.splice(0)) answer(res);
  await (served ? served.close() : p?.close());
  await svc?.close();
});

describe('a run held by a flow-control limit in the dashboard', () => {
  it('the API gives the reason on the waiting run only', async () => {
    expect(await api<RunRecord>(`/api/runs/${second}`)).toMatchObject({ status: 'queued', waiting: REASON });
    const list = await api<RunRecord[]>('/api/runs');
    expect(list.find((r) => r.runId === second)).toMatchObject({ status: 'queued', waiting: REASON });
    // The first run is executing (held in the service), whatever its stored status: it waits for nothing.
    const running = list.find((r) => r.runId === first)!;
    expect(['queued', 'running']).toContain(running.status);
    expect(running.waiting).toBeUndefined();
    expect((await api<RunRecord>(`/api/runs/${first}`)).waiting).toBeUndefined();
  });

  it('the run page shows the reason under the status', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await open(ctx, `#/runs/${second}`);
    await page.waitForSelector(`#run-header[data-run-id="${second}"][data-status=queued]`);
    const why = page.locator('#run-waiting');
    await why.waitFor({ state: 'visible' });
    expect(await why.textContent()).toBe(`waiting: ${REASON}`);
    await page.locator('#run-header').screenshot({ path: '/tmp/dashboard-run-waiting.png' });
    await ctx.close();
  });

  it('the overview shows the reason as a visible line under the badge of the waiting run, and only there', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await open(ctx, '#/');
    const row = page.locator(`#runs-table tr[data-run-id="${second}"]`);
    await row.waitFor({ state: 'visible' });
    expect(await row.getAttribute('data-status')).toBe('queued');
    const why = row.locator('.status-cell .run-waiting');
    await why.waitFor({ state: 'visible' });
    expect(await why.textContent()).toBe(`waiting: ${REASON}`);
    await page.locator('#runs').screenshot({ path: '/tmp/dashboard-overview-waiting.png' });
    // Readable: the line has a height and its text is not cut off.
    const box = (await why.boundingBox())!;
    expect(box.height).toBeGreaterThan(8);
    expect(await why.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    expect(await page.locator(`#runs-table tr[data-run-id="${first}"] .run-waiting`).count()).toBe(0);

    // The service answers: both runs end, and the reason leaves the page live.
    released = true;
    for (const res of held.splice(0)) answer(res);
    await page.waitForSelector(`#runs-table tr[data-run-id="${second}"][data-status=succeeded]`, { timeout: 20_000 });
    await page.waitForSelector(`#runs-table tr[data-run-id="${first}"][data-status=succeeded]`, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelectorAll('#runs-table .run-waiting').length === 0, null, { timeout: 5000 });
    const ended = await api<RunRecord>(`/api/runs/${second}`);
    expect(ended.status).toBe('succeeded');
    expect(ended.waiting).toBeUndefined();
    await ctx.close();
  }, 40_000);

  it('logged no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
