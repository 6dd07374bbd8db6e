/**
 * The scenario as a picture (SPEC §12): the pure diagram of a scenario and a run's path, and
 * `GET /api/scenarios/:id/graph` and `GET /api/runs/:id/path` on both platforms: nodes, edges,
 * warnings, this period's actions per node equal to what was billed, tenant isolation.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { Platform } from '../engine/platform.js';
import { runPath, scenarioDiagram } from '../scenario/diagram.js';
import { validateScenario } from '../scenario/validate.js';
import { ORDERS, ORDERS_PAYLOAD, ORDERS_RUN_ACTIONS } from './helpers/graph-scenario.js';
import { bothPlatforms } from './helpers/production.js';
import { scenarioOf } from './helpers/run.js';

const ORDERS_EDGES = [
  { from: '$trigger', to: 'each', kind: 'start' },
  { from: 'each', to: 'route', kind: 'body' },
  { from: 'each', to: 'summary', kind: 'next' },
  { from: 'route', to: 'big', kind: 'cases', index: 0 },
  { from: 'route', to: 'small', kind: 'default' },
  { from: 'big', to: 'oops', kind: 'error' },
  { from: 'oops', to: 'log', kind: 'next' },
];

describe('scenario diagram (pure)', () => {
  it('has the trigger and every node, edges from the node definitions, catches, and warnings on their nodes', () => {
    const scenario = scenarioOf(ORDERS);
    const d = scenarioDiagram(scenario, validateScenario(scenario).warnings);
    expect(d.nodes.map((n) => [n.id, n.type, n.entry])).toEqual([
      ['$trigger', 'trigger', 'trigger'],
      ['each', 'loop', 'edge'],
      ['route', 'switch', 'edge'],
      ['big', 'function', 'edge'],
      ['small', 'function', 'edge'],
      ['oops', 'catch', 'onError'],
      ['log', 'function', 'edge'],
      ['summary', 'function', 'edge'],
      ['note', 'comment', 'never'],
      ['orphan', 'function', 'edge'],
    ]);
    expect(d.nodes.find((n) => n.id === 'each')?.name).toBe('Each order');
    expect(d.edges).toEqual(ORDERS_EDGES);
    expect(d.nodes.find((n) => n.id === 'orphan')?.warnings).toEqual(['nodes[8]: node "orphan" is not reachable from start "each"']);
    expect(d.nodes.filter((n) => n.warnings.length).map((n) => n.id)).toEqual(['orphan']);
    expect(d.warnings).toEqual([]);
    // A catch without a scope handles every node: no edges, a flag.
    const all = scenarioDiagram(
      scenarioOf({
        start: 'a',
        nodes: [
          { id: 'a', type: 'exception', message: 'x' },
          { id: 'c', type: 'catch' },
        ],
      }),
    );
    expect(all.nodes.find((n) => n.id === 'c')).toMatchObject({ entry: 'onError', catchesAll: true });
    expect(all.edges).toEqual([{ from: '$trigger', to: 'a', kind: 'start' }]);
    expect(scenarioDiagram(scenario, ['(document): something general']).warnings).toEqual(['(document): something general']);
  });

  it('a run path counts executions, loop iterations on the loop, errors and halted tasks per node', () => {
    const path = runPath([
      { nodeId: '$trigger', status: 'ok', actions: 1 },
      { nodeId: 'each', status: 'ok', actions: 1 },
      { nodeId: 'each', status: 'ok', actions: 1, iteration: 0 },
      { nodeId: '__proto__', status: 'error', actions: 1 },
      { nodeId: 'each', status: 'ok', actions: 1, iteration: 1 },
      { nodeId: 'each', status: 'halted', actions: 0, iteration: 2 },
    ]);
    // A node id may be __proto__: it is a node like any other.
    expect(Object.entries(path)).toEqual([
      ['$trigger', { executions: 1, iterations: 0, actions: 1, errors: 0, halted: 0 }],
      ['each', { executions: 1, iterations: 2, actions: 3, errors: 0, halted: 1 }],
      ['__proto__', { executions: 1, iterations: 0, actions: 1, errors: 1, halted: 0 }],
    ]);
  });
});

const platforms = bothPlatforms({ workerConcurrency: 2 });

interface GraphNode {
  id: string;
  actions: number;
  runs: number;
  warnings: string[];
}

describe.each(platforms)('graph API on the %s platform', (_mode, make) => {
  let platform: Platform;
  let app: FastifyInstance;
  let acme: string;
  let bravo: string;

  beforeEach(async () => {
    platform = await make();
    app = await buildServer(platform, { adminKey: 'admin-key-for-graph-tests' });
    acme = await platform.keys.create('acme');
    bravo = await platform.keys.create('bravo');
    await platform.scenarios.deploy('acme', scenarioOf(ORDERS));
  });
  afterEach(async () => {
    await app.close();
    await platform.close();
  });

  const get = (url: string, key: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
  async function trigger(test = false): Promise<{ runId: string; status: string; actions: number; tasks: Array<{ nodeId: string; actions: number }> }> {
    const res = await app.inject({
      method: 'POST',
      url: '/api/scenarios/orders/trigger?wait=true',
      headers: { authorization: `Bearer ${acme}` },
      payload: { payload: ORDERS_PAYLOAD, test },
    });
    expect(res.statusCode).toBe(200);
    return res.json();
  }

  it('GET /api/scenarios/:id/graph: nodes with this period’s billed actions and runs, edges, warnings', async () => {
    const fresh = await get('/api/scenarios/orders/graph', acme);
    expect(fresh.statusCode).toBe(200);
    expect(fresh.json().actions).toBe(0);
    expect(fresh.json().nodes.every((n: GraphNode) => n.actions === 0 && n.runs === 0)).toBe(true);

    const runs = [await trigger(), await trigger()];
    for (const r of runs) expect(r).toMatchObject({ status: 'succeeded', actions: 17 });
    await trigger(true); // a test run is not billed: in no count

    const res = await get('/api/scenarios/orders/graph', acme);
    expect(res.statusCode).toBe(200);
    const g = res.json();
    expect(g.scenarioId).toBe('orders');
    expect(g.period).toMatch(/^\d{4}-\d{2}$/);
    expect(g.edges).toEqual(ORDERS_EDGES);
    // Per node: the sum of what the billed runs' task logs show.
    const billed: Record<string, number> = {};
    for (const r of runs) for (const t of r.tasks) billed[t.nodeId] = (billed[t.nodeId] ?? 0) + t.actions;
    expect(billed).toEqual(Object.fromEntries(Object.entries(ORDERS_RUN_ACTIONS).map(([k, v]) => [k, 2 * v])));
    const byId = Object.fromEntries(g.nodes.map((n: GraphNode) => [n.id, n]));
    for (const n of g.nodes as GraphNode[]) {
      expect(n.actions, n.id).toBe(billed[n.id] ?? 0);
      expect(n.runs, n.id).toBe(billed[n.id] ? 2 : 0);
    }
    expect(byId.orphan.warnings).toEqual(['nodes[8]: node "orphan" is not reachable from start "each"']);
    expect(byId.note).toMatchObject({ type: 'comment', actions: 0 });
    // The total equals the usage report's billed actions of the scenario.
    const usage = (await get('/api/usage', acme)).json();
    expect(usage.byScenario).toEqual([{ scenarioId: 'orders', runs: 2, actions: 34 }]);
    expect(g.actions).toBe(34);
  });

  it('GET /api/scenarios/:id/graph?period=YYYY-MM: that period’s counts; a bad period is a 400 naming it', async () => {
    const run = await trigger();
    const now = (await get('/api/scenarios/orders/graph', acme)).json();
    expect(now.actions).toBe(17);
    // The current period asked by name is the default answer.
    expect((await get(`/api/scenarios/orders/graph?period=${now.period}`, acme)).json()).toEqual(now);
    // A past period with billed actions of its own: a run settled in March 2025.
    const at = new Date('2025-03-15T12:00:00Z');
    const { period, date } = await platform.ledger.periodOf('acme', at);
    expect(period).toBe('2025-03');
    const entries = [
      { key: '1', trigger: true, date },
      { key: '2', trigger: false, date, node: 'each' },
      { key: '3', trigger: false, date, node: 'summary' },
      { key: '4', trigger: false, date, node: 'summary' },
    ];
    await platform.ledger.settle({ tenant: 'acme', runId: 'old-run', scenarioId: 'orders', billable: true, period, entries, heldUsed: 0, release: 0, at });
    const past = await get('/api/scenarios/orders/graph?period=2025-03', acme);
    expect(past.statusCode).toBe(200);
    const g = past.json();
    expect(g).toMatchObject({ scenarioId: 'orders', period: '2025-03', actions: 4, edges: ORDERS_EDGES });
    const counts = Object.fromEntries(g.nodes.filter((n: GraphNode) => n.actions > 0).map((n: GraphNode) => [n.id, [n.actions, n.runs]]));
    expect(counts).toEqual({ $trigger: [1, 1], each: [1, 1], summary: [2, 1] });
    expect(g.nodes.map((n: GraphNode) => n.id)).toEqual(now.nodes.map((n: GraphNode) => n.id));
    // The current period did not take them, and a period with nothing billed is all zeros.
    expect((await get('/api/scenarios/orders/graph', acme)).json().actions).toBe(17);
    const empty = (await get('/api/scenarios/orders/graph?period=2024-02', acme)).json();
    expect(empty).toMatchObject({ period: '2024-02', actions: 0 });
    expect(empty.nodes.every((n: GraphNode) => n.actions === 0 && n.runs === 0)).toBe(true);
    expect(run.status).toBe('succeeded');

    for (const bad of ['2025-13', '2025-3', 'march', '2025-03-01', '']) {
      const res = await get(`/api/scenarios/orders/graph?period=${encodeURIComponent(bad)}`, acme);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'INVALID_INPUT', message: `?period must be YYYY-MM, got ${JSON.stringify(bad)}` });
    }
    // The period is checked first, whatever the scenario.
    expect((await get('/api/scenarios/orders/graph?period=x', bravo)).statusCode).toBe(400);
  });

  it('GET /api/scenarios/:id/graph: an unknown id or another tenant’s scenario is a 404', async () => {
    for (const [url, key] of [
      ['/api/scenarios/nope/graph', acme],
      ['/api/scenarios/orders/graph', bravo],
      ['/api/scenarios/Bad%20Id/graph', acme],
    ] as const) {
      const res = await get(url, key);
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    expect((await get('/api/scenarios/orders/graph', bravo)).json().error.message).toBe('no scenario "orders"');
    expect((await app.inject({ method: 'GET', url: '/api/scenarios/orders/graph' })).statusCode).toBe(401);
  });

  it('GET /api/runs/:id/path: the graph of the run’s version and what the run did at each node', async () => {
    const run = await trigger();
    const res = await get(`/api/runs/${run.runId}/path`, acme);
    expect(res.statusCode).toBe(200);
    const p = res.json();
    expect(p).toMatchObject({ runId: run.runId, scenarioId: 'orders', version: 1, status: 'succeeded', actions: 17 });
    expect(p.edges).toEqual(ORDERS_EDGES);
    const visits = Object.fromEntries(p.path.map((v: { nodeId: string }) => [v.nodeId, v]));
    expect(Object.keys(visits).sort()).toEqual(Object.keys(ORDERS_RUN_ACTIONS).sort());
    expect(visits.each).toEqual({ nodeId: 'each', executions: 1, iterations: 4, actions: 5, errors: 0, halted: 0 });
    expect(visits.route).toMatchObject({ executions: 4, iterations: 0, actions: 4 });
    expect(visits.big).toMatchObject({ executions: 2, errors: 1 });
    for (const [id, actions] of Object.entries(ORDERS_RUN_ACTIONS)) expect(visits[id].actions, id).toBe(actions);

    // A later version does not change the picture of an earlier run.
    await platform.scenarios.deploy('acme', scenarioOf({ ...ORDERS, nodes: ORDERS.nodes.filter((n) => n.id !== 'orphan') }));
    expect((await get(`/api/runs/${run.runId}/path`, acme)).json().nodes.some((n: GraphNode) => n.id === 'orphan')).toBe(true);
    expect((await get('/api/scenarios/orders/graph', acme)).json().nodes.some((n: GraphNode) => n.id === 'orphan')).toBe(false);

    for (const [url, key] of [
      [`/api/runs/${run.runId}/path`, bravo],
      ['/api/runs/nope/path', acme],
    ] as const) {
      const r = await get(url, key);
      expect(r.statusCode, url).toBe(404);
      expect(r.json().error.code).toBe('NOT_FOUND');
    }
  });
});
