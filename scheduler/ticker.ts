/** The scheduler's default live ticker (node-cron, every second). */
import cron, { type ScheduledTask } from 'node-cron';
import type { SchedulerLogger, Ticker } from './scheduler.js';

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The default ticker: node-cron when `tickMs` is a whole number of seconds dividing a minute, else a timer. */
export function nodeCronTicker(log: SchedulerLogger): Ticker {
  return (onTick, tickMs) => {
    const seconds = tickMs / 1000;
    if (Number.isInteger(seconds) && seconds >= 1 && 60 % seconds === 0) {
      const expression = seconds === 1 ? '* * * * * *' : `*/${seconds} * * * * *`;
      const task: ScheduledTask = cron.createTask(expression, onTick, {
        name: 'flowmeter-scheduler',
        // Missed seconds do not matter: each tick covers everything since the last one.
        suppressMissedWarning: true,
        logger: {
          info: () => undefined,
          debug: () => undefined,
          warn: (m) => log.warn({}, `scheduler: node-cron: ${m}`),
          error: (m) => log.warn({}, `scheduler: node-cron: ${message(m)}`),
        },
      });
      void task.start();
      return { stop: async () => void (await task.destroy()) };
    }
    const timer = setInterval(onTick, tickMs);
    return { stop: () => clearInterval(timer) };
  };
}
