/** The command line's logger: pino, to stderr, level from FLOWMETER_LOG_LEVEL (default info). */
import { pino } from 'pino';

export const logger = pino(
  { level: process.env.FLOWMETER_LOG_LEVEL ?? 'info', base: undefined },
  pino.destination({ fd: 2, sync: true }),
);
