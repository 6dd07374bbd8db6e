/** `GET|PUT /api/plan`, `GET /api/invoice`, `GET /api/usage/history`, `GET /api/notifications[/secret]` (SPEC §11). */
import type { FastifyInstance } from 'fastify';
import { errorMessage } from '../core/errors.js';
import { usageHistory } from '../metering/history.js';
import { invoiceOf } from '../metering/invoice.js';
import { parsePlan, planDocument } from '../metering/plan.js';
import { principalOf, requireAdmin } from './auth.js';
import { type ApiContext, ApiError, periodParam } from './routes-common.js';

export function registerBillingRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { ledger } = ctx.platform;

  /** The tenant's plan document (prices in major units); 404 when none is set. */
  api.get('/plan', async (req) => {
    const { tenant } = principalOf(req);
    const plan = await ledger.getPlan(tenant);
    if (!plan) throw new ApiError('NOT_FOUND', `tenant ${tenant} has no plan`);
    return planDocument(plan);
  });

  /** Admin only: sets the plan (and the quota's monthlyActions to its includedActions). */
  api.put('/plan', async (req) => {
    const { tenant } = requireAdmin(req);
    let plan;
    try {
      plan = parsePlan(req.body);
    } catch (err) {
      throw new ApiError('INVALID_INPUT', errorMessage(err));
    }
    await ledger.setPlan(tenant, plan);
    return planDocument(plan);
  });

  /** The invoice of the current period (a preview) or `?period=YYYY-MM`; 404 without a plan. */
  api.get<{ Querystring: { period?: string } }>('/invoice', async (req) => {
    const { tenant } = principalOf(req);
    const period = periodParam(req.query.period);
    return invoiceOf(ledger, tenant, new Date(), period);
  });

  /** The tenant's latest notification deliveries, newest first (`?limit=`, default 50, at most 200). */
  api.get<{ Querystring: { limit?: string } }>('/notifications', async (req) => {
    const { tenant } = principalOf(req);
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 200)
      throw new ApiError('INVALID_INPUT', `?limit must be a whole number from 1 to 200, got ${JSON.stringify(req.query.limit)}`);
    const store = ctx.platform.notifications;
    return { deliveries: store ? await store.deliveries(tenant, limit) : [] };
  });

  /** The tenant's webhook signing secret (made on first use): verify X-Signature with it. */
  api.get('/notifications/secret', async (req) => {
    const { tenant } = principalOf(req);
    const store = ctx.platform.notifications;
    if (!store) throw new ApiError('NOT_FOUND', 'this server sends no notifications');
    return { secret: await store.secret(tenant) };
  });

  /** One summary per period, newest first: `?months=N` (default 12, at most 120). */
  api.get<{ Querystring: { months?: string } }>('/usage/history', async (req) => {
    const { tenant } = principalOf(req);
    const months = req.query.months === undefined ? 12 : Number(req.query.months);
    if (!Number.isInteger(months) || months < 1 || months > 120)
      throw new ApiError('INVALID_INPUT', `?months must be a whole number from 1 to 120, got ${JSON.stringify(req.query.months)}`);
    return usageHistory(ledger, tenant, new Date(), months);
  });
}
