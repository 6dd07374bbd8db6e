/**
 * `PUT /api/secrets/:name` `{ "value" }`, `GET /api/secrets`, `DELETE /api/secrets/:name`: the
 * caller's tenant's credentials (SPEC §9). No route ever answers with a value.
 */
import type { FastifyInstance } from 'fastify';
import { checkSecret } from '../services/secrets.js';
import { principalOf } from './auth.js';
import { type ApiContext, ApiError } from './routes-common.js';

interface NameParams {
  name: string;
}

export function registerSecretRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  api.get('/secrets', async (req) => ({ secrets: await platform.secrets.list(principalOf(req).tenant) }));

  api.put<{ Params: NameParams }>('/secrets/:name', async (req) => {
    const { tenant } = principalOf(req);
    const body = req.body as { value?: unknown } | null | undefined;
    if (body === null || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'value')) {
      throw new ApiError('INVALID_INPUT', 'the body must be { "value": "..." }');
    }
    checkSecret(req.params.name, body.value);
    await platform.secrets.set(tenant, req.params.name, body.value as string);
    return { name: req.params.name, set: true };
  });

  api.delete<{ Params: NameParams }>('/secrets/:name', async (req) => {
    const { tenant } = principalOf(req);
    checkSecret(req.params.name);
    if (!(await platform.secrets.delete(tenant, req.params.name))) throw new ApiError('NOT_FOUND', `no secret ${req.params.name}`);
    return { name: req.params.name, deleted: true };
  });
}
