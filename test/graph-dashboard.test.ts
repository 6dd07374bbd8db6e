/**
 * The scenario as a picture in the dashboard (SPEC §12), in headless Chromium against a real
 * server: the scenario page draws one node per node and one path per edge without overlaps,
 * shades the most expensive node darkest, marks warnings and catch edges; the run page
 * highlights the run's path with the loop's iterations. Screenshots are compared with the ones
 * committed in test/screenshots/ (helpers/screenshots.ts).
 */

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import { type ServedDashboard, serveDashboard } from './helpers/dashboard-browser.js';
import { ORDERS, ORDERS_PAYLOAD, ORDERS_RUN_ACTIONS } from './helpers/graph-scenario.js';
import { scenarioOf } from './helpers/run.js';
import { matchScreenshot } from './helpers/screenshots.js';

let platform: Embedded;
let served: ServedDashboard | undefined;
let base: string;
let browser: Browser;
let key: string;
const runs: RunRecord[] = [];
const pageErrors: string[] = [];

async function runOrders(payload: unknown = ORDERS_PAYLOAD): Promise<RunRecord> {
  const { runId } = await platform.trigger('acme', 'orders', payload, { type: 'manual' });
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) {
    const r = await platform.runs.get('acme', runId);
    if (r && ['succeeded', 'failed', 'halted', 'rejected'].includes(r.status)) return r;
  }
  throw new Error(`run ${runId} did not end`);
}

async function open(ctx: BrowserContext, hash: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
  // The overview asks for an invoice, which a tenant without a plan has not (404): anything else failing is an error.
  page.on('response', (r) => r.status() >= 400 && !r.url().endsWith('/api/invoice') && pageErrors.push(`${r.status()} ${r.url()}`));
  await page.goto(`${base}/${hash}`);
  return page;
}

/** Each node's box in the drawing, by node id. */
function boxes(page: Page, root: string) {
  return page.$$eval(`${root} g.node`, (gs) =>
    gs.map((g) => {
      const r = g.querySelector('rect')!.getBoundingClientRect();
      return { id: (g as SVGElement).dataset.nodeId!, x: r.x, y: r.y, w: r.width, h: r.height };
    }),
  );
}

function overlaps(b: Array<{ id: string; x: number; y: number; w: number; h: number }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < b.length; i++)
    for (let j = i + 1; j < b.length; j++) {
      const [p, q] = [b[i]!, b[j]!];
      if (p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) out.push(`${p.id} × ${q.id}`);
    }
  return out;
}

beforeAll(async () => {
  platform = createEmbedded();
  await platform.scenarios.deploy('acme', scenarioOf(ORDERS));
  await platform.ledger.setQuota('acme', { monthlyActions: 10_000 });
  runs.push(await runOrders(), await runOrders());
  key = await platform.keys.create('acme');
  served = await serveDashboard(platform, { adminKey: 'admin-key-for-graph-dashboard-tests' });
  ({ base, browser } = served);
});

afterAll(async () => {
  await (served ? served.close() : platform?.close());
});

describe('scenario graph in the dashboard', () => {
  it('serves dagre from the package, not a CDN', async () => {
    const res = await fetch(`${base}/dashboard/dagre.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/javascript/);
    expect(await res.text()).toMatch(/export\s*\{[^}]*layout/);
  });

  it('the scenario page draws the graph: nodes, edges, no overlaps, shading, warnings, catch edges', async () => {
    const graph = (await (await fetch(`${base}/api/scenarios/orders/graph`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      nodes: Array<{ id: string; actions: number }>;
      edges: unknown[];
    };
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await open(ctx, `#key=${encodeURIComponent(key)}`);
    // Reached from the scenario list.
    await page.click('#scenarios a[href="#/scenarios/orders"]');
    await page.waitForSelector('#graph .graph-box[data-ready=true]');
    expect(await page.locator('#graph .loading, .loading').count()).toBe(0);

    const ids = await page.$$eval('#graph g.node', (gs) => gs.map((g) => (g as SVGElement).dataset.nodeId));
    expect(ids.sort()).toEqual([...ORDERS.nodes.map((n) => n.id), '$trigger'].sort());
    expect(await page.locator('#graph g.edge path').count()).toBe(graph.edges.length);
    expect(graph.edges).toHaveLength(7);
    expect(overlaps(await boxes(page, '#graph'))).toEqual([]);

    // The most expensive node (the loop: its own action and its iterations) is the darkest.
    const fills = await page.$$eval('#graph g.node', (gs) =>
      gs.map((g) => {
        const [r, gr, b] = getComputedStyle(g.querySelector('rect')!).fill.match(/\d+/g)!.map(Number);
        return {
          id: (g as SVGElement).dataset.nodeId!,
          luminance: 0.2126 * r! + 0.7152 * gr! + 0.0722 * b!,
          actions: Number((g as SVGElement).dataset.actions),
        };
      }),
    );
    const top = [...graph.nodes].sort((a, b) => b.actions - a.actions)[0]!;
    expect(top).toMatchObject({ id: 'each', actions: 2 * ORDERS_RUN_ACTIONS.each! });
    const darkest = [...fills].sort((a, b) => a.luminance - b.luminance);
    expect(darkest[0]!.id).toBe('each');
    expect(darkest[0]!.luminance).toBeLessThan(darkest[1]!.luminance);
    // More actions, darker.
    const lum = Object.fromEntries(fills.map((f) => [f.id, f.luminance]));
    expect(lum.route).toBeLessThan(lum.big!);
    expect(lum.big).toBeLessThan(lum.log!);
    expect(lum.log).toBeLessThan(lum.orphan!);
    for (const f of fills) expect(f.actions, f.id).toBe(graph.nodes.find((n) => n.id === f.id)!.actions);
    expect(await page.locator('#graph-legend .legend-step').count()).toBeGreaterThanOrEqual(5);

    // The unreachable node carries its warning, on the drawing and in the list.
    expect(await page.locator('#graph g.node[data-node-id=orphan] .warn-badge').count()).toBe(1);
    expect(await page.textContent('#graph g.node[data-node-id=orphan] .warn-badge title')).toContain('not reachable from start');
    expect(await page.locator('#graph g.node .warn-badge').count()).toBe(1);
    expect(await page.textContent('#graph-warnings li[data-node-id=orphan]')).toContain('is not reachable');

    // The catch edge is drawn dashed, from the node it handles.
    const catchEdge = page.locator('#graph g.edge-error');
    expect(await catchEdge.count()).toBe(1);
    expect(await catchEdge.getAttribute('data-from')).toBe('big');
    expect(await catchEdge.locator('path').evaluate((p) => getComputedStyle(p).strokeDasharray)).not.toBe('none');
    expect(await page.textContent('#graph-table tr[data-node-id=each] td.num')).toBe(String(2 * ORDERS_RUN_ACTIONS.each!));

    const shot = await page.locator('#graph .graph-box svg').screenshot();
    const diff = await matchScreenshot(browser, 'scenario-graph', shot);
    expect(diff.mismatch).toBeNull();
    await ctx.close();
  });

  it('the run page highlights the path the run took, with the loop’s iterations on the loop', async () => {
    const run = runs[0]!;
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await open(ctx, `#key=${encodeURIComponent(key)}`);
    await page.waitForSelector('#runs-table');
    await page.click(`#runs-table a[href="#/runs/${run.runId}"]`);
    await page.waitForSelector('#run-path .graph-box[data-ready=true]');

    const reached = new Set(run.tasks.map((t) => t.nodeId));
    const visited = await page.$$eval('#run-path g.node.visited', (gs) => gs.map((g) => (g as SVGElement).dataset.nodeId!));
    expect(visited.sort()).toEqual([...reached].sort());
    const unvisited = await page.$$eval('#run-path g.node.unvisited', (gs) => gs.map((g) => (g as SVGElement).dataset.nodeId!));
    expect(unvisited.sort()).toEqual(['note', 'orphan']);
    expect(overlaps(await boxes(page, '#run-path'))).toEqual([]);

    const loop = page.locator('#run-path g.node[data-node-id=each]');
    expect(await loop.getAttribute('data-iterations')).toBe('4');
    expect(await loop.getAttribute('data-executions')).toBe('1');
    expect(await loop.locator('.visit-badge text').textContent()).toBe('×1 ↻ 4');
    expect(await page.locator('#run-path g.node[data-node-id=route] .visit-badge text').textContent()).toBe('×4');
    // The failed node is marked, and the catch edge it took is highlighted.
    expect(await page.locator('#run-path g.node.failed').getAttribute('data-node-id')).toBe('big');
    expect(await page.locator('#run-path g.edge-error.taken').count()).toBe(1);
    expect(await page.locator('#run-path g.edge.taken').count()).toBe(7);

    const shot = await page.locator('#run-path .graph-box svg').screenshot();
    const diff = await matchScreenshot(browser, 'run-path', shot);
    expect(diff.mismatch).toBeNull();

    // A run in which nothing fails does not take the error edge (after the screenshots: it adds to the period).
    const clean = await runOrders({ items: [{ kind: 'big' }] });
    await page.goto(`${base}/#/runs/${clean.runId}`);
    await page.waitForSelector('#run-path .graph-box[data-ready=true]');
    expect(await page.locator('#run-path g.node[data-node-id=big]').getAttribute('class')).toContain('visited');
    expect(await page.locator('#run-path g.edge-error.taken').count()).toBe(0);
    expect(await page.locator('#run-path g.node.failed').count()).toBe(0);
    await ctx.close();
    expect(pageErrors).toEqual([]);
  });
});
