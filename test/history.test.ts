/** Usage history, per-connection status and the per-run export (SPEC §11). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCloudEvents, exportCsv } from '../cli/commands/usage-export.js';
import { createEmbedded } from '../engine/embedded.js';
import type { RunSummary } from '../engine/stores.js';
import { monthsBefore, usageHistory } from '../metering/history.js';
import { type Ledger, MemoryLedger } from '../metering/ledger.js';
import { type Peer, startPeer } from './helpers/peer.js';
import { useProduction } from './helpers/production.js';
import { scenarioOf } from './helpers/run.js';

const ledgers: Array<[string, () => Promise<{ ledger: Ledger; close: () => Promise<void> }>]> = [
  ['memory', async () => ({ ledger: new MemoryLedger(), close: async () => undefined })],
  [
    'redis',
    async () => {
      const p = await useProduction();
      return { ledger: p.ledger, close: () => p.close() };
    },
  ],
];

async function bill(ledger: Ledger, tenant: string, n: number, at: Date, run: string): Promise<void> {
  const { period, date } = await ledger.periodOf(tenant, at);
  const lease = await ledger.lease({ tenant, runId: run, want: n, at });
  const entries = Array.from({ length: n }, (_, i) => ({ key: String(i), trigger: i === 0, date }));
  await ledger.settle({ tenant, runId: run, scenarioId: 's', billable: true, period, entries, heldUsed: lease.granted, release: 0, at });
}

describe('periods', () => {
  it('monthsBefore steps back across years', () => {
    expect([0, 1, 2, 13].map((n) => monthsBefore('2026-02', n))).toEqual(['2026-02', '2026-01', '2025-12', '2025-01']);
  });
});

describe.each(ledgers)('history and connections on the %s ledger', (_name, make) => {
  it('usage --months: one summary per period, newest first, in the tenant timezone', async () => {
    const { ledger, close } = await make();
    await ledger.setQuota('h', { monthlyActions: 100, timezone: 'Pacific/Auckland' });
    await bill(ledger, 'h', 3, new Date('2026-09-15T00:00:00Z'), 'r1');
    await bill(ledger, 'h', 5, new Date('2026-10-31T12:00:00Z'), 'r2'); // 1 November in Auckland
    await ledger.addActions('h', 7, new Date('2026-11-02T00:00:00Z'));
    const rows = await usageHistory(ledger, 'h', new Date('2026-11-20T00:00:00Z'), 4);
    expect(rows.map((r) => [r.period, r.used, r.addOns, r.runs, r.remaining])).toEqual([
      ['2026-11', 5, 7, 1, 102],
      ['2026-10', 0, 0, 0, 100],
      ['2026-09', 3, 0, 1, 97],
      ['2026-08', 0, 0, 0, 100],
    ]);
    expect(rows[0]!.start).toBe('2026-11-01T00:00:00+13:00');
    await close();
  });

  it('counts Connector requests per connection: requests, bytes, errors, last status', async () => {
    const { ledger, close } = await make();
    const at = (s: number) => new Date(Date.UTC(2026, 10, 3, 10, 0, s));
    await ledger.count('c', 'connectorRequests', 1, at(1), { connection: 'crm', status: 200 });
    await ledger.count('c', 'connectorBytes', 120, at(1), { connection: 'crm', status: 200 });
    await ledger.count('c', 'connectorRequests', 1, at(2), { connection: 'crm' }); // network failure
    await ledger.count('c', 'connectorRequests', 1, at(3), { connection: 'crm', status: 503 });
    await ledger.count('c', 'connectorRequests', 1, at(4), { connection: 'mail', status: 201 });
    await ledger.count('c', 'connectorRequests', 1, at(5)); // no connection
    const u = await ledger.usage('c', at(9));
    expect(u.meters.connectorRequests).toBe(5);
    expect(u.connections).toEqual({
      crm: { requests: 3, bytes: 120, errors: 2, lastStatus: 503, lastAt: at(3).toISOString() },
      mail: { requests: 1, bytes: 0, errors: 0, lastStatus: 201, lastAt: at(4).toISOString() },
    });
    await close();
  });
});

describe('connections in a real run', () => {
  let peer: Peer;
  beforeAll(async () => {
    peer = await startPeer();
    peer.on('GET', '/ok', () => ({ json: { fine: true } }));
    peer.on('GET', '/bad', () => ({ status: 404, text: 'nope' }));
  });
  afterAll(async () => peer.close());

  it('the usage report shows each scenario connection the Connector used', async () => {
    const e = createEmbedded();
    const doc = {
      id: 'calls',
      start: 'a',
      connections: { api: { baseUrl: peer.base } },
      nodes: [
        { id: 'a', type: 'connector', connection: 'api', method: 'GET', url: '/ok', next: 'b' },
        { id: 'b', type: 'connector', connection: 'api', method: 'GET', url: '/bad' },
      ],
    };
    const run = await e.run(scenarioOf(doc), null);
    expect(run.status).toBe('failed');
    const u = await e.ledger.usage('default', new Date());
    expect(u.connections.api).toMatchObject({ requests: 2, errors: 1, lastStatus: 404 });
    expect(u.connections.api!.bytes).toBeGreaterThan(0);
    await e.close();
  });
});

describe('export formats', () => {
  const runs = [
    { runId: 'r1', scenarioId: 'a,b', startedAt: '2026-11-02T10:00:00.000Z', actions: 9, billable: true, status: 'succeeded' },
    { runId: 'r2', scenarioId: 'x', startedAt: '2026-11-03T10:00:00.000Z', actions: 2, billable: false, status: 'failed' },
  ] as unknown as RunSummary[];
  it('csv: a header and one line per run, fields quoted where needed', () => {
    expect(exportCsv(runs)).toBe('run_id,scenario,started,actions,billable\nr1,"a,b",2026-11-02T10:00:00.000Z,9,true\nr2,x,2026-11-03T10:00:00.000Z,2,false\n');
  });
  it('cloudevents: one CloudEvents 1.0 JSON event per line', () => {
    const lines = exportCloudEvents('acme', runs)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual({
      specversion: '1.0',
      type: 'dev.flowmeter.run.usage',
      source: '/flowmeter/tenants/acme',
      id: 'r1',
      time: '2026-11-02T10:00:00.000Z',
      subject: 'a,b',
      datacontenttype: 'application/json',
      data: { runId: 'r1', scenarioId: 'a,b', started: '2026-11-02T10:00:00.000Z', actions: 9, billable: true, status: 'succeeded' },
    });
  });
});
