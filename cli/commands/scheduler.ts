/**
 * `flowmeter scheduler`: fires cron-triggered scenarios (SPEC.md §6) until SIGINT/SIGTERM.
 * Needs Redis: firings are deduplicated across every scheduler sharing the store, so several
 * may run at once and each (scenario, instant) still fires once.
 */
import type { Command } from 'commander';
import { EXIT } from '../errors.js';
import { parseCount } from '../io.js';
import { logger } from '../logger.js';
import type { CommandResult } from '../main.js';
import { openProduction } from '../production-io.js';

/** How long `stop` waits for a tick in progress (e.g. stuck on an unreachable Redis). */
const STOP_GRACE_MS = 5000;

export function registerSchedulerCommand(program: Command, done: (r: CommandResult) => void): void {
  program
    .command('scheduler')
    .description('fire cron-triggered scenarios (needs --redis); several schedulers may run, each firing happens once')
    .option('--catch-up-ms <ms>', "on start, fire instants missed within this window (default: each scenario's trigger.catchUp, else none)")
    .action(async (opts: { catchUpMs?: string }, cmd: Command) => {
      const catchUpMs = opts.catchUpMs === undefined ? undefined : parseCount(opts.catchUpMs, '--catch-up-ms');
      const p = await openProduction(cmd, {
        persistent: true,
        onAlert: (a) => logger.warn(a, `alert: tenant ${a.tenant} reached ${Math.round(a.threshold * 100)}% of ${a.limit} actions in ${a.period}`),
      });
      const { createScheduler } = await import('../../scheduler/scheduler.js'); // node-cron: only here
      const scheduler = createScheduler(p, { logger, catchUpMs });
      // Listen before starting, so a signal during the first tick is not missed.
      const stopping = new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      await scheduler.start();
      logger.info({ pid: process.pid, catchUpMs: catchUpMs ?? 'per scenario' }, 'scheduler ready');
      const signal = await stopping;
      logger.info({ signal }, 'scheduler stopping');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([scheduler.stop(), new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
      clearTimeout(timer);
      await p.close();
      done({ stdout: '', exitCode: EXIT.ok });
    });
}
