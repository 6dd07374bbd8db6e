/** Whether the quota lets a trigger start (pure: a quota and a usage report in, a reason out). */
import type { TriggerInfo } from '../core/types.js';
import type { Scenario } from '../scenario/schema.js';
import type { Quota, UsageReport } from './quota.js';

/**
 * Why a trigger of `scenario` may not start now, or null: a billable one while the quota is
 * exhausted (overage `halt`); a non-billable one once the period's non-billable actions have
 * reached the quota (monthlyActions + add-ons), whatever the overage mode.
 */
export function refusalOf(scenario: Scenario, trigger: TriggerInfo, quota: Quota, usage: UsageReport): string | null {
  if (scenario.billable === false || trigger.test === true) {
    const most = quota.monthlyActions + usage.addOns;
    return usage.nonBillable >= most
      ? `the tenant's non-billable actions (test runs, non-billable scenarios) for this period are used up: ${usage.nonBillable.toLocaleString('en-US')} of ${most.toLocaleString('en-US')}, as many as its quota`
      : null;
  }
  return quota.overage === 'halt' && usage.remaining <= 0 ? "the tenant's actions for this period are used up" : null;
}
