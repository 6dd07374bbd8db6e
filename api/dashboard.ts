/**
 * The operator dashboard (§8 `GET /`): one static page, plain ES modules, no build step.
 * Files are served from `api/dashboard/` under the package root (the same from source and
 * from `dist/`); the page talks to the JSON API with the operator's key.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PACKAGE_ROOT } from '../core/package-root.js';
import type { Platform } from '../engine/platform.js';

/** Where the page's files live. */
export const DASHBOARD_DIR = resolve(PACKAGE_ROOT, 'api', 'dashboard');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Only same-origin scripts, styles and API calls; nothing inline, nothing external. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function secure(reply: FastifyReply, type: string): FastifyReply {
  return reply
    .header('content-type', type)
    .header('cache-control', 'no-cache')
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

/**
 * Registers `GET /` (the page) and `GET /dashboard/<file>` (its scripts and styles). Only the
 * files present in `api/dashboard/` at start are served, so no path can reach anything else.
 */
export async function registerDashboard(app: FastifyInstance, platform: Platform): Promise<void> {
  void platform; // the page reads everything through the API, with the operator's key
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of await readdir(DASHBOARD_DIR)) {
    const type = TYPES[extname(name)];
    if (type && /^[a-z0-9_-]+\.[a-z]+$/.test(name)) files.set(name, { body: await readFile(resolve(DASHBOARD_DIR, name)), type });
  }
  const index = files.get('index.html');
  if (!index) throw new Error(`dashboard: ${resolve(DASHBOARD_DIR, 'index.html')} is missing`);

  app.get('/', async (_req, reply) => secure(reply, index.type).send(index.body));
  app.get<{ Params: { file: string } }>('/dashboard/:file', async (req, reply) => {
    const file = files.get(req.params.file);
    if (!file) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no dashboard file ${JSON.stringify(req.params.file)}` } });
    return secure(reply, file.type).send(file.body);
  });
}
