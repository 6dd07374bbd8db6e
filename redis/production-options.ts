/**
 * The options of production mode (createProduction in production.ts).
 */
import type { RunRecord } from '../core/types.js';
import type { LedgerOptions } from '../metering/ledger.js';
import type { NodeServices } from '../nodes/define.js';
import type { SandboxPoolOptions } from '../services/sandbox-pool.js';
import type { Lane } from './run-execution.js';

export interface ProductionOptions extends LedgerOptions {
  /** The Redis server, e.g. `redis://127.0.0.1:6379` (required: no default). */
  redisUrl: string;
  /** Key prefix (default `fm`); tests use a unique one each. */
  prefix?: string;
  /** Days ended runs are kept (default 30). */
  retentionDays?: number;
  /** Environment for `${env:…}` and the FLOWMETER_* settings read here (SMTP, egress, queue shards) (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Replaces some node services, e.g. in tests (default: the sandbox, mail, env, egress-policed fetch and sleep built here). */
  services?: Partial<NodeServices>;
  /** The Function sandbox's host processes of this process (size default min(2, CPUs)). */
  sandbox?: SandboxPoolOptions;
  /** The clock, for billing periods and timestamps (default: the system clock, `new Date()`). */
  now?: () => Date;
  /** Cap on a task's stored input/output, in bytes (default 16 KB; the CLI reads FLOWMETER_TASK_BYTES). */
  taskBytes?: number;
  /** Long-lived process (worker, server): reconnect forever instead of failing fast. */
  persistent?: boolean;
  /**
   * Servers: while Redis is unreachable commands fail at once (REDIS_UNAVAILABLE in the API) and
   * are never replayed after a reconnect; see ConnectOptions.failFast. Workers leave it off.
   */
  failFast?: boolean;
  /** Called when a worker of this process has ended a run (logging, metrics); `lane` 'express': its express lane did (express-lane.ts). */
  onRunEnd?: (run: RunRecord, ms: number, lane?: Lane) => void;
  /** Crashed executions after which a run fails with WORKER_CRASHED (default 2, SPEC §10). */
  crashLimit?: number;
  /** Waits between notification webhook attempts, ms (tests: short ones). */
  notifyRetryDelaysMs?: number[];
}
