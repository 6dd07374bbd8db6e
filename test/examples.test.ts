/**
 * Golden tests of the scenarios in `examples/`: each one validates with no warnings and runs
 * in-process (`createEmbedded`) against a real HTTP peer playing the external APIs. A run is
 * compared with `examples/golden/<name>.json` ({ status, actions, outputs (payloads), tasks:
 * [[nodeId, status, actions, iteration?]] }); regenerate with
 *
 *     UPDATE_GOLDEN=1 npx vitest run test/examples.test.ts
 *
 * and review the diff. Independently of the goldens, every run's `actions` is asserted against
 * the SPEC §3 arithmetic written next to it, and the sum of the tasks' actions against the run's.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Message, RunRecord, TriggerInfo } from '../core/types.js';
import { createEmbedded, type Embedded } from '../engine/embedded.js';
import type { Scenario } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { type Peer, type PeerRequest, startPeer } from './helpers/peer.js';

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
const GOLDEN = `${EXAMPLES}golden/`;
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const NAMES = ['lead-routing', 'invoice-sync', 'error-handling', 'nightly-export', 'fan-out-notifications', 'sequencer-sync'] as const;
type Name = (typeof NAMES)[number];

type GoldenTask = [nodeId: string, status: string, actions: number] | [nodeId: string, status: string, actions: number, iteration: number];
interface Golden {
  status: string;
  actions: number;
  outputs: unknown[];
  tasks: GoldenTask[];
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function load(name: Name): { scenario: Scenario; input: unknown } {
  const v = validateScenario(readJson(`${EXAMPLES}${name}.json`));
  if (!v.scenario) throw new Error(`${name}: ${v.problems.join('; ')}`);
  return { scenario: v.scenario, input: readJson(`${EXAMPLES}${name}.input.json`) };
}

/** Replaces the peer's address in every string, so goldens do not depend on the port. */
function portless<T>(value: T, base: string): T {
  return JSON.parse(JSON.stringify(value).split(base).join('http://peer.test')) as T;
}

function goldenOf(run: RunRecord, base: string): Golden {
  return portless(
    {
      status: run.status,
      actions: run.actions,
      outputs: run.outputs.map((m) => m.payload),
      tasks: run.tasks.map((t): GoldenTask => (t.iteration === undefined ? [t.nodeId, t.status, t.actions] : [t.nodeId, t.status, t.actions, t.iteration])),
    },
    base,
  );
}

function checkGolden(name: Name, run: RunRecord, base: string): void {
  const actual = goldenOf(run, base);
  const file = `${GOLDEN}${name}.json`;
  if (UPDATE) {
    mkdirSync(GOLDEN, { recursive: true });
    const tasks = actual.tasks.map((t) => `    ${JSON.stringify(t)}`).join(',\n');
    const head = JSON.stringify({ status: actual.status, actions: actual.actions, outputs: actual.outputs }, null, 2).replace(/\n}$/, '');
    writeFileSync(file, `${head},\n  "tasks": [\n${tasks}\n  ]\n}\n`);
  }
  expect(existsSync(file), `${file} is missing: run UPDATE_GOLDEN=1 npx vitest run test/examples.test.ts`).toBe(true);
  expect(actual).toEqual(readJson(file));
}

/** The checks every run gets: SPEC §3 arithmetic, task sum, golden. */
function checkRun(name: Name, run: RunRecord, expectedActions: number): void {
  expect(run.error, JSON.stringify(run.error)).toBeNull();
  expect(run.status).toBe('succeeded');
  expect(run.actions).toBe(expectedActions);
  expect(run.tasks.reduce((sum, t) => sum + t.actions, 0)).toBe(run.actions);
  expect(run.tasks[0]).toMatchObject({ seq: 1, nodeId: '$trigger', actions: 1 });
  // Comment nodes never run.
  expect(run.tasks.some((t) => t.type === 'comment')).toBe(false);
  checkGolden(name, run, peer.base);
}

function header(req: PeerRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Tasks of `nodeId`, in order. */
function tasksOf(run: RunRecord, nodeId: string) {
  return run.tasks.filter((t) => t.nodeId === nodeId);
}

/** Captured mails (FLOWMETER_SMTP_URL unset) among the run's outputs. */
function mails(run: RunRecord): Array<{ from: string; to: string; subject: string; text?: string; captured: boolean }> {
  return run.outputs
    .filter((m: Message) => m.mail !== undefined)
    .map((m) => m.mail as { from: string; to: string; subject: string; text?: string; captured: boolean });
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

const SECRETS = {
  BILLING_TOKEN: 'bill_live_3kq9ZtN7vW2xR8pL',
  ACCOUNTING_API_KEY: 'acct-key-5f1e0c7a99',
  WAREHOUSE_API_KEY: 'wh-key-77a1c3d9',
  SHOP_API_TOKEN: 'shop_tok_Q4m8Lr2Xs9',
  EXPORT_USER: 'flowmeter-export',
  EXPORT_PASSWORD: 'exp-pass-6Jd2Kw',
  CRM_TOKEN: 'crm_tok_H7c1Vb5Nq3',
  ERP_USER: 'integration',
  ERP_PASSWORD: 'erp-pass-9Tz4Mx',
};

let peer: Peer;
let env: Record<string, string>;
let engine: Embedded;

/** The shop's orders, for the nightly export (the peer filters them by `afterId`). */
const SHOP_ORDERS = [
  { id: 1039, number: 'SO-1039', status: 'paid', customer: { email: 'old@example.no' }, total: 99, currency: 'NOK', updatedAt: '2026-05-31T21:10:00Z' },
  {
    id: 1041,
    number: 'SO-1041',
    status: 'paid',
    customer: { email: 'ingrid.haug@example.no' },
    total: 1249.5,
    currency: 'NOK',
    updatedAt: '2026-06-01T08:02:11Z',
  },
  {
    id: 1042,
    number: 'SO-1042',
    status: 'cancelled',
    customer: { email: 'per.olsen@example.no' },
    total: 349,
    currency: 'NOK',
    updatedAt: '2026-06-01T09:30:00Z',
  },
  {
    id: 1043,
    number: 'SO-1043',
    status: 'paid',
    customer: { email: 'anna.svensson@example.se' },
    total: 780,
    currency: 'SEK',
    updatedAt: '2026-06-01T12:45:30Z',
  },
  {
    id: 1044,
    number: 'SO-1044',
    status: 'refunded',
    customer: { email: 'lukas.meyer@example.de' },
    total: 59.9,
    currency: 'EUR',
    updatedAt: '2026-06-01T17:20:05Z',
  },
];

const INVOICES = [
  {
    id: 'inv_9f2a41',
    number: 'INV-2026-0141',
    issuedAt: '2026-05-03',
    dueAt: '2026-06-02',
    currency: 'NOK',
    customer: { id: 'cus_101', name: 'Fjordkraft Bygg AS', country: 'NO' },
    lines: [
      { description: 'Pro plan, May 2026', quantity: 1, unitPrice: 4990 },
      { description: 'Extra seats', quantity: 3, unitPrice: 290 },
    ],
  },
  {
    id: 'inv_9f2a42',
    number: 'INV-2026-0142',
    issuedAt: '2026-05-05',
    dueAt: '2026-06-04',
    currency: 'EUR',
    customer: { id: 'cus_214', name: 'Rheinwerk Logistik GmbH', country: 'DE' },
    lines: [{ description: 'Business plan, May 2026', quantity: 1, unitPrice: 899 }],
  },
  {
    id: 'inv_9f2a43',
    number: 'INV-2026-0143',
    issuedAt: '2026-05-09',
    dueAt: '2026-06-08',
    currency: 'USD',
    customer: { id: 'cus_377', name: 'Cascade Outdoor Inc.', country: 'US' },
    lines: [{ description: 'Starter plan, May 2026', quantity: 2, unitPrice: 49.5 }],
  },
];

beforeAll(async () => {
  peer = await startPeer();
  let entry = 5000;
  let reservation = 70000;

  // invoice-sync: billing API and accounting API.
  peer.on('GET', '/billing/v1/invoices', () => ({ json: { data: INVOICES, hasMore: false } }));
  peer.on('POST', '/ledger/api/journal-entries', (req) => {
    const b = req.body as { externalId: string; currency: string; grossAmount: number };
    return { status: 201, json: { entryId: `JE-${++entry}`, externalId: b.externalId, status: 'posted', currency: b.currency, grossAmount: b.grossAmount } };
  });

  // error-handling: the retail warehouse works, the wholesale one is down.
  peer.on('POST', '/wms/warehouses/oslo-retail/reservations', (req) => {
    const b = req.body as { orderId: string; lines: unknown[] };
    return {
      status: 201,
      json: { reservationId: `RSV-${++reservation}`, orderId: b.orderId, warehouse: 'oslo-retail', status: 'reserved', lines: b.lines.length },
    };
  });
  peer.on('POST', '/wms/warehouses/drammen-b2b/reservations', () => ({
    status: 500,
    json: { error: 'internal', message: 'warehouse management system unavailable' },
  }));

  // nightly-export: the shop API (cursor-aware) and the export API.
  peer.on('GET', '/shop/api/orders', (req) => {
    const after = Number(req.query.afterId);
    return { json: { orders: SHOP_ORDERS.filter((o) => o.id > after).slice(0, Number(req.query.limit)), next: null } };
  });
  peer.on('PUT', '/dwh/exports/orders/:id', (req) => ({ json: { table: 'orders', key: Number(req.params.id), stored: true } }));

  // fan-out-notifications: a chat incoming webhook answering plain "ok".
  peer.on('POST', '/chat/hooks/incidents', () => ({ text: 'ok' }));

  // sequencer-sync: CRM and ERP.
  peer.on('GET', '/crm/v2/customers', () => ({
    json: {
      customers: [
        { id: 'C-2001', name: 'Bryggen Hotel AS', email: 'purchasing@hotel-bryggen.example', country: 'NO', updatedAt: '2026-05-31T14:02:00Z' },
        { id: 'C-2002', name: 'Lind Arkitekter AB', email: 'ekonomi@lind-ark.example', country: 'SE', updatedAt: '2026-06-01T05:40:00Z' },
      ],
    },
  }));
  peer.on('POST', '/erp/customers/batch', (req) => {
    const n = (req.body as { customers: unknown[] }).customers.length;
    return { json: { batchId: 'ERP-B-881', entity: 'customer', received: n, created: 1, updated: n - 1 } };
  });
  peer.on('GET', '/crm/v2/orders', () => ({
    json: {
      orders: [
        { id: 'D-9001', customerId: 'C-2001', closedAt: '2026-05-31T15:20:00Z', currency: 'NOK', products: [{ sku: 'CHAIR-OAK-01', qty: 40, price: 1190 }] },
        {
          id: 'D-9002',
          customerId: 'C-2002',
          closedAt: '2026-06-01T05:55:00Z',
          currency: 'SEK',
          products: [
            { sku: 'LAMP-BRASS-02', qty: 6, price: 1450 },
            { sku: 'RUG-WOOL-200', qty: 2, price: 3900 },
          ],
        },
      ],
    },
  }));
  peer.on('POST', '/erp/orders/batch', (req) => {
    const n = (req.body as { orders: unknown[] }).orders.length;
    return { json: { batchId: 'ERP-B-882', entity: 'salesOrder', received: n, created: n, updated: 0 } };
  });
  peer.on('PUT', '/crm/v2/sync-state/:system', (req) => ({ json: { system: req.params.system, ...(req.body as object), saved: true } }));

  env = {
    BILLING_API_URL: `${peer.base}/billing/v1`,
    BILLING_TOKEN: SECRETS.BILLING_TOKEN,
    ACCOUNTING_API_URL: `${peer.base}/ledger/api`,
    ACCOUNTING_API_KEY: SECRETS.ACCOUNTING_API_KEY,
    WAREHOUSE_API_URL: `${peer.base}/wms`,
    WAREHOUSE_API_KEY: SECRETS.WAREHOUSE_API_KEY,
    SHOP_API_URL: `${peer.base}/shop/api`,
    SHOP_API_TOKEN: SECRETS.SHOP_API_TOKEN,
    EXPORT_API_URL: `${peer.base}/dwh`,
    EXPORT_USER: SECRETS.EXPORT_USER,
    EXPORT_PASSWORD: SECRETS.EXPORT_PASSWORD,
    CHAT_WEBHOOK_URL: `${peer.base}/chat`,
    CRM_API_URL: `${peer.base}/crm/v2`,
    CRM_TOKEN: SECRETS.CRM_TOKEN,
    ERP_API_URL: `${peer.base}/erp`,
    ERP_USER: SECRETS.ERP_USER,
    ERP_PASSWORD: SECRETS.ERP_PASSWORD,
    // No FLOWMETER_SMTP_URL: mail is captured in the task output.
  };
});

afterAll(async () => {
  await peer?.close();
});

beforeEach(() => {
  peer.reset();
  engine = createEmbedded({ env });
});

afterEach(async () => {
  await engine.close();
});

async function run(name: Name, trigger?: TriggerInfo): Promise<RunRecord> {
  const { scenario, input } = load(name);
  return engine.run(scenario, input, { trigger });
}

function expectNoSecrets(run: RunRecord): void {
  const text = JSON.stringify(run);
  for (const [k, v] of Object.entries(SECRETS)) {
    if (k.endsWith('_USER')) continue;
    expect(text.includes(v), `${k} leaked into the run record`).toBe(false);
  }
}

const webhook = (headers: Record<string, string> = {}): TriggerInfo => ({
  type: 'webhook',
  headers: { 'content-type': 'application/json', 'user-agent': 'acme-webhooks/2.3', ...headers },
  query: {},
});

describe('examples/', () => {
  it('holds the six scenarios, each with an input file, a comment, 5–15 nodes, valid with no warnings', () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json') && !f.endsWith('.input.json'));
    expect(files.map((f) => f.replace(/\.json$/, '')).sort()).toEqual([...NAMES].sort());
    for (const name of NAMES) {
      const doc = readJson(`${EXAMPLES}${name}.json`) as { id: string; nodes: Array<{ type: string }> };
      const v = validateScenario(doc);
      expect(v.problems, name).toEqual([]);
      expect(v.warnings, name).toEqual([]);
      expect(doc.id).toBe(name);
      expect(doc.nodes.length, name).toBeGreaterThanOrEqual(5);
      expect(doc.nodes.length, name).toBeLessThanOrEqual(15);
      expect(
        doc.nodes.some((n) => n.type === 'comment'),
        `${name} has a comment node`,
      ).toBe(true);
      expect(existsSync(`${EXAMPLES}${name}.input.json`), `${name}.input.json`).toBe(true);
    }
  });

  it('lead-routing: filters on vars.minScore and the blocklist, mails owners, collects a summary (offline)', async () => {
    const r = await run('lead-routing', webhook());
    // 4 leads: Ada (82, NO) passes; Bob (45) is under minScore 60; offers@spam-leads (97) is
    // blocklisted; Sofia ("71" → 71, SE) passes.
    //   trigger 1 + normalise 1 + each-lead 1 + 4 iterations + 4 × qualifies + 2 × notify-owner + summary 1
    checkRun('lead-routing', r, 1 + 1 + 1 + 4 + 4 + 2 + 1); // = 14
    expect(tasksOf(r, 'qualifies').map((t) => t.status)).toEqual(['ok', 'dropped', 'dropped', 'ok']);
    expect(peer.requests).toEqual([]);
    // Mail outputs belong to the loop (collected), so the run's only output is the summary.
    expect(r.outputs).toHaveLength(1);
    const sent = tasksOf(r, 'notify-owner').map((t) => (t.output as Message).mail);
    expect(sent).toEqual([
      expect.objectContaining({
        captured: true,
        from: 'Acme Lead Router <leads@acme.example>',
        to: 'kari.nordmann@acme.example',
        subject: 'New lead: Analytical Engines AS (score 82)',
      }),
      expect.objectContaining({ captured: true, to: 'lars.berg@acme.example', subject: 'New lead: Nordkapp Logistics AB (score 71)' }),
    ]);
    expect((sent[0] as { text: string }).text).toContain(
      'Ada Lovelace <ada.lovelace@analytical.example> from Analytical Engines AS (NO) scored 82 in campaign spring-webinar-2026.',
    );
  });

  it('invoice-sync: bearer GET from billing, VAT region conversion, POST per invoice, collected report', async () => {
    const r = await run('invoice-sync');
    // 3 invoices (NO → domestic, DE → eu, US → missing → default "export").
    //   trigger 1 + fetch-invoices 1 + each-invoice 1 + 3 iterations
    //   + 3 × (vat-region 1 + build-entry 1 + post-entry 1) + report 1
    checkRun('invoice-sync', r, 1 + 1 + 1 + 3 + 3 * (1 + 1 + 1) + 1); // = 16
    expectNoSecrets(r);

    const [list, ...posts] = peer.requests;
    expect(list).toMatchObject({ method: 'GET', path: '/billing/v1/invoices', query: { status: 'open', issuedAfter: '2026-05-01' } });
    expect(header(list!, 'authorization')).toBe(`Bearer ${SECRETS.BILLING_TOKEN}`);
    expect(header(list!, 'idempotency-key')).toBe(`${r.runId}:${tasksOf(r, 'fetch-invoices')[0]!.seq}`);

    expect(posts.map((p) => `${p.method} ${p.path}`)).toEqual(Array(3).fill('POST /ledger/api/journal-entries'));
    const postSeqs = tasksOf(r, 'post-entry').map((t) => `${r.runId}:${t.seq}`);
    expect(posts.map((p) => header(p, 'idempotency-key'))).toEqual(postSeqs);
    expect(new Set(postSeqs).size).toBe(3);
    for (const p of posts) {
      expect(header(p, 'x-api-key')).toBe(SECRETS.ACCOUNTING_API_KEY);
      expect(header(p, 'authorization')).toBeUndefined();
      expect(header(p, 'x-source-system')).toBe('billing');
      expect(header(p, 'content-type')).toBe('application/json');
    }
    // 4990 + 3 × 290 = 5860 net, 25 % domestic VAT = 1465.
    expect(posts[0]!.body).toEqual({
      externalId: 'inv_9f2a41',
      invoiceNumber: 'INV-2026-0141',
      customerNumber: 'cus_101',
      customerName: 'Fjordkraft Bygg AS',
      date: '2026-05-03',
      dueDate: '2026-06-02',
      currency: 'NOK',
      vatRegion: 'domestic',
      lines: [
        { account: '3000', description: 'Pro plan, May 2026', amount: 4990, vatCode: '3' },
        { account: '3000', description: 'Extra seats', amount: 870, vatCode: '3' },
      ],
      netAmount: 5860,
      vatAmount: 1465,
      grossAmount: 7325,
    });
    expect(posts.map((p) => (p.body as { vatRegion: string }).vatRegion)).toEqual(['domestic', 'eu', 'export']);
  });

  it('error-handling: HTTP_ERROR caught by the scoped catch, ORDER_INVALID by the catch-all, the batch succeeds', async () => {
    const r = await run('error-handling', webhook({ 'x-shop-id': 'acme-no' }));
    // ORD-1001 retail → reserved; ORD-1002 wholesale → 500 twice (retry: 2 attempts, one
    // action) → on-reservation-failure; ORD-1003 has no lines → invalid-order → catch-all.
    //   trigger 1 + each-order 1 + 3 iterations
    //   + ORD-1001: route-order 1 + reserve-retail 1
    //   + ORD-1002: route-order 1 + reserve-wholesale 1 (error) + on-reservation-failure 1 + record-failure 1
    //   + ORD-1003: route-order 1 + invalid-order 1 (error) + catch-all 1 + record-rejection 1 + notify-ops 1
    //   + summary 1
    checkRun('error-handling', r, 1 + 1 + 3 + (1 + 1) + (1 + 1 + 1 + 1) + (1 + 1 + 1 + 1 + 1) + 1); // = 17
    expectNoSecrets(r);

    expect(tasksOf(r, 'reserve-wholesale')[0]).toMatchObject({
      status: 'error',
      actions: 1,
      error: { code: 'HTTP_ERROR', status: 500, nodeId: 'reserve-wholesale' },
    });
    expect(tasksOf(r, 'invalid-order')[0]).toMatchObject({
      status: 'error',
      actions: 1,
      error: { code: 'ORDER_INVALID', message: 'order ORD-1003 has no order lines or no customer e-mail' },
    });
    // The scoped catch wins for the connector; the catch-all never sees it.
    expect(tasksOf(r, 'on-reservation-failure')).toHaveLength(1);
    expect(tasksOf(r, 'catch-all')).toHaveLength(1);
    expect((tasksOf(r, 'catch-all')[0]!.input as Message).error).toEqual({
      nodeId: 'invalid-order',
      code: 'ORDER_INVALID',
      message: 'order ORD-1003 has no order lines or no customer e-mail',
    });

    expect(peer.requests.map((p) => `${p.method} ${p.path}`)).toEqual([
      'POST /wms/warehouses/oslo-retail/reservations',
      'POST /wms/warehouses/drammen-b2b/reservations',
      'POST /wms/warehouses/drammen-b2b/reservations',
    ]);
    for (const p of peer.requests) expect(header(p, 'x-api-key')).toBe(SECRETS.WAREHOUSE_API_KEY);
    // The retry carries the same Idempotency-Key as the first attempt.
    const wholesaleKey = `${r.runId}:${tasksOf(r, 'reserve-wholesale')[0]!.seq}`;
    expect(peer.requests.slice(1).map((p) => header(p, 'idempotency-key'))).toEqual([wholesaleKey, wholesaleKey]);
    expect(peer.requests[1]!.body).toEqual({ orderId: 'ORD-1002', lines: [{ sku: 'CHAIR-OAK-01', qty: 40 }], customerRef: 'B2B-3310' });

    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]!.payload).toMatchObject({ received: 3, reserved: 1, reservationFailed: 1, rejected: 1 });
    const notice = tasksOf(r, 'notify-ops')[0]!.output as Message;
    expect(notice.mail).toMatchObject({ captured: true, to: 'order-ops@acme.example', subject: 'Order ORD-1003 rejected (ORDER_INVALID)' });
  });

  it('nightly-export: cron message, cursor from vars, PUT per row, setVar visible later in the run and in the next run', async () => {
    const cron: TriggerInfo = { type: 'cron', firedAt: '2026-06-02T00:00:00.000Z' }; // 02:00 in Oslo (CEST)
    const { scenario, input } = load('nightly-export');
    expect(input).toEqual((scenario.trigger as { input?: unknown }).input);
    const r = await run('nightly-export', cron);
    // The shop returns 1041–1044 after cursor 1040; 1042 is cancelled (skipped, still moves the cursor).
    //   trigger 1 + fetch-changes 1 + prepare-batch 1 + each-row 1 + 3 iterations + 3 × put-row + advance-cursor 1
    checkRun('nightly-export', r, 1 + 1 + 1 + 1 + 3 + 3 + 1); // = 11
    expectNoSecrets(r);

    const [get, ...puts] = peer.requests;
    expect(get).toMatchObject({ method: 'GET', path: '/shop/api/orders', query: { afterId: '1040', limit: '100', sort: 'id' } });
    expect(header(get!, 'authorization')).toBe(`Bearer ${SECRETS.SHOP_API_TOKEN}`);
    expect(puts.map((p) => `${p.method} ${p.path}`)).toEqual(['PUT /dwh/exports/orders/1041', 'PUT /dwh/exports/orders/1043', 'PUT /dwh/exports/orders/1044']);
    for (const p of puts) {
      expect(header(p, 'authorization')).toBe(basic(SECRETS.EXPORT_USER, SECRETS.EXPORT_PASSWORD));
      expect(header(p, 'idempotency-key')).toMatch(new RegExp(`^${r.runId}:\\d+$`));
    }
    expect(puts[0]!.body).toEqual({
      orderId: 1041,
      orderNumber: 'SO-1041',
      status: 'paid',
      customerEmail: 'ingrid.haug@example.no',
      totalAmount: 1249.5,
      currency: 'NOK',
      updatedAt: '2026-06-01T08:02:11Z',
      exportedAt: '2026-06-02T00:00:00.000Z',
    });
    // setVar is visible to later nodes of the same run (advance-cursor reads it back) …
    expect(r.outputs[0]!.payload).toMatchObject({ cursor: 1044, exported: 3, skipped: 1 });
    expect(await engine.vars.load('default', 'nightly-export', {})).toEqual({ lastExportedId: 1044, lastExportAt: '2026-06-02T00:00:00.000Z' });

    // … and to the next run: nothing new after 1044, nothing is exported again.
    peer.reset();
    const again = await engine.run(scenario, input, { trigger: { type: 'cron', firedAt: '2026-06-03T00:00:00.000Z' } });
    //   trigger 1 + fetch-changes 1 + prepare-batch 1 + each-row 1 (0 iterations) + advance-cursor 1
    expect(again.status).toBe('succeeded');
    expect(again.actions).toBe(1 + 1 + 1 + 1 + 1); // = 5
    expect(peer.requests.map((p) => `${p.method} ${p.path}?afterId=${p.query.afterId}`)).toEqual(['GET /shop/api/orders?afterId=1044']);
    expect(again.outputs[0]!.payload).toMatchObject({ exported: 0, fromId: 1044, cursor: 1044 });
  });

  it('fan-out-notifications: three concurrent branches, Switch mode all sends every matching mail', async () => {
    const r = await run('fan-out-notifications', webhook({ 'x-monitor': 'prometheus-alertmanager' }));
    // critical + customer-facing match; the billing rule does not (service is checkout-api).
    //   trigger 1 + enrich 1 + broadcast 1 + route-by-impact 1 + post-to-chat 1 + audit-record 1
    //   + page-oncall 1 + notify-support 1
    checkRun('fan-out-notifications', r, 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1); // = 8
    expect(tasksOf(r, 'route-by-impact')[0]!.output).toEqual(['page-oncall', 'notify-support']);
    expect(tasksOf(r, 'notify-finance')).toHaveLength(0);
    expect(mails(r).map((m) => [m.to, m.subject, m.captured])).toEqual([
      ['oncall@acme.example', '[CRITICAL] checkout-api: Payment authorisations failing', true],
      ['support-lead@acme.example', 'Customer impact: Payment authorisations failing', true],
    ]);

    expect(peer.requests).toHaveLength(1);
    const chat = peer.requests[0]!;
    expect(`${chat.method} ${chat.path}`).toBe('POST /chat/hooks/incidents');
    expect(header(chat, 'idempotency-key')).toBe(`${r.runId}:${tasksOf(r, 'post-to-chat')[0]!.seq}`);
    expect(chat.body).toMatchObject({
      channel: '#incidents',
      text: '[CRITICAL] checkout-api: Payment authorisations failing',
      attachments: [
        { title: 'INC-2026-0612', title_link: 'https://status.acme.example/incidents/INC-2026-0612', fields: [{ value: 'critical' }, { value: 'eu-north-1' }] },
      ],
    });
    // The chat answered text/plain "ok", put at msg.chat; the payload is still the incident.
    const chatOut = r.outputs.find((m) => m.chat !== undefined)!;
    expect(chatOut.chat).toBe('ok');
    expect(chatOut.http).toMatchObject({ status: 200 });
  });

  it('sequencer-sync: customers, then orders, then the checkpoint, each step finished before the next', async () => {
    const r = await run('sequencer-sync');
    //   trigger 1 + sync 1
    //   + step 1: fetch-customers 1 + upsert-customers 1
    //   + step 2: fetch-orders 1 + map-orders 1 + upsert-orders 1
    //   + step 3: mark-done 1 + save-checkpoint 1
    //   + report 1
    checkRun('sequencer-sync', r, 1 + 1 + (1 + 1) + (1 + 1 + 1) + (1 + 1) + 1); // = 10
    expectNoSecrets(r);

    expect(peer.requests.map((p) => `${p.method} ${p.path}`)).toEqual([
      'GET /crm/v2/customers',
      'POST /erp/customers/batch',
      'GET /crm/v2/orders',
      'POST /erp/orders/batch',
      'PUT /crm/v2/sync-state/erp',
    ]);
    const [customers, upsertCustomers, orders, upsertOrders, checkpoint] = peer.requests as [PeerRequest, PeerRequest, PeerRequest, PeerRequest, PeerRequest];
    for (const p of [customers, orders, checkpoint]) expect(header(p, 'authorization')).toBe(`Bearer ${SECRETS.CRM_TOKEN}`);
    for (const p of [upsertCustomers, upsertOrders]) expect(header(p, 'authorization')).toBe(basic(SECRETS.ERP_USER, SECRETS.ERP_PASSWORD));
    expect(customers.query).toEqual({ updatedSince: '2026-05-31T06:00:00Z' });
    expect(orders.query).toEqual({ updatedSince: '2026-05-31T06:00:00Z', status: 'won' });
    expect((upsertCustomers.body as { customers: unknown[] }).customers).toHaveLength(2);
    expect((upsertOrders.body as { orders: Array<{ externalRef: string }> }).orders.map((o) => o.externalRef)).toEqual(['crm:D-9001', 'crm:D-9002']);
    expect(checkpoint.body).toEqual({ system: 'erp', previous: '2026-05-31T06:00:00Z', lastSyncedAt: '2026-06-01T06:00:00Z', requestedBy: 'ops@acme.example' });
    const keys = peer.requests.map((p) => header(p, 'idempotency-key'));
    expect(new Set(keys).size).toBe(5);

    // Step order in the task log: no task of a later step before the last task of the earlier one.
    const seqOf = (id: string) => tasksOf(r, id)[0]!.seq;
    expect(seqOf('upsert-customers')).toBeLessThan(seqOf('fetch-orders'));
    expect(seqOf('upsert-orders')).toBeLessThan(seqOf('mark-done'));
    expect(seqOf('save-checkpoint')).toBeLessThan(seqOf('report'));
    expect(await engine.vars.load('default', 'sequencer-sync', {})).toEqual({ lastSyncedAt: '2026-06-01T06:00:00Z' });
  });
});
