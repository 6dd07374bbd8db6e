/**
 * `flowmeter dev`: server, worker and scheduler in one process on the embedded default (in
 * memory, nothing to install), with scenario files deployed and enabled, for trying things.
 */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createEmbedded } from '../../engine/embedded.js';
import { EXIT } from '../errors.js';
import { cliIo, loadScenarioFile, parseCount, requireValid } from '../io.js';
import { logger } from '../logger.js';
import type { CommandResult } from '../main.js';
import { tenantOf } from '../production-io.js';

function defaultFiles(): string[] {
  try {
    return readdirSync('examples')
      .filter((f) => f.endsWith('.json') && !f.endsWith('.input.json'))
      .map((f) => join('examples', f));
  } catch {
    return [];
  }
}

export function registerDevCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('dev')
    .description('server, worker and scheduler in one process, in memory (nothing persists)')
    .argument('[files...]', 'scenario files to deploy and enable (default: examples/*.json)')
    .option('--port <port>', 'HTTP port', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--tenant <tenant>', 'tenant to deploy to', 'default')
    .option('--quota <n>', 'monthly actions of the tenant', '500')
    .action(async (files: string[], opts: { port: string; host: string; quota: string }, cmd: Command) => {
      const port = parseCount(opts.port, '--port');
      const monthlyActions = parseCount(opts.quota, '--quota');
      const tenant = tenantOf(cmd);
      const scenarios = (files.length ? files : defaultFiles()).map((f) => requireValid(f, loadScenarioFile(f)));
      const platform = createEmbedded({
        onAlert: (a) => logger.warn(a, `alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of ${a.limit} actions`),
        onRunEnd: (run) => logger.info({ runId: run.runId, scenarioId: run.scenarioId, status: run.status, actions: run.actions }, `run ${run.status}`),
      });
      await platform.ledger.setQuota(tenant, { monthlyActions });
      for (const s of scenarios) {
        await platform.scenarios.deploy(tenant, s);
        await platform.scenarios.enable(tenant, s.id, undefined);
      }
      const key = await platform.keys.create(tenant);
      const adminKey = cliIo().env.FLOWMETER_ADMIN_KEY;
      // Loaded here, not by every command: fastify, prom-client, node-cron.
      const [{ buildServer }, { createScheduler }] = await Promise.all([import('../../api/server.js'), import('../../scheduler/scheduler.js')]);
      const app = await buildServer(platform, { adminKey });
      const scheduler = createScheduler(platform, { logger });
      await app.listen({ port, host: opts.host });
      await scheduler.start();
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const base = `http://${opts.host}:${actualPort}`;
      cliIo().stderr.write(
        `flowmeter dev: in memory, tenant ${tenant}, ${scenarios.length} scenario${scenarios.length === 1 ? '' : 's'} enabled (${scenarios.map((s) => s.id).join(', ') || 'none'})\n` +
          `  dashboard  ${base}/#key=${key}\n` +
          `  webhooks   POST ${base}/hooks/${tenant}/<path>\n` +
          `  API        curl -H 'Authorization: Bearer ${key}' ${base}/api/runs\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await scheduler.stop();
      await app.close();
      await platform.close();
      done({ stdout: '', exitCode: EXIT.ok });
    });
}
