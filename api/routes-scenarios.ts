/**
 * `GET /api/scenarios`, `GET|PUT /api/scenarios/:id`,
 * `POST /api/scenarios/:id/enable|disable|trigger`.
 */
import type { FastifyInstance } from 'fastify';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { nextInstants } from '../core/cron.js';
import { refNames } from '../core/redact.js';
import type { TriggerInfo } from '../core/types.js';
import { cronBudgetWarning } from '../scenario/estimate.js';
import type { Scenario } from '../scenario/schema.js';
import { formatPath, validateScenario } from '../scenario/validate.js';
import { assertEnvAllowed } from '../services/tenant-env.js';
import { principalOf } from './auth.js';
import { refuseWhenExhausted } from './rejected.js';
import { type ApiContext, ApiError, idempotencyKeyOf, isTrue, publicRun, rawBodyOf, SCENARIO_ID_RE, triggerAndWait } from './routes-common.js';
import { leaveGate } from './tenant-gate.js';

interface IdParams {
  id: string;
}

const triggerBody = z.strictObject({
  /** The trigger payload (`msg.payload`); null when left out. */
  payload: z.unknown().optional(),
  /** A non-billable test run. */
  test: z.boolean().optional(),
});

/** A scenario as the API shows it: a webhook's signing secret as `"[set]"` (SPEC §9). */
export function publicScenario(s: Scenario): Scenario {
  if (s.trigger.type !== 'webhook' || s.trigger.secret === undefined) return s;
  return { ...s, trigger: { ...s.trigger, secret: '[set]' } };
}

/**
 * The next instant after `now` a cron trigger fires, ISO 8601 with its timezone's offset; null
 * when it never fires again (or its schedule cannot be read: the list still answers).
 */
export function nextFiring(trigger: { schedule: string; timezone: string }, now: Date): string | null {
  let next: Date | undefined;
  try {
    [next] = nextInstants(trigger.schedule, trigger.timezone, now, 1);
  } catch {
    return null;
  }
  if (!next) return null;
  const dt = DateTime.fromJSDate(next, { zone: trigger.timezone });
  return dt.isValid ? dt.toFormat("yyyy-MM-dd'T'HH:mm:ssZZ") : next.toISOString();
}

export function registerScenarioRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  async function scenarioOf(tenant: string, id: string): Promise<Scenario> {
    const s = SCENARIO_ID_RE.test(id) ? await platform.scenarios.get(tenant, id) : null;
    if (!s) throw new ApiError('NOT_FOUND', `no scenario ${JSON.stringify(id)}`);
    return s;
  }

  /** A warning for each `${secret:NAME}` the tenant has not stored (runs would fail SECRET_MISSING). */
  async function unstoredSecrets(tenant: string, scenario: Scenario): Promise<string[]> {
    const names = [...refNames(scenario, 'secret')].sort();
    if (names.length === 0) return [];
    const stored = new Set((await platform.secrets.list(tenant)).map((s) => s.name));
    return names
      .filter((n) => !stored.has(n))
      .map(
        (n) =>
          `\${secret:${n}} is not stored for tenant ${tenant}; runs fail with SECRET_MISSING until it is (PUT /api/secrets/${n} or flowmeter secrets set ${n})`,
      );
  }

  /**
   * The tenant's scenarios; a cron scenario also has `nextFiring`: its next instant as ISO 8601
   * with the offset of its timezone (like `schedule preview`), null while it is disabled.
   */
  api.get('/scenarios', async (req) => {
    const list = await platform.scenarios.list(principalOf(req).tenant);
    const now = new Date();
    return list.map((s) => (s.trigger.type === 'cron' ? { ...s, nextFiring: s.enabled ? nextFiring(s.trigger, now) : null } : s));
  });

  /** The scenario document, whether it is enabled, and its global variables now. */
  api.get<{ Params: IdParams }>('/scenarios/:id', async (req) => {
    const { tenant } = principalOf(req);
    const scenario = await scenarioOf(tenant, req.params.id);
    const [enabled, vars] = await Promise.all([platform.scenarios.isEnabled(tenant, scenario.id), platform.vars.load(tenant, scenario.id, scenario.variables)]);
    return { scenario: publicScenario(scenario), enabled, vars };
  });

  /**
   * Validates and stores a scenario document as its next version (201 created, 200 replaced;
   * `changed` false and the same `version` for an unchanged document; its enabled state is kept). A document without `id` takes the one of the URL; a different one is refused.
   */
  api.put<{ Params: IdParams }>('/scenarios/:id', async (req, reply) => {
    const { tenant } = principalOf(req);
    const { id } = req.params;
    if (!SCENARIO_ID_RE.test(id)) throw new ApiError('INVALID_INPUT', `a scenario id is 1-64 of a-z 0-9 - _, got ${JSON.stringify(id)}`);
    const doc = req.body;
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      throw new ApiError('INVALID_INPUT', 'the body must be a scenario document (a JSON object)');
    const body = doc as Record<string, unknown>;
    if (body.id === undefined) body.id = id;
    else if (body.id !== id) throw new ApiError('INVALID_INPUT', `the document's id ${JSON.stringify(body.id)} is not the id in the URL ${JSON.stringify(id)}`);
    const result = validateScenario(body);
    if (!result.scenario) {
      throw new ApiError('INVALID_SCENARIO', `the scenario has ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`, {
        details: { problems: result.problems, warnings: result.warnings },
      });
    }
    assertEnvAllowed(result.scenario, platform.tenantEnv);
    const { created, changed, version } = await platform.scenarios.deploy(tenant, result.scenario);
    await ctx.metrics.watch(tenant).catch(() => undefined);
    const enabled = await platform.scenarios.isEnabled(tenant, id);
    const warnings = [...result.warnings, ...(await unstoredSecrets(tenant, result.scenario))];
    return reply.code(created ? 201 : 200).send({ scenario: publicScenario(result.scenario), enabled, created, changed, version, warnings });
  });

  /**
   * Enabling is refused past the tenant's maxActiveScenarios (409 MAX_ACTIVE_SCENARIOS). A cron
   * scenario whose firings until the period's end would pass the actions left is enabled with
   * a warning saying so.
   */
  api.post<{ Params: IdParams }>('/scenarios/:id/enable', async (req) => {
    const { tenant } = principalOf(req);
    const scenario = await scenarioOf(tenant, req.params.id);
    await platform.scenarios.enable(tenant, scenario.id, (await platform.ledger.getQuota(tenant)).maxActiveScenarios);
    const now = new Date();
    const warning = scenario.trigger.type === 'cron' ? cronBudgetWarning(scenario, await platform.ledger.usage(tenant, now), now) : undefined;
    return { id: scenario.id, enabled: true, warnings: warning ? [warning] : [] };
  });

  api.post<{ Params: IdParams }>('/scenarios/:id/disable', async (req) => {
    const { tenant } = principalOf(req);
    const scenario = await scenarioOf(tenant, req.params.id);
    await platform.scenarios.disable(tenant, scenario.id);
    return { id: scenario.id, enabled: false };
  });

  /**
   * Starts a manual run (enabled or not, like `flowmeter trigger`): 202 `{ runId }`; with
   * `?wait=true`, 200 and the run record once it has ended, whatever its status. A run that
   * the quota refuses is recorded as `rejected` (SPEC §4). A repeated `Idempotency-Key` (24 h)
   * answers with the first request's run and starts nothing.
   */
  api.post<{ Params: IdParams; Querystring: { wait?: string } }>('/scenarios/:id/trigger', async (req, reply) => {
    const { tenant } = principalOf(req);
    const parsed = triggerBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
      throw new ApiError('INVALID_INPUT', `the body must be { "payload": ..., "test": boolean }: ${problems.join('; ')}`, { details: { problems } });
    }
    const scenario = await scenarioOf(tenant, req.params.id);
    const trigger: TriggerInfo = { type: 'manual', ...(parsed.data.test && { test: true }) };
    const payload = parsed.data.payload ?? null;
    const idempotencyKey = idempotencyKeyOf(req, `scenario:${scenario.id}`);
    // With the quota used up the run is recorded as rejected here, within bounds (api/rejected.ts),
    // not persisted whole and enqueued for a worker to refuse; the answer is the same.
    const first = idempotencyKey === undefined ? null : await platform.idempotentRun(tenant, idempotencyKey);
    const refused = first ? null : await refuseWhenExhausted({ platform, scenario, tenant, trigger, payload, bytes: rawBodyOf(req).length });
    if (refused) {
      if (!refused.run) throw refused.error;
      return isTrue(req.query.wait) ? publicRun(refused.run) : reply.code(202).send({ runId: refused.run.runId });
    }
    if (!isTrue(req.query.wait)) {
      const run = await platform.trigger(tenant, scenario.id, payload, trigger, { idempotencyKey });
      return reply.code(202).send({ runId: run.runId });
    }
    leaveGate(req); // waiting for the run's end is no work of this process
    return publicRun(await triggerAndWait(platform, tenant, scenario.id, payload, trigger, ctx.waitTimeoutMs, { idempotencyKey }));
  });
}
