/**
 * Notifications (SPEC §11): each alert threshold crossing, each run halted for quota and each
 * period reset is mailed to the tenant's `notifyEmails` (through the Mail transport) and POSTed
 * to its `notifyWebhook`, signed as in §9 (`X-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">`) with the tenant's webhook signing secret, retried with backoff. Deliveries
 * run in the background: they never block or fail a run. Each outcome is logged per tenant.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { errorMessage } from '../core/errors.js';
import type { Ledger } from '../metering/ledger.js';
import type { MailSender } from '../nodes/define.js';

export type NotificationType = 'quota.alert' | 'run.halted' | 'period.reset';

export interface Notification {
  id: string;
  type: NotificationType;
  tenant: string;
  period: string;
  at: string;
  data: Record<string, unknown>;
}

export interface Delivery {
  notification: string;
  type: NotificationType;
  channel: 'email' | 'webhook';
  target: string;
  status: 'delivered' | 'failed';
  attempts: number;
  at: string;
  error?: string;
}

/** Where signing secrets, delivery logs and the last period seen live (memory or Redis). */
export interface NotificationStore {
  /** The tenant's webhook signing secret, made on first use. */
  secret(tenant: string): Promise<string>;
  log(tenant: string, d: Delivery): Promise<void>;
  /** The latest deliveries, newest first. */
  deliveries(tenant: string, limit?: number): Promise<Delivery[]>;
  /** Records `period` as the tenant's current one; answers the previous one (null: none yet). */
  swapPeriod(tenant: string, period: string): Promise<string | null>;
}

/** How many deliveries are kept per tenant. */
export const DELIVERY_LOG_SIZE = 200;

export function newSigningSecret(): string {
  return `whsec_${randomBytes(24).toString('hex')}`;
}

/** The §9 signature header of `body` at `t` (unix seconds). */
export function signature(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export class MemoryNotificationStore implements NotificationStore {
  private secrets = new Map<string, string>();
  private logs = new Map<string, Delivery[]>();
  private periods = new Map<string, string>();
  async secret(tenant: string): Promise<string> {
    let s = this.secrets.get(tenant);
    if (!s) this.secrets.set(tenant, (s = newSigningSecret()));
    return s;
  }
  async log(tenant: string, d: Delivery): Promise<void> {
    this.logs.set(tenant, [d, ...(this.logs.get(tenant) ?? [])].slice(0, DELIVERY_LOG_SIZE));
  }
  async deliveries(tenant: string, limit = 50): Promise<Delivery[]> {
    return structuredClone((this.logs.get(tenant) ?? []).slice(0, limit));
  }
  async swapPeriod(tenant: string, period: string): Promise<string | null> {
    const old = this.periods.get(tenant) ?? null;
    this.periods.set(tenant, period);
    return old;
  }
}

export interface NotifierOptions {
  ledger: Ledger;
  store: NotificationStore;
  mail: MailSender;
  fetch?: typeof fetch;
  /** Waits between webhook attempts, ms (default 1 s, 5 s, 30 s, 2 min: five attempts). */
  retryDelaysMs?: number[];
  /** Sender address (default FLOWMETER_MAIL_FROM or flowmeter@localhost). */
  from?: string;
  /** One webhook attempt's timeout, ms (default 10 s). */
  timeoutMs?: number;
}

const SUBJECTS: Record<NotificationType, (n: Notification) => string> = {
  'quota.alert': (n) => `Flowmeter: ${n.tenant} used ${Math.round(Number(n.data.threshold) * 100)}% of its actions for ${n.period}`,
  'run.halted': (n) => `Flowmeter: run ${String(n.data.runId)} of ${n.tenant} halted, quota exhausted`,
  'period.reset': (n) => `Flowmeter: ${n.tenant}'s usage reset for ${n.period}`,
};

export class Notifier {
  private pending = new Set<Promise<void>>();
  constructor(private readonly opts: NotifierOptions) {}

  /** Sends in the background (never throws); `idle()` resolves once every send has ended. */
  notify(tenant: string, type: NotificationType, at: Date, data: Record<string, unknown>, period?: string): void {
    const p = this.send(tenant, type, at, data, period).catch((err) => {
      process.stderr.write(`flowmeter: notification ${type} for ${tenant}: ${errorMessage(err)}\n`);
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async idle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /**
   * Sends `period.reset` for each tenant whose current period at `at` is not the one last seen
   * (once across processes: the store swaps the period atomically). The first sight of a
   * tenant only records its period.
   */
  async sweepResets(tenants: string[], at: Date): Promise<void> {
    for (const tenant of tenants) {
      const q = await this.opts.ledger.getQuota(tenant);
      if (!q.notifyEmails?.length && !q.notifyWebhook) continue;
      const { period } = await this.opts.ledger.periodOf(tenant, at);
      const old = await this.opts.store.swapPeriod(tenant, period);
      if (old !== null && old !== period) this.notify(tenant, 'period.reset', at, { previous: old, limit: q.monthlyActions }, period);
    }
  }

  private async send(tenant: string, type: NotificationType, at: Date, data: Record<string, unknown>, period?: string): Promise<void> {
    const q = await this.opts.ledger.getQuota(tenant);
    if (!q.notifyEmails?.length && !q.notifyWebhook) return;
    const n: Notification = {
      id: randomUUID(),
      type,
      tenant,
      period: period ?? (await this.opts.ledger.periodOf(tenant, at)).period,
      at: at.toISOString(),
      data,
    };
    const jobs: Array<Promise<void>> = [];
    if (q.notifyEmails?.length) jobs.push(this.mail(n, q.notifyEmails));
    if (q.notifyWebhook) jobs.push(this.post(n, q.notifyWebhook));
    await Promise.all(jobs);
  }

  private async mail(n: Notification, to: string[]): Promise<void> {
    const from = this.opts.from ?? process.env.FLOWMETER_MAIL_FROM ?? 'flowmeter@localhost';
    let error: string | undefined;
    try {
      await this.opts.mail.send({ from, to: to.join(', '), subject: SUBJECTS[n.type](n), text: `${SUBJECTS[n.type](n)}\n\n${JSON.stringify(n, null, 2)}\n` });
    } catch (err) {
      error = errorMessage(err);
    }
    await this.opts.store.log(n.tenant, {
      notification: n.id,
      type: n.type,
      channel: 'email',
      target: to.join(','),
      status: error ? 'failed' : 'delivered',
      attempts: 1,
      at: new Date().toISOString(),
      ...(error && { error }),
    });
  }

  private async post(n: Notification, url: string): Promise<void> {
    const body = JSON.stringify(n);
    const secret = await this.opts.store.secret(n.tenant);
    const delays = this.opts.retryDelaysMs ?? [1000, 5000, 30_000, 120_000];
    const doFetch = this.opts.fetch ?? fetch;
    let attempts = 0;
    let error = '';
    for (;;) {
      attempts++;
      try {
        const res = await doFetch(url, {
          method: 'POST',
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
          headers: { 'content-type': 'application/json', 'x-signature': signature(secret, body, Math.floor(Date.now() / 1000)), 'x-flowmeter-event': n.type },
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) {
          error = '';
          break;
        }
        error = `HTTP ${res.status}`;
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        error = cause ?? errorMessage(err);
      }
      if (attempts > delays.length) break;
      await new Promise((r) => setTimeout(r, delays[attempts - 1]));
    }
    await this.opts.store.log(n.tenant, {
      notification: n.id,
      type: n.type,
      channel: 'webhook',
      target: url,
      status: error ? 'failed' : 'delivered',
      attempts,
      at: new Date().toISOString(),
      ...(error && { error }),
    });
  }
}
