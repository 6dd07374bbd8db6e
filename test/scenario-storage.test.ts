/**
 * Scenario versions are kept for good, so a tenant's bytes of them are bounded
 * (FLOWMETER_SCENARIO_BYTES): before, one API key could PUT changed 1 MB documents in a loop
 * and fill the Redis every tenant shares. Both twins count the same bytes and refuse alike.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createEmbedded } from '../engine/embedded.js';
import type { Platform } from '../engine/platform.js';
import { versionOf } from '../engine/scenario-store.js';
import { useProduction } from './helpers/production.js';
import { fn } from './helpers/run.js';

const LIMIT = 3000;
const env = { FLOWMETER_SCENARIO_BYTES: String(LIMIT) };
/** A document of a little over 1 KB: two versions fit in LIMIT, three do not. */
const doc = (tag: string) => ({
  id: 'big',
  trigger: { type: 'webhook', path: 'in' },
  start: 'out',
  nodes: [fn('out', `return { payload: ${JSON.stringify(tag)} };`), { id: 'note', type: 'comment', text: 'x'.repeat(1000) }],
});

const opened: Platform[] = [];
afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()));
});

const twins: Array<[string, () => Promise<Platform>]> = [
  ['memory', async () => createEmbedded({ env })],
  ['redis', async () => useProduction({ env })],
];

describe.each(twins)('scenario storage on the %s twin', (_name, make) => {
  it('a version that would pass the limit is refused with SCENARIO_STORAGE_FULL naming the bytes; nothing changes; other tenants deploy', async () => {
    const p = await make();
    opened.push(p);
    const s = p.scenarios;
    expect((await s.deploy('acme', doc('one') as never)).version).toBe(1);
    expect((await s.deploy('acme', doc('two') as never)).version).toBe(2);
    const kept = (await s.versions('acme', 'big')).reduce((sum, v) => sum + Buffer.byteLength(JSON.stringify(v)), 0);
    expect(kept).toBeGreaterThan(2000);

    const refused = await s.deploy('acme', doc('three') as never).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'SCENARIO_STORAGE_FULL' });
    const m = (refused as Error).message.match(/keeps ([\d,]+) bytes of scenario versions, and this version's ([\d,]+) would pass the limit of ([\d,]+)/);
    expect(m, (refused as Error).message).not.toBeNull();
    const [keptSaid, bytesSaid, limitSaid] = m!.slice(1).map((x) => Number(x.replaceAll(',', '')));
    expect([keptSaid, limitSaid]).toEqual([kept, LIMIT]);
    expect(kept + bytesSaid!).toBeGreaterThan(LIMIT);

    // Nothing was written: still two versions, the second current.
    expect((await s.versions('acme', 'big')).map((v) => v.version)).toEqual([1, 2]);
    const current = (await s.get('acme', 'big'))!;
    expect(versionOf(current)).toBe(2);
    // An unchanged deploy is still a no-op, and a rollback (a new version) is refused too.
    expect(await s.deploy('acme', doc('two') as never)).toMatchObject({ changed: false, version: 2 });
    await expect(s.rollback('acme', 'big', 1)).rejects.toMatchObject({ code: 'SCENARIO_STORAGE_FULL' });
    // The bound is the tenant's own: another tenant deploys the same documents.
    expect((await s.deploy('other', doc('three') as never)).version).toBe(1);
  });

  it('the API answers 409 SCENARIO_STORAGE_FULL in the error shape', async () => {
    const p = await make();
    opened.push(p);
    const app = await buildServer(p, {});
    try {
      const key = await p.keys.create('acme');
      const put = (tag: string) =>
        app.inject({ method: 'PUT', url: '/api/scenarios/big', headers: { authorization: `Bearer ${key}` }, payload: doc(tag) as object });
      expect((await put('one')).statusCode).toBe(201);
      expect((await put('two')).statusCode).toBe(200);
      const res = await put('three');
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('SCENARIO_STORAGE_FULL');
      expect(res.json().error.message).toMatch(/^scenario big was not deployed: tenant acme keeps [\d,]+ bytes of scenario versions/);
    } finally {
      await app.close();
    }
  });
});
