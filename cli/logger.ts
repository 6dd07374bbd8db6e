/**
 * The command line's logger: pino, to stderr, level from FLOWMETER_LOG_LEVEL (default info).
 * Writes are asynchronous (a worker logs a line per run: a blocking write per run costs), and
 * flushed when the process exits normally.
 */
import { pino } from 'pino';

const destination = pino.destination({ fd: 2, sync: false });

export const logger = pino({ level: process.env.FLOWMETER_LOG_LEVEL ?? 'info', base: undefined }, destination);

process.once('exit', () => {
  try {
    destination.flushSync();
  } catch {
    // nothing left to write, or stderr is gone
  }
});
