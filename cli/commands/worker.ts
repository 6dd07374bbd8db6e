/** `flowmeter worker`: a BullMQ worker executing runs until SIGINT/SIGTERM. */
import v8 from 'node:v8';
import type { Command } from 'commander';
import { CliError, EXIT } from '../errors.js';
import { parseCount } from '../io.js';
import { logger } from '../logger.js';
import type { CommandResult } from '../main.js';
import { openProduction } from '../production-io.js';

export function registerWorkerCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('worker')
    .description('a BullMQ worker executing runs (needs --redis)')
    .option('--concurrency <n>', "runs executed at once (one more, a quiet tenant's, may run in the worker's express lane, a thread of its own)", '4')
    .option('--lock-ms <ms>', "job lock duration; a dead worker's runs move on after it", '10000')
    .option('--heap-growth <percent>', "how far the heap may grow past what is live before a full GC (0: V8's own policy, up to 300%)", '50')
    .option('--grace <seconds>', 'on SIGTERM/SIGINT: time for runs in progress to reach a checkpoint before the worker exits anyway', '15')
    .option('--crash-limit <n>', 'crashed executions after which a run fails WORKER_CRASHED instead of running again', '2')
    .action(async (opts: { concurrency: string; lockMs: string; heapGrowth: string; grace: string; crashLimit: string }, cmd: Command) => {
      const concurrency = parseCount(opts.concurrency, '--concurrency', 1);
      const crashLimit = parseCount(opts.crashLimit, '--crash-limit', 1);
      const grace = parseCount(opts.grace, '--grace', 0);
      if (grace > 3600) throw new CliError(`--grace must be at most 3600 seconds, got ${opts.grace}`);
      const lockDurationMs = parseCount(opts.lockMs, '--lock-ms', 1000);
      const heapGrowth = parseCount(opts.heapGrowth, '--heap-growth', 0);
      // A run allocates much short-lived garbage (messages in and out of the sandbox, task
      // JSON); V8's default lets the heap grow to 4x the live set before a full GC. A fixed
      // factor keeps a worker's peak memory near what it uses, at no measurable cost in speed.
      if (heapGrowth > 0) v8.setFlagsFromString(`--heap-growing-percent=${heapGrowth}`);
      const p = await openProduction(cmd, {
        persistent: true,
        crashLimit,
        onAlert: (a) => logger.warn(a, `alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of ${a.limit} actions in ${a.period}`),
        // A line per succeeded run only at debug level (thousands a second on a busy worker; the
        // task log has them); runs that failed or halted are logged at info.
        onRunEnd: (run, ms, lane) =>
          logger[run.status === 'succeeded' ? 'debug' : 'info'](
            {
              runId: run.runId,
              tenant: run.tenant,
              scenarioId: run.scenarioId,
              status: run.status,
              actions: run.actions,
              ms: Math.round(ms),
              ...(lane && { lane }),
              ...(run.error && { error: run.error.code, node: run.error.nodeId }),
            },
            run.error ? `run ${run.status}: ${run.error.code}${run.error.nodeId ? ` at node ${run.error.nodeId}` : ''}` : `run ${run.status}`,
          ),
      });
      const worker = p.startWorker({ concurrency, expressThread: true, lockDurationMs, stalledIntervalMs: Math.max(500, Math.round(lockDurationMs / 2)) });
      let lastError = 0;
      worker.on('error', (err) => {
        if (Date.now() - lastError > 5000) logger.warn({ err: err.message }, 'worker: Redis error, retrying');
        lastError = Date.now();
      });
      worker.on('failed', (job, err) =>
        logger.warn({ runId: job?.data.runId, err: err.message }, 'run interrupted; it will continue from its last checkpoint'),
      );
      await worker.waitUntilReady();
      logger.info({ concurrency, pid: process.pid }, 'worker ready');
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          logger.info({ signal: sig, grace }, 'worker stopping: runs in progress stop at their next checkpoint and continue elsewhere');
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      // Runs stop at their next checkpoint and are handed back; past the grace (Redis gone, a
      // long wave), the process exits anyway: its jobs' locks lapse and other workers continue
      // the runs from their last checkpoints. A second signal exits at once.
      p.stopRuns();
      const exitNow = (why: string) => {
        logger.warn({ grace }, `worker exiting now: ${why}; unfinished runs continue elsewhere from their last checkpoint`);
        process.exit(EXIT.failed);
      };
      const timer = setTimeout(() => exitNow(`the grace of ${grace} s is over`), grace * 1000);
      process.once('SIGINT', () => exitNow('a second signal'));
      process.once('SIGTERM', () => exitNow('a second signal'));
      await p.close();
      clearTimeout(timer);
      logger.info('worker stopped');
      done({ stdout: '', exitCode: EXIT.ok });
    });
}
