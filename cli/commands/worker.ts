/** `flowmeter worker`: a BullMQ worker executing runs until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { parseCount } from '../io.js';
import { openProduction } from '../production-io.js';
import { logger } from '../logger.js';
import type { CommandResult } from '../main.js';
import { EXIT } from '../errors.js';

export function registerWorkerCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('worker')
    .description('a BullMQ worker executing runs (needs --redis)')
    .option('--concurrency <n>', 'runs executed at once', '4')
    .option('--lock-ms <ms>', 'job lock duration; a dead worker\'s runs move on after it', '10000')
    .action(async (opts: { concurrency: string; lockMs: string }, cmd: Command) => {
      const concurrency = parseCount(opts.concurrency, '--concurrency', 1);
      const lockDurationMs = parseCount(opts.lockMs, '--lock-ms', 1000);
      const p = await openProduction(cmd, {
        persistent: true,
        onAlert: (a) => logger.warn(a, `alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of ${a.limit} actions in ${a.period}`),
        onRunEnd: (run, ms) => logger.info({ runId: run.runId, tenant: run.tenant, scenarioId: run.scenarioId, status: run.status, actions: run.actions, ms: Math.round(ms) }, `run ${run.status}`),
      });
      const worker = p.startWorker({ concurrency, lockDurationMs, stalledIntervalMs: Math.max(500, Math.round(lockDurationMs / 2)) });
      let lastError = 0;
      worker.on('error', (err) => {
        if (Date.now() - lastError > 5000) logger.warn({ err: err.message }, 'worker: Redis error, retrying');
        lastError = Date.now();
      });
      worker.on('failed', (job, err) => logger.warn({ runId: job?.data.runId, err: err.message }, 'run interrupted; it will continue from its last checkpoint'));
      await worker.waitUntilReady();
      logger.info({ concurrency, pid: process.pid }, 'worker ready');
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          logger.info({ signal: sig }, 'worker stopping: finishing runs in progress');
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await p.close();
      done({ stdout: '', exitCode: EXIT.ok });
    });
}
