/** `GET /api/usage`, `GET|PUT /api/quota`, `POST /api/quota/addons`. */
import type { FastifyInstance } from 'fastify';
import { OPTIONAL_QUOTA_FIELDS, type QuotaPatch, quotaSchema } from '../metering/quota.js';
import { formatPath } from '../scenario/validate.js';
import { principalOf, requireAdmin } from './auth.js';
import { type ApiContext, ApiError, periodParam } from './routes-common.js';

const patchSchema = quotaSchema.partial();

function asObject(body: unknown, what: string): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError('INVALID_INPUT', `the body must be ${what} (a JSON object)`);
  return body as Record<string, unknown>;
}

export function registerUsageRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { ledger } = ctx.platform;

  /** The usage report of SPEC §7, for the current period or `?period=YYYY-MM`. */
  api.get<{ Querystring: { period?: string } }>('/usage', async (req) => {
    const { tenant } = principalOf(req);
    const period = periodParam(req.query.period);
    return ledger.usage(tenant, new Date(), period);
  });

  api.get('/quota', async (req) => ledger.getQuota(principalOf(req).tenant));

  /**
   * Admin only: changes the fields given (monthlyActions, overage, timezone, alerts,
   * maxActiveScenarios, …); null unsets an optional one (maxActiveScenarios: null, no limit).
   */
  api.put('/quota', async (req) => {
    const { tenant } = requireAdmin(req);
    const body = asObject(req.body, 'a partial quota');
    const unset = new Set<string>(OPTIONAL_QUOTA_FIELDS.filter((f) => body[f] === null));
    const parsed = patchSchema.safeParse(Object.fromEntries(Object.entries(body).filter(([k]) => !unset.has(k))));
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
      throw new ApiError('INVALID_INPUT', `invalid quota: ${problems.join('; ')}`, { details: { problems } });
    }
    // partial() still fills defaults in: keep only the fields the body names.
    const patch = Object.fromEntries(Object.entries(parsed.data).filter(([k]) => k in body)) as QuotaPatch;
    for (const f of unset) patch[f as (typeof OPTIONAL_QUOTA_FIELDS)[number]] = undefined;
    return ledger.setQuota(tenant, patch);
  });

  /** Admin only: extra actions for the current period; answers the new usage report. */
  api.post('/quota/addons', async (req) => {
    const { tenant } = requireAdmin(req);
    const { actions, expires, ...rest } = asObject(req.body, '{ "actions": N, "expires"?: ISO }');
    if (Object.keys(rest).length)
      throw new ApiError(
        'INVALID_INPUT',
        `unknown field${Object.keys(rest).length > 1 ? 's' : ''} ${Object.keys(rest)
          .map((k) => JSON.stringify(k))
          .join(', ')}`,
      );
    if (typeof actions !== 'number' || !Number.isSafeInteger(actions) || actions <= 0)
      throw new ApiError('INVALID_INPUT', `actions must be a positive whole number, got ${JSON.stringify(actions)}`);
    const now = new Date();
    if (expires !== undefined && (typeof expires !== 'string' || Number.isNaN(Date.parse(expires))))
      throw new ApiError('INVALID_INPUT', `expires must be an ISO 8601 date-time, got ${JSON.stringify(expires)}`);
    await ledger.addActions(tenant, actions, now, { expires: expires === undefined ? undefined : new Date(expires) });
    return ledger.usage(tenant, now);
  });
}
