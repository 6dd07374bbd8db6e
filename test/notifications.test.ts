/**
 * Notifications (SPEC §11): alert crossings, quota halts and period resets, mailed through a
 * real SMTP server and POSTed, signed, to a real HTTP server; retried, logged, never blocking.
 */

import { createHmac } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import type { RunRecord } from '../core/types.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { waitUntil } from './helpers/processes.js';
import { useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const loopDoc = {
  id: 'metered',
  start: 'each',
  nodes: [
    { id: 'each', type: 'loop', over: 'msg.payload', body: 'double', collect: true, next: 'done' },
    fn('double', 'return { payload: msg.payload * 2 };'),
    fn('done', 'return { payload: msg.payload.length };'),
  ],
};

let smtp: SMTPServer;
let smtpUrl: string;
let mails: Array<{ to: string[]; raw: string }> = [];
let peer: Peer;
let deadPort: number;
beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((a) => a.address), raw: Buffer.concat(chunks).toString('utf8') });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}?pool=false`;
  peer = await startPeer();
  peer.on('POST', '/hook', () => ({ status: 204 }));
  // A port nothing listens on: the webhook is unreachable.
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  deadPort = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
});
afterAll(async () => {
  await peer.close();
  await new Promise<void>((r) => smtp.close(() => r()));
});

type Made = { platform: Platform; now: { t: Date } };
const platforms: Array<[string, () => Promise<Made>]> = [
  [
    'embedded',
    async () => {
      const now = { t: new Date() };
      return { platform: createEmbedded({ env: { FLOWMETER_SMTP_URL: smtpUrl }, notifyRetryDelaysMs: [5, 5], now: () => now.t }), now };
    },
  ],
  [
    'redis',
    async () => {
      const now = { t: new Date() };
      const p = await useProduction({ env: { FLOWMETER_SMTP_URL: smtpUrl }, notifyRetryDelaysMs: [5, 5], now: () => now.t });
      p.startWorker({ concurrency: 2 });
      return { platform: p, now };
    },
  ],
];

let made: Made | null = null;
afterEach(async () => {
  await made?.platform.notifier?.idle();
  await made?.platform.close();
  made = null;
  mails = [];
  peer.reset();
});

async function ended(p: Platform, tenant: string, runId: string): Promise<RunRecord> {
  return waitUntil(
    `run ${runId} to end`,
    async () => {
      const r = await p.runs.get(tenant, runId);
      return r && !['queued', 'running'].includes(r.status) ? r : null;
    },
    { timeoutMs: 20_000, intervalMs: 25 },
  );
}

const verify = (secret: string, header: string, body: string): boolean => {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  return !!m && createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex') === m[2];
};

describe.each(platforms)('notifications on the %s platform', (_mode, make) => {
  it('alerts and a quota halt are mailed and POSTed signed, once each; logged per tenant', async () => {
    made = await make();
    const p = made.platform;
    await p.scenarios.deploy('acme', scenarioOf(loopDoc));
    await p.ledger.setQuota('acme', {
      monthlyActions: 4,
      alerts: [0.5, 1],
      resumeHalted: 'manual',
      notifyEmails: ['ops@acme.test', 'cfo@acme.test'],
      notifyWebhook: `${peer.base}/hook`,
    });
    const run = await ended(p, 'acme', (await p.trigger('acme', 'metered', [1, 2, 3, 4], { type: 'manual' })).runId);
    expect(run.status).toBe('halted');
    const log = await waitUntil('six deliveries', async () => {
      const d = await p.notifications!.deliveries('acme');
      return d.length >= 6 ? d : null;
    });
    await p.notifier!.idle();
    expect(log).toHaveLength(6);
    expect(log.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    const secret = await p.notifications!.secret('acme');
    expect(secret).toMatch(/^whsec_[0-9a-f]{48}$/);
    const posts = peer.requests.filter((r) => r.path === '/hook');
    expect(posts.map((r) => (r.body as { type: string }).type).sort()).toEqual(['quota.alert', 'quota.alert', 'run.halted']);
    for (const r of posts) expect(verify(secret, String(r.headers['x-signature']), r.raw)).toBe(true);
    expect(
      posts
        .map((r) => (r.body as { data: { threshold?: number } }).data.threshold)
        .filter(Boolean)
        .sort(),
    ).toEqual([0.5, 1]);
    const halted = posts.find((r) => (r.body as { type: string }).type === 'run.halted')!.body as { tenant: string; data: { runId: string } };
    expect(halted).toMatchObject({ tenant: 'acme', data: { runId: run.runId } });
    expect(mails).toHaveLength(3);
    for (const m of mails) expect(m.to.sort()).toEqual(['cfo@acme.test', 'ops@acme.test']);
    expect(mails.some((m) => /Subject: Flowmeter: run \S+ of acme halted, quota exhausted/.test(m.raw.replace(/\r?\n[ \t]+/g, ' ')))).toBe(true);
    // Through the API, to that tenant only.
    const app = await buildServer(p);
    const key = await p.keys.create('acme');
    const res = await app.inject({ method: 'GET', url: '/api/notifications', headers: { authorization: `Bearer ${key}` } });
    expect(res.json().deliveries).toHaveLength(6);
    const sec = await app.inject({ method: 'GET', url: '/api/notifications/secret', headers: { authorization: `Bearer ${key}` } });
    expect(sec.json()).toEqual({ secret });
    await app.close();
  });

  it('an unreachable webhook is retried and logged, and the run is neither blocked nor failed', async () => {
    made = await make();
    const p = made.platform;
    await p.scenarios.deploy('down', scenarioOf(loopDoc));
    await p.ledger.setQuota('down', { monthlyActions: 100, alerts: [0.01], notifyWebhook: `http://127.0.0.1:${deadPort}/hook` });
    const run = await ended(p, 'down', (await p.trigger('down', 'metered', [1, 2], { type: 'manual' })).runId);
    expect(run.status).toBe('succeeded');
    const [d] = await waitUntil('the failed delivery', async () => {
      const list = await p.notifications!.deliveries('down');
      return list.length ? list : null;
    });
    expect(d).toMatchObject({ type: 'quota.alert', channel: 'webhook', status: 'failed', attempts: 3, error: 'ECONNREFUSED' });
  });

  it('a period reset is sent once, at the first sweep in the new period', async () => {
    made = await make();
    const p = made.platform;
    await p.ledger.setQuota('r', { timezone: 'Asia/Tokyo', notifyWebhook: `${peer.base}/hook` });
    const n = p.notifier!;
    made.now.t = new Date('2026-11-30T14:00:00Z'); // 23:00 on 30 November in Tokyo
    await n.sweepResets(['r'], made.now.t); // first sight: nothing sent
    await n.sweepResets(['r'], made.now.t);
    made.now.t = new Date('2026-11-30T15:00:00Z'); // midnight, 1 December in Tokyo
    await Promise.all([n.sweepResets(['r'], made.now.t), n.sweepResets(['r'], made.now.t)]);
    await n.idle();
    const posts = peer.requests.filter((r) => r.path === '/hook').map((r) => r.body);
    expect(posts).toEqual([expect.objectContaining({ type: 'period.reset', tenant: 'r', period: '2026-12', data: { previous: '2026-11', limit: 500 } })]);
  });
});
