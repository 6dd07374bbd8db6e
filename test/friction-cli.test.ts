/**
 * Friction of issue 15 on the production command line (Redis): the tenant named in every output
 * and a typo refused, the numbers in a max-active refusal, warnings when enabling a cron
 * scenario the tenant cannot afford and when deploying references nothing will resolve.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { instantsBetween } from '../core/cron.js';
import type { Production } from '../redis/production.js';
import { runCli } from './helpers/cli.js';
import { Processes } from './helpers/processes.js';
import { redisUrl, useProduction } from './helpers/production.js';
import { fn, scenarioOf } from './helpers/run.js';

const KEY_HEX = 'ab'.repeat(32);
let p: Production;
beforeEach(async () => {
  p = await useProduction({ env: { FLOWMETER_SECRETS_KEY: KEY_HEX } });
});
const procs = new Processes();
afterEach(async () => {
  await procs.killAll();
  await p.close();
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(['--redis', redisUrl(), '--prefix', p.redisKeys.prefix, ...args], env);
const dir = mkdtempSync(join(tmpdir(), 'fm-fcli-'));
function file(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(doc));
  return path;
}

describe('quota set --max-active', () => {
  it('the refusal to enable says how many are enabled and the limit; none unsets it; a limit below the enabled count warns', async () => {
    for (const id of ['one', 'two']) await p.scenarios.deploy('acme', scenarioOf({ id, start: 'f', nodes: [fn('f', 'return msg;')] }));
    expect((await cli(['quota', 'set', '--tenant', 'acme', '--max-active', '1'])).code).toBe(0);
    expect(await cli(['scenarios', 'enable', 'one', '--tenant', 'acme'])).toMatchObject({ code: 0, stdout: 'enabled one for tenant acme\n' });
    const refused = await cli(['scenarios', 'enable', 'two', '--tenant', 'acme']);
    expect([refused.code, refused.stderr]).toEqual([
      2,
      'flowmeter: tenant acme has 1 scenario enabled and its maxActiveScenarios is 1: disable one, or raise the limit with `flowmeter quota set --tenant acme --max-active N` (none: no limit)\n',
    ]);
    expect(await p.scenarios.isEnabled('acme', 'two')).toBe(false);

    const lower = await cli(['quota', 'set', '--tenant', 'acme', '--max-active', '0']);
    expect(lower.code).toBe(0);
    expect(lower.stderr).toBe(
      'warning: tenant acme has 1 scenarios enabled, more than --max-active 0: they stay enabled, and no other can be enabled until fewer than 0 are\n',
    );
    const unset = await cli(['quota', 'set', '--tenant', 'acme', '--max-active', 'none']);
    expect(unset.code, unset.stderr).toBe(0);
    expect(JSON.parse(unset.stdout)).not.toHaveProperty('maxActiveScenarios');
    expect((await p.ledger.getQuota('acme')).maxActiveScenarios).toBeUndefined();
    expect((await cli(['scenarios', 'enable', 'two', '--tenant', 'acme'])).code).toBe(0);

    // The API: null unsets it; null for a required field is still refused.
    const app = await buildServer(p, { adminKey: 'adm-key' });
    try {
      const put = (payload: unknown) =>
        app.inject({ method: 'PUT', url: '/api/quota?tenant=acme', headers: { authorization: 'Bearer adm-key' }, payload: payload as object });
      expect((await put({ maxActiveScenarios: 3 })).json()).toMatchObject({ maxActiveScenarios: 3 });
      const unsetByApi = await put({ maxActiveScenarios: null });
      expect(unsetByApi.statusCode).toBe(200);
      expect(unsetByApi.json()).not.toHaveProperty('maxActiveScenarios');
      expect((await put({ monthlyActions: null })).statusCode).toBe(400);
    } finally {
      await app.close();
    }
    expect((await cli(['quota', 'set', '--tenant', 'acme', '--max-active', 'nine'])).stderr).toBe(
      'flowmeter: --max-active must be a whole number, got "nine"\n',
    );
  });
});

describe('the tenant in every output; a typo is refused with a suggestion', () => {
  it('reading commands refuse an unknown tenant; outputs name the tenant', async () => {
    await p.scenarios.deploy('acme', scenarioOf({ id: 'one', start: 'f', nodes: [fn('f', 'return msg;')] }));
    const run = await p.trigger('acme', 'one', null, { type: 'manual' });
    const typo = 'flowmeter: no tenant "acmee"; did you mean "acme"?\n';
    for (const args of [
      ['scenarios', 'list'],
      ['scenarios', 'versions', 'one'],
      ['scenarios', 'enable', 'one'],
      ['runs', 'list'],
      ['runs', 'show', run.runId],
      ['runs', 'resume', run.runId],
      ['trigger', 'one'],
      ['keys', 'list'],
      ['secrets', 'list'],
      ['usage'],
      ['usage', 'export', '--period', '2026-01'],
      ['estimate', file('one.json', { id: 'one', trigger: { type: 'manual' }, start: 'f', nodes: [fn('f', 'return msg;')] })],
    ]) {
      const r = await cli([...args, '--tenant', 'acmee']);
      expect([args.join(' '), r.code, r.stderr, r.stdout]).toEqual([args.join(' '), 2, typo, '']);
    }
    expect(await p.runs.list('acmee')).toEqual([]);

    expect((await cli(['scenarios', 'list', '--tenant', 'acme'])).stdout).toMatch(/^scenarios of tenant acme:\ndisabled {2}one /);
    expect((await cli(['runs', 'list', '--tenant', 'acme'])).stdout).toMatch(new RegExp(`^runs of tenant acme:\\n${run.runId} `));
    expect((await cli(['runs', 'list'])).stdout).toBe('no runs for tenant default\n');
    // Changing the quota without --tenant says which tenant it changed.
    const quiet = await cli(['quota', 'set', '--monthly', '10']);
    expect([quiet.code, quiet.stderr]).toEqual([0, 'note: no --tenant given, so this changes the quota of tenant default\n']);
    expect(JSON.parse(quiet.stdout)).toMatchObject({ tenant: 'default', monthlyActions: 10 });
    expect((await cli(['quota', 'set', '--monthly', '10', '--tenant', 'default'])).stderr).toBe('');
    expect((await cli(['quota', '--tenant', 'acme', 'set', '--monthly', '10'])).stderr).toBe('');
    expect((await cli(['scenarios', 'disable', 'one', '--tenant', 'acme'])).stdout).toBe('disabled one for tenant acme\n');
  });

  it('invoice and plan show refuse an unknown tenant the same way; a known tenant without a plan is told it has none', async () => {
    const plan = file('plan.json', { name: 'Team', currency: 'EUR', basePrice: 10, includedActions: 50, overagePrice: 0.1 });
    expect((await cli(['plan', 'set', '--tenant', 'acme', '--file', plan])).code).toBe(0);
    await p.scenarios.deploy('beta', scenarioOf({ id: 'one', start: 'f', nodes: [fn('f', 'return msg;')] }));
    const typo = 'flowmeter: no tenant "acmee"; did you mean "acme"?\n';
    for (const args of [['invoice'], ['invoice', '--json', '--period', '2026-01'], ['plan', 'show'], ['plan', '--tenant', 'acmee', 'show']]) {
      const r = await cli(args.includes('--tenant') ? args : [...args, '--tenant', 'acmee']);
      expect([args.join(' '), r.code, r.stderr, r.stdout]).toEqual([args.join(' '), 2, typo, '']);
    }
    expect(await cli(['invoice', '--tenant', 'zzz'])).toMatchObject({ code: 2, stderr: 'flowmeter: no tenant "zzz"\n', stdout: '' });
    // Nothing was read into being: the misspelt tenant still has no plan or quota of its own.
    expect(await p.ledger.getPlan('acmee')).toBeNull();
    expect(await p.redis.sismember(p.redisKeys.tenants(), 'acmee')).toBe(0);
    // The right tenant reads as before.
    const shown = await cli(['plan', 'show', '--tenant', 'acme']);
    expect([shown.code, shown.stderr]).toEqual([0, '']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'Team', currency: 'EUR', includedActions: 50 });
    const inv = await cli(['invoice', '--tenant', 'acme', '--json']);
    expect([inv.code, inv.stderr]).toEqual([0, '']);
    expect(JSON.parse(inv.stdout)).toMatchObject({ tenant: 'acme', currency: 'EUR' });
    // A known tenant without a plan: not the typo refusal, the plan it lacks.
    expect(await cli(['plan', 'show', '--tenant', 'beta'])).toMatchObject({
      code: 2,
      stderr: 'flowmeter: tenant beta has no plan; set one with plan set --file PLAN.json\n',
    });
    expect(await cli(['invoice', '--tenant', 'beta'])).toMatchObject({
      code: 2,
      stderr: 'flowmeter: tenant beta has no plan; set one with plan set --file PLAN.json or PUT /api/plan\n',
    });
  });
});

describe('enabling a cron scenario the tenant cannot afford', () => {
  it('warns with the firings left in the period, their cost and the actions left; enables it all the same', async () => {
    const every = file('every.json', {
      id: 'every',
      trigger: { type: 'cron', schedule: '* * * * *' },
      start: 'a',
      nodes: [fn('a', 'return msg;', 'b'), fn('b', 'return msg;')],
    });
    await p.ledger.setQuota('acme', { monthlyActions: 0 });
    const r = await cli(['scenarios', 'deploy', every, '--tenant', 'acme', '--enable']);
    expect(r.code, r.stderr).toBe(0);
    const m =
      /^warning: every fires (\d+) times by the end of (\d{4}-\d{2}) \(([^)]+)\), (\d+) to (\d+) actions \(2 to 3 a run\), and tenant acme has 0 actions left\n$/.exec(
        r.stderr,
      );
    expect(m, r.stderr).not.toBeNull();
    const [firings, period, end, least, most] = [Number(m![1]), m![2], m![3]!, Number(m![4]), Number(m![5])];
    expect(firings).toBeGreaterThan(0);
    // A Function may fail (uncaught: the run ends after it), so 2 to 3 actions a run.
    expect([least, most]).toEqual([firings * 2, firings * 3]);
    expect(period).toBe((await p.ledger.usage('acme', new Date())).period.key);
    // The count is that of the scheduler's calendar up to the period's end (a minute may pass).
    const now = instantsBetween('* * * * *', 'UTC', new Date(), new Date(Date.parse(end) - 1), 100_000).length;
    expect(Math.abs(now - firings)).toBeLessThanOrEqual(1);
    expect(await p.scenarios.isEnabled('acme', 'every')).toBe(true);

    // Once a year fits easily: no warning, through `scenarios enable` as well.
    const yearly = file('yearly.json', { id: 'yearly', trigger: { type: 'cron', schedule: '0 0 1 1 *' }, start: 'a', nodes: [fn('a', 'return msg;')] });
    await cli(['scenarios', 'deploy', yearly, '--tenant', 'acme']);
    expect(await cli(['scenarios', 'enable', 'yearly', '--tenant', 'acme'])).toMatchObject({ code: 0, stderr: '' });
    await cli(['scenarios', 'disable', 'every', '--tenant', 'acme']);
    expect((await cli(['scenarios', 'enable', 'every', '--tenant', 'acme'])).stderr).toMatch(/^warning: every fires \d+ times/);

    // The API answers the same warning with the enabling.
    await p.scenarios.disable('acme', 'every');
    const app = await buildServer(p, {});
    try {
      const key = await p.keys.create('acme');
      const res = await app.inject({ method: 'POST', url: '/api/scenarios/every/enable', headers: { authorization: `Bearer ${key}` } });
      expect(res.statusCode).toBe(200);
      expect(res.json().warnings).toHaveLength(1);
      expect(res.json().warnings[0]).toMatch(/^every fires \d+ times by the end of \d{4}-\d{2} .*, and tenant acme has 0 actions left$/);
    } finally {
      await app.close();
    }
  });
});

describe('deploy warns about references nothing will resolve', () => {
  it('a ${secret:} the tenant has not stored; an ${env:} not set here (the worker reads it)', async () => {
    const doc = file('refs.json', {
      id: 'refs',
      trigger: { type: 'manual' },
      connections: { crm: { baseUrl: 'https://crm.example.com', headers: { 'X-Key': '${secret:CRM_KEY}', 'X-Token': '${env:API_TOKEN}' } } },
      start: 'c',
      nodes: [{ id: 'c', type: 'connector', connection: 'crm', url: '/x' }],
    });
    const env = { FLOWMETER_TENANT_ENV: 'API_TOKEN' };
    const r = await cli(['scenarios', 'deploy', doc, '--tenant', 'acme'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      'warning: ${secret:CRM_KEY} is not stored for tenant acme; runs fail with SECRET_MISSING until `flowmeter secrets set CRM_KEY --tenant acme`\n' +
        'warning: ${env:API_TOKEN} is not set here; the worker reads it from its own environment when the scenario runs, so set API_TOKEN there\n',
    );
    // PUT /api/scenarios answers the same warning for a secret that is not stored.
    const app = await buildServer(p, {});
    try {
      const key = await p.keys.create('acme');
      const put = (secret: string) =>
        app.inject({
          method: 'PUT',
          url: '/api/scenarios/refs2',
          headers: { authorization: `Bearer ${key}` },
          payload: {
            connections: { crm: { baseUrl: 'https://crm.example.com', headers: { 'X-Key': `\${secret:${secret}}` } } },
            start: 'c',
            nodes: [{ id: 'c', type: 'connector', connection: 'crm', url: '/x' }],
          },
        });
      const res = await put('OTHER_KEY');
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().warnings).toEqual([
        '${secret:OTHER_KEY} is not stored for tenant acme; runs fail with SECRET_MISSING until it is (PUT /api/secrets/OTHER_KEY or flowmeter secrets set OTHER_KEY)',
      ]);
      await p.secrets.set('acme', 'CRM_KEY', 'v');
      expect((await put('CRM_KEY')).json().warnings).toEqual([]);
    } finally {
      await app.close();
    }
    const again = await cli(['scenarios', 'deploy', doc, '--tenant', 'acme'], { ...env, API_TOKEN: 't' });
    expect([again.code, again.stderr]).toEqual([0, '']);
  });
});

describe('worker log lines', () => {
  it('a failed run logs its error code and node (a real worker process)', async () => {
    await p.scenarios.deploy('acme', scenarioOf({ id: 'boom', start: 'ok', nodes: [fn('ok', 'return msg;', 'bad'), fn('bad', 'throw new Error("no");')] }));
    const w = await procs.worker({ redisUrl: redisUrl(), prefix: p.redisKeys.prefix, concurrency: 1 });
    const { runId } = await p.trigger('acme', 'boom', null, { type: 'manual' });
    await w.waitFor('"msg":"run failed: FUNCTION_ERROR at node bad"');
    const line = w.logs().find((l) => l.runId === runId);
    expect(line).toMatchObject({ tenant: 'acme', scenarioId: 'boom', status: 'failed', error: 'FUNCTION_ERROR', node: 'bad' });
  }, 30_000);
});

describe('runs show without --json', () => {
  it('shows the outputs and log() lines; --verbose the payload and inputs', async () => {
    await p.scenarios.deploy(
      'acme',
      scenarioOf({ id: 'logs', start: 'f', nodes: [fn('f', 'log("got", msg.payload.n);\nreturn { payload: { n: msg.payload.n + 1 } };')] }),
    );
    p.startWorker({ concurrency: 1 });
    const run = await p.waitFor('acme', (await p.trigger('acme', 'logs', { n: 1 }, { type: 'manual' })).runId, async () => undefined);
    expect(run.status).toBe('succeeded');
    const shown = await cli(['runs', 'show', run.runId, '--tenant', 'acme']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('\nlogs:\n  [f] got 1\n');
    expect(shown.stdout).toContain('\noutputs:\n  1. {"n":2}\n');
    expect(shown.stdout).not.toContain('inputs:');
    const verbose = await cli(['runs', 'show', run.runId, '--tenant', 'acme', '--verbose']);
    expect(verbose.stdout).toContain('\npayload: {"n":1}\n');
    expect(verbose.stdout).toMatch(/\ninputs:\n {2}2 f: \{"payload":\{"n":1\}/);
  }, 30_000);
});

describe('runs resume --wait with no worker connected', () => {
  it('says so at once and resumes nothing', async () => {
    await p.scenarios.deploy(
      'acme',
      scenarioOf({ id: 'three', start: 'a', nodes: [fn('a', 'return msg;', 'b'), fn('b', 'return msg;', 'c'), fn('c', 'return msg;')] }),
    );
    // Manual: raising the quota must not resume the run by itself.
    await p.ledger.setQuota('acme', { monthlyActions: 2, resumeHalted: 'manual' });
    const worker = p.startWorker({ concurrency: 1 });
    const run = await p.waitFor('acme', (await p.trigger('acme', 'three', null, { type: 'manual' })).runId, async () => undefined);
    expect(run.status).toBe('halted');
    await worker.close();
    await p.ledger.setQuota('acme', { monthlyActions: 100 });
    const r = await cli(['runs', 'resume', run.runId, '--tenant', 'acme', '--wait']);
    expect([r.code, r.stdout], r.stderr).toEqual([1, '']);
    expect(r.stderr).toMatch(/^flowmeter: no worker is connected to the run queue[^\n]*\n$/);
    expect((await p.runs.get('acme', run.runId))!.status).toBe('halted');
  }, 30_000);
});
