/**
 * `flowmeter serve [--port P] [--host H]`: the HTTP API, webhook endpoints and the dashboard
 * (SPEC §8), until SIGINT/SIGTERM. With --redis / FLOWMETER_REDIS_URL it serves the production
 * store (runs are executed by `flowmeter worker` processes, or in this one with --worker);
 * without, an embedded in-memory platform that executes runs in this process.
 */
import type { Command } from 'commander';
// The server's modules (fastify, prom-client) are loaded when `serve` runs, not by every command.
import { DEFAULT_BODY_LIMIT, tenantRequestsSetting } from '../../api/limits.js';
import { createEmbedded } from '../../engine/embedded.js';
import type { Platform } from '../../engine/platform.js';
import { safeRedisUrl } from '../../redis/client.js';
import { CliError, EXIT } from '../errors.js';
import { cliIo, parseCount } from '../io.js';
import { logger } from '../logger.js';
import type { CommandResult } from '../main.js';
import { type GlobalOpts, openProduction } from '../production-io.js';

interface ServeOpts {
  port: string;
  host: string;
  bodyLimit: string;
  worker?: boolean;
  concurrency: string;
}

export function registerServeCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('serve')
    .description('the HTTP API, webhook endpoints and the operator dashboard')
    .option('--port <port>', 'TCP port', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--body-limit <bytes>', 'largest request body accepted', String(DEFAULT_BODY_LIMIT))
    .option('--worker', 'with --redis: also execute runs in this process (like `flowmeter worker`)')
    .option('--concurrency <n>', 'with --worker: runs executed at once', '4')
    .action(async (opts: ServeOpts, cmd: Command) => {
      const { env } = cliIo();
      const port = parseCount(opts.port, '--port', 0);
      if (port > 65535) throw new CliError(`--port must be at most 65535, got ${opts.port}`);
      const bodyLimit = parseCount(opts.bodyLimit, '--body-limit', 1);
      const concurrency = parseCount(opts.concurrency, '--concurrency', 1);
      const tenantRequests = tenantRequestsSetting(env);
      const redisUrl = (cmd.optsWithGlobals() as GlobalOpts).redis ?? env.FLOWMETER_REDIS_URL;
      if (opts.worker && !redisUrl)
        throw new CliError('--worker needs --redis URL (or FLOWMETER_REDIS_URL); without Redis, serve executes runs in process anyway');

      let platform: Platform;
      if (redisUrl) {
        const p = await openProduction(cmd, {
          persistent: true,
          failFast: true,
          onAlert: (a) => logger.warn(a, `alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of ${a.limit} actions in ${a.period}`),
        });
        if (opts.worker) {
          const w = p.startWorker({ concurrency, expressThread: true });
          w.on('error', (err) => logger.warn({ err: err.message }, 'worker: Redis error, retrying'));
        }
        platform = p;
        logger.info(
          `production platform on Redis ${safeRedisUrl(redisUrl)}${opts.worker ? `, executing runs here (concurrency ${concurrency})` : '; runs are executed by `flowmeter worker` processes'}`,
        );
      } else {
        platform = createEmbedded({
          onAlert: (a) => logger.warn(a, `alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of ${a.limit} actions in ${a.period}`),
        });
        logger.info('embedded platform: in memory, runs executed in this process; everything is lost when it stops (pass --redis URL to keep it)');
      }

      const adminKey = env.FLOWMETER_ADMIN_KEY || undefined;
      if (!adminKey)
        logger.warn('FLOWMETER_ADMIN_KEY is not set: only tenant keys (`flowmeter keys create`) can use /api, and nobody can change quotas through it');

      const { buildServer } = await import('../../api/server.js');
      const app = await buildServer(platform, { adminKey, bodyLimit, tenantRequests, logger: env.FLOWMETER_LOG_REQUESTS === '1' });
      try {
        await app.listen({ port, host: opts.host });
      } catch (err) {
        await app.close().catch(() => undefined);
        await platform.close();
        const code = (err as NodeJS.ErrnoException).code;
        throw new CliError(
          `cannot listen on ${opts.host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use' : (code ?? (err as Error).message)}`,
          EXIT.failed,
        );
      }
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      logger.info(`flowmeter serving on http://${shownHost}:${actualPort} (dashboard at /, API at /api, webhooks at /hooks/:tenant/:path)`);

      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping: closing the server');
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await app.close();
      await platform.close();
      done({ stdout: '', exitCode: EXIT.ok });
    });
}
