/**
 * `GET /api/keys` (the caller's tenant's keys: id, created, last used; never a key) and
 * `DELETE /api/keys/:id` (revokes one of them: 401 at once for that key, in every server).
 */
import type { FastifyInstance } from 'fastify';
import { KEY_ID_RE } from '../services/api-keys.js';
import { principalOf } from './auth.js';
import { type ApiContext, ApiError } from './routes-common.js';

export function registerKeyRoutes(api: FastifyInstance, ctx: ApiContext): void {
  const { platform } = ctx;

  api.get('/keys', async (req) => ({ keys: await platform.keys.list(principalOf(req).tenant) }));

  api.delete<{ Params: { id: string } }>('/keys/:id', async (req) => {
    const { tenant } = principalOf(req);
    const { id } = req.params;
    // Another tenant's key is as unknown as a key that does not exist.
    if (!KEY_ID_RE.test(id) || !(await platform.keys.revoke(id, tenant))) throw new ApiError('NOT_FOUND', `no key ${JSON.stringify(id.slice(0, 40))}`);
    return { id, revoked: true };
  });
}
