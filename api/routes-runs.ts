/** `GET /api/runs`, `GET /api/runs/:id`, `POST /api/runs/:id/resume`. */
import type { FastifyInstance } from 'fastify';
import type { RunStatus } from '../core/types.js';
import { resumeRefusal } from '../engine/resume-check.js';
import { principalOf } from './auth.js';
import { type ApiContext, ApiError, MAX_TASK_PAGE, publicRun, RUN_ID_RE, SCENARIO_ID_RE, secondsUntil } from './routes-common.js';

const STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'halted', 'rejected'];
const MAX_LIMIT = 1000;

interface ListQuery {
  scenario?: string;
  status?: string;
  limit?: string;
}

/** `?taskFrom=N&taskLimit=M`: a page of the task log, the first MAX_TASK_PAGE tasks by default. */
function parseTaskPage(q: { taskFrom?: string; taskLimit?: string }): { from: number; limit: number } {
  const whole = (name: string, v: string | undefined, fallback: number, max: number): number => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) > max) throw new ApiError('INVALID_INPUT', `?${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  return { from: whole('taskFrom', q.taskFrom, 0, Number.MAX_SAFE_INTEGER), limit: whole('taskLimit', q.taskLimit, MAX_TASK_PAGE, MAX_TASK_PAGE) };
}

function parseLimit(v: string | undefined): number {
  if (v === undefined) return 50;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_LIMIT)
    throw new ApiError('INVALID_INPUT', `?limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function registerRunRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  /** Run summaries (no tasks), newest first. */
  api.get<{ Querystring: ListQuery }>('/runs', async (req) => {
    const { tenant } = principalOf(req);
    const { scenario, status } = req.query;
    if (status !== undefined && !STATUSES.includes(status as RunStatus))
      throw new ApiError('INVALID_INPUT', `?status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
    if (scenario !== undefined && !SCENARIO_ID_RE.test(scenario))
      throw new ApiError('INVALID_INPUT', `?scenario must be a scenario id, got ${JSON.stringify(scenario)}`);
    return platform.runs.list(tenant, { scenarioId: scenario, status: status as RunStatus | undefined, limit: parseLimit(req.query.limit) });
  });

  /**
   * One run with a page of its task log (`taskCount` says how many tasks it has; the first
   * MAX_TASK_PAGE by default: a run's log has one task per action, and reading a whole log of
   * 100,000 tasks of up to 32 KB each into this process would take gigabytes). Another
   * tenant's run is a 404, like an unknown one.
   */
  api.get<{ Params: { id: string }; Querystring: { taskFrom?: string; taskLimit?: string } }>('/runs/:id', async (req) => {
    const { tenant } = principalOf(req);
    const page = parseTaskPage(req.query);
    const run = RUN_ID_RE.test(req.params.id) ? await platform.runs.get(tenant, req.params.id, page) : null;
    if (!run) throw new ApiError('NOT_FOUND', `no run ${JSON.stringify(req.params.id)}`);
    return publicRun(run);
  });

  /**
   * Continues a halted run where it stopped: 202, or 409 RUN_NOT_HALTED. A resume that would
   * only halt again (no action left, overage `halt`) is refused up front: 429 QUOTA_EXHAUSTED
   * naming how many actions are missing, with `Retry-After` until the period ends.
   */
  api.post<{ Params: { id: string } }>('/runs/:id/resume', async (req, reply) => {
    const { tenant } = principalOf(req);
    const { id } = req.params;
    const run = RUN_ID_RE.test(id) ? await platform.runs.get(tenant, id, { limit: 0 }) : null;
    if (!run) throw new ApiError('NOT_FOUND', `no run ${JSON.stringify(id)}`);
    if (run.status !== 'halted') throw new ApiError('RUN_NOT_HALTED', `run ${id} is ${run.status}; only a halted run can be resumed`);
    const refusal = await resumeRefusal(platform.ledger, run);
    if (refusal) {
      const { code, message, ...numbers } = refusal;
      throw new ApiError(code, message, { details: numbers, headers: { 'retry-after': String(secondsUntil(refusal.periodEnd)) } });
    }
    await platform.resume(tenant, id); // RUN_NOT_HALTED too when another resume won the race
    return reply.code(202).send({ runId: id, status: 'queued' });
  });
}
