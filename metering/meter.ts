/**
 * The meter's interface: how the executor spends a tenant's actions. Implemented in memory
 * (`ledger.ts`) and on Redis (`../redis/ledger.ts`).
 */
import { type ConnectionUse, type MeterName, TRIGGER_NODE } from '../core/types.js';

/** A request for a batch of actions from the tenant's period pool, for one billable run. */
export interface LeaseRequest {
  tenant: string;
  runId: string;
  /** How many actions the run would like to hold. */
  want: number;
  at: Date;
  /** The run's owner token (production): a worker that lost the run gets nothing. */
  owner?: string;
}

export interface LeaseResult {
  /** Actions granted (0..want). In `allow` mode every request is granted in full. */
  granted: number;
  /** The period the grant belongs to (YYYY-MM in the tenant's timezone). */
  period: string;
  /** Whether the granted actions are held against the limit (halt mode) or free (allow mode). */
  held: boolean;
  /** With granted 0: whether other runs still hold unused actions (then wait, don't halt). */
  othersHold: boolean;
}

/** One billed task: its key, whether it is the trigger's action, and its tenant-local date. */
export interface SettleEntry {
  key: string;
  trigger: boolean;
  date: string;
  /**
   * The node the action was spent on (`$trigger` for the trigger's), for the per-node counts
   * of the period (`Ledger.nodeUsage`); without it the action counts for no node.
   */
  node?: string;
}

/** The node an entry counts for: the trigger's action is `$trigger` whatever `node` says. */
export function entryNode(e: SettleEntry): string {
  return e.trigger ? TRIGGER_NODE : (e.node ?? '');
}

/**
 * What a run spent since its last settlement: each entry is billed once (a key already billed
 * is skipped), `heldUsed` held actions leave the lease, `release` unused held actions go back.
 */
export interface Settlement {
  tenant: string;
  runId: string;
  scenarioId: string;
  billable: boolean;
  period: string;
  entries: SettleEntry[];
  heldUsed: number;
  release: number;
  at: Date;
}

/**
 * The meter: the tenant's quota, spent in batches. A run leases actions (held against the
 * limit, so the limit is never passed), spends them locally, and settles what it spent with
 * its checkpoints: every task key is billed exactly once.
 */
export interface Meter {
  lease(req: LeaseRequest): LeaseResult | Promise<LeaseResult>;
  settle(s: Settlement): void | Promise<void>;
  /** The period key of an instant for the tenant (its timezone). */
  periodOf(tenant: string, at: Date): { period: string; date: string } | Promise<{ period: string; date: string }>;
  /** Adds to an informational meter; with `conn`, to that connection's status too (requests, bytes, errors). */
  count(tenant: string, name: MeterName | 'runs', amount: number, at: Date, conn?: ConnectionUse): void | Promise<void>;
}
