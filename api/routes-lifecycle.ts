/**
 * Scenario lifecycle (SPEC §12): `GET /api/scenarios/:id/versions`,
 * `POST /api/scenarios/:id/rollback` `{ to }`, `DELETE /api/scenarios/:id`,
 * `POST /api/runs/:id/replay`.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { planReplay } from '../engine/replay.js';
import { principalOf } from './auth.js';
import { refuseWhenExhausted } from './rejected.js';
import { type ApiContext, ApiError, isTrue, publicRun, RUN_ID_RE, SCENARIO_ID_RE, triggerAndWait } from './routes-common.js';
import { leaveGate } from './tenant-gate.js';

interface IdParams {
  id: string;
}

const rollbackBody = z.strictObject({
  /** The version to make current again (a new version copying it is appended). */
  to: z.number().int().min(1),
});

function scenarioId(id: string): string {
  if (!SCENARIO_ID_RE.test(id)) throw new ApiError('NOT_FOUND', `no scenario ${JSON.stringify(id)}`);
  return id;
}

export function registerLifecycleRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  /** Every version, oldest first, each with its document. */
  api.get<{ Params: IdParams }>('/scenarios/:id/versions', async (req) => {
    const { tenant } = principalOf(req);
    return platform.scenarios.versions(tenant, scenarioId(req.params.id));
  });

  /** `{ version, changed }`: changed false when version `to` is already the current document. */
  api.post<{ Params: IdParams }>('/scenarios/:id/rollback', async (req) => {
    const { tenant } = principalOf(req);
    const parsed = rollbackBody.safeParse(req.body ?? {});
    if (!parsed.success) throw new ApiError('INVALID_INPUT', 'the body must be { "to": N }, N a version number (1, 2, …)');
    const id = scenarioId(req.params.id);
    const { version, changed } = await platform.scenarios.rollback(tenant, id, parsed.data.to);
    return { id, version, changed, rollbackOf: parsed.data.to };
  });

  /** The scenario stops taking triggers; its runs stay until retention. */
  api.delete<{ Params: IdParams }>('/scenarios/:id', async (req) => {
    const { tenant } = principalOf(req);
    const id = scenarioId(req.params.id);
    await platform.scenarios.delete(tenant, id);
    return { id, deleted: true };
  });

  /**
   * A new run of the scenario's current version with the run's trigger payload: 202
   * `{ runId, replayOf }`; with `?wait=true`, 200 and the new run's record once it has ended.
   */
  api.post<{ Params: IdParams; Querystring: { wait?: string } }>('/runs/:id/replay', async (req, reply) => {
    const { tenant } = principalOf(req);
    const { id } = req.params;
    if (!RUN_ID_RE.test(id)) throw new ApiError('NOT_FOUND', `no run ${JSON.stringify(id)}`);
    const plan = await planReplay(platform, tenant, id);
    const bytes = Buffer.byteLength(JSON.stringify(plan.payload ?? null));
    const refused = await refuseWhenExhausted({ platform, scenario: plan.scenario, tenant, trigger: plan.trigger, payload: plan.payload, bytes });
    if (refused) {
      if (!refused.run) throw refused.error;
      return isTrue(req.query.wait) ? publicRun(refused.run) : reply.code(202).send({ runId: refused.run.runId, replayOf: id });
    }
    if (!isTrue(req.query.wait)) {
      const run = await platform.trigger(tenant, plan.scenario.id, plan.payload, plan.trigger);
      return reply.code(202).send({ runId: run.runId, replayOf: id });
    }
    leaveGate(req); // waiting for the run's end is no work of this process
    return publicRun(await triggerAndWait(platform, tenant, plan.scenario.id, plan.payload, plan.trigger, ctx.waitTimeoutMs));
  });
}
