/**
 * The operator dashboard (§8 `GET /`): one static page, plain ES modules, no build step.
 * Files are served from `api/dashboard/` under the package root (the same from source and
 * from `dist/`); the page talks to the JSON API with the operator's key.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, resolve } from 'node:path';
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

/**
 * Browser modules served from the package's own dependencies (no CDN): the dashboard file name →
 * the file, relative to the package's directory. dagre (graph layout) is an ES module of one file.
 */
const VENDORED: Record<string, { pkg: string; file: string }> = {
  'dagre.js': { pkg: '@dagrejs/dagre', file: 'dist/dagre.esm.js' },
};

async function vendored(name: string): Promise<Buffer> {
  const { pkg, file } = VENDORED[name]!;
  const dir = dirname(createRequire(resolve(PACKAGE_ROOT, 'package.json')).resolve(`${pkg}/package.json`));
  // The source map is not served: its comment would only make the browser ask for it.
  return Buffer.from((await readFile(resolve(dir, file), 'utf8')).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));
}

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
 * files present in `api/dashboard/` at start, and the VENDORED modules, are served, so no path
 * can reach anything else.
 */
export async function registerDashboard(app: FastifyInstance, platform: Platform): Promise<void> {
  void platform; // the page reads everything through the API, with the operator's key
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of await readdir(DASHBOARD_DIR)) {
    const type = TYPES[extname(name)];
    if (type && /^[a-z0-9_-]+\.[a-z]+$/.test(name)) files.set(name, { body: await readFile(resolve(DASHBOARD_DIR, name)), type });
  }
  for (const name of Object.keys(VENDORED)) files.set(name, { body: await vendored(name), type: TYPES['.js']! });
  const index = files.get('index.html');
  if (!index) throw new Error(`dashboard: ${resolve(DASHBOARD_DIR, 'index.html')} is missing`);

  app.get('/', async (_req, reply) => secure(reply, index.type).send(index.body));
  app.get<{ Params: { file: string } }>('/dashboard/:file', async (req, reply) => {
    const file = files.get(req.params.file);
    if (!file) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no dashboard file ${JSON.stringify(req.params.file)}` } });
    return secure(reply, file.type).send(file.body);
  });
}
