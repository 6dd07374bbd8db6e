/**
 * The scenario as a picture (SPEC §12): `GET /api/scenarios/:id/graph` (nodes with this period's
 * actions and runs, edges, validation warnings) and `GET /api/runs/:id/path` (the graph of the
 * scenario version the run executed, with what the run did at each node).
 */
import type { FastifyInstance } from 'fastify';
import { type Diagram, runPath, scenarioDiagram } from '../scenario/diagram.js';
import type { Scenario } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { principalOf } from './auth.js';
import { type ApiContext, ApiError, periodParam, RUN_ID_RE, SCENARIO_ID_RE } from './routes-common.js';

/** The diagram of a stored scenario, with its validation warnings on the nodes. */
function diagramOf(scenario: Scenario): Diagram {
  return scenarioDiagram(scenario, validateScenario(scenario).warnings);
}

export function registerGraphRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  /**
   * `{ scenarioId, period, actions, nodes: [{ id, type, name?, entry, catchesAll?, warnings,
   * actions, runs }], edges: [{ from, to, kind, index? }], warnings }`: `actions` per node are the
   * actions billed on it this period (the trigger's node `$trigger` too), `runs` the runs that
   * billed it (Ledger.nodeUsage); `actions` at the top is their sum. `?period=YYYY-MM` gives
   * that period's counts instead (the graph is always the current document).
   */
  api.get<{ Params: { id: string }; Querystring: { period?: string } }>('/scenarios/:id/graph', async (req) => {
    const { tenant } = principalOf(req);
    const { id } = req.params;
    const period = periodParam(req.query.period);
    const scenario = SCENARIO_ID_RE.test(id) ? await platform.scenarios.get(tenant, id) : null;
    if (!scenario) throw new ApiError('NOT_FOUND', `no scenario ${JSON.stringify(id)}`);
    const d = diagramOf(scenario);
    const usage = await platform.ledger.nodeUsage(
      tenant,
      scenario.id,
      d.nodes.map((n) => n.id),
      new Date(),
      period,
    );
    const nodes = d.nodes.map((n) => ({ ...n, ...(usage.nodes[n.id] ?? { actions: 0, runs: 0 }) }));
    return {
      scenarioId: scenario.id,
      period: usage.period,
      actions: nodes.reduce((a, n) => a + n.actions, 0),
      nodes,
      edges: d.edges,
      warnings: d.warnings,
    };
  });

  /**
   * `{ runId, scenarioId, version?, status, actions, nodes, edges, warnings, path: [{ nodeId,
   * executions, iterations, actions, errors, halted }] }`: the graph of the scenario as the run
   * executed it, and per node reached what its task log shows (a loop's iterations on the loop).
   */
  api.get<{ Params: { id: string } }>('/runs/:id/path', async (req) => {
    const { tenant } = principalOf(req);
    const { id } = req.params;
    const run = RUN_ID_RE.test(id) ? await platform.runs.get(tenant, id) : null;
    if (!run) throw new ApiError('NOT_FOUND', `no run ${JSON.stringify(id)}`);
    // The version the run executed; the current document for a run without one (or whose version is gone).
    const versions = run.version !== undefined ? await platform.scenarios.versions(tenant, run.scenarioId) : [];
    const scenario = versions.find((v) => v.version === run.version)?.scenario ?? (await platform.scenarios.get(tenant, run.scenarioId));
    if (!scenario) throw new ApiError('NOT_FOUND', `run ${id} is of scenario ${JSON.stringify(run.scenarioId)}, which no longer exists`);
    const d = diagramOf(scenario);
    const visits = runPath(run.tasks);
    return {
      runId: run.runId,
      scenarioId: run.scenarioId,
      ...(run.version !== undefined && { version: run.version }),
      status: run.status,
      actions: run.actions,
      nodes: d.nodes,
      edges: d.edges,
      warnings: d.warnings,
      path: Object.keys(visits).map((nodeId) => ({ nodeId, ...visits[nodeId]! })),
    };
  });
}
