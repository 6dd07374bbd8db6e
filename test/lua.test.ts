import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis, type FlowRedis, SCRIPTS } from '../redis/client.js';
import { settleArgs } from '../redis/ledger.js';
import { LUA_DIR, loadLua } from '../redis/lua-loader.js';
import { BILLED_TTL_SECONDS } from '../redis/ttl.js';
import { redisUrl, uniquePrefix } from './helpers/production.js';

let dir: string | null = null;
function luaDir(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'fm-lua-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, `${name}.lua`), text);
  return dir;
}
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** `use` with a connection to the test Redis; then `keys` are deleted and the connection closed. */
async function withRedis(use: (redis: FlowRedis) => Promise<void>, keys: string[] = []): Promise<void> {
  const redis = await connectRedis(redisUrl());
  try {
    await use(redis);
  } finally {
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}

/**
 * checkpoint.lua's arguments after its keys (see its header): no owner token, record `{"v":1}`,
 * no state, not ended, no events; run r1 of scenario s1, its status, the write id, the new
 * tasks and outputs (JSONs), no state fields, and a settlement's arguments when given.
 */
function checkpointArgs(status: string, writeId: string, tasks: string[], outputs: string[], settle?: Array<string | number>): Array<string | number> {
  const head = ['', '{"v":1}', '', '0', 100, status, writeId, '', '', 'r1', 's1', ''];
  return [...head, tasks.length, tasks.join('\n'), outputs.length, outputs.join('\n'), 0, settle ? '1' : '0', ...(settle ?? [])];
}

describe('Lua includes', () => {
  it('expands --- @include recursively, each file once, where the line stands', () => {
    const d = luaDir({
      main: '-- main\n--- @include "lib-a"\n--- @include "lib-b.lua"\nreturn a() + b()\n',
      'lib-a': '--- @include "lib-c"\nlocal function a() return c() end\n',
      'lib-b': '--- @include "lib-c"\nlocal function b() return c() end\n',
      'lib-c': 'local function c() return 1 end\n',
    });
    const src = loadLua('main', d);
    expect(src.match(/local function c\(\)/g)).toHaveLength(1);
    expect(src.indexOf('function c')).toBeLessThan(src.indexOf('function a'));
    expect(src.indexOf('function a')).toBeLessThan(src.indexOf('function b'));
    expect(src.indexOf('function b')).toBeLessThan(src.indexOf('return a() + b()'));
    expect(src).not.toMatch(/^---\s*@include/m);
  });

  it('fails naming the script and the include that has no file', () => {
    const d = luaDir({ main: '--- @include "lib-a"\nreturn 1\n', 'lib-a': '--- @include "lib-gone"\n' });
    expect(() => loadLua('main', d)).toThrow(/lib-a\.lua includes "lib-gone": cannot read .*lib-gone\.lua: there is no such file/);
    try {
      loadLua('main', d);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('INTERNAL');
    }
  });

  it('refuses a malformed include line instead of leaving it a comment', () => {
    const d = luaDir({ main: '--- @include lib-a\nreturn 1\n' });
    expect(() => loadLua('main', d)).toThrow('main.lua: malformed include "--- @include lib-a"');
  });

  it('loads every script of redis/lua/, libraries included, with nothing left to include', () => {
    const files = readdirSync(LUA_DIR)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -4));
    expect(SCRIPTS.map((s) => s.script).sort()).toEqual(files.filter((f) => !f.startsWith('lib-')).sort());
    for (const s of SCRIPTS) {
      const src = loadLua(s.script);
      expect(src, s.script).not.toMatch(/^---\s*@include/m);
      for (const m of readFileSync(join(LUA_DIR, `${s.script}.lua`), 'utf8').matchAll(/^--- @include "([^"]+)"$/gm)) {
        expect(src, s.script).toContain(
          readFileSync(join(LUA_DIR, `${m[1]}.lua`), 'utf8')
            .split('\n')
            .find((l) => l.startsWith('local ')),
        );
      }
    }
  });
});

describe('request ids (lib-request.lua)', () => {
  it('apply a checkpoint or a resume resent after a lost reply once, and answer it as the first', async () => {
    const run = `${uniquePrefix()}:run`;
    const keys = [run, `${run}:tasks`, `${run}:outputs`];
    await withRedis(async (redis) => {
      await redis.hset(run, 'record', '{}', 'status', 'running');
      // No settlement: the billing keys are the run's own.
      const checkpoint = (writeId: string) =>
        redis.fmCheckpoint(...keys, run, run, run, run, run, run, ...checkpointArgs('halted', writeId, ['{"seq":1}'], []));
      expect(await checkpoint('w1')).toEqual([1]);
      expect(await checkpoint('w1')).toEqual([1]);
      expect(await redis.llen(`${run}:tasks`)).toBe(1);
      expect(await checkpoint('w2')).toEqual([1]);
      expect(await redis.llen(`${run}:tasks`)).toBe(2);

      expect(await redis.fmResume(run, 'q1')).toBe(1);
      expect(await redis.fmResume(run, 'q1')).toBe(1);
      expect(await redis.fmResume(run, 'q2')).toBe(-4);
      expect(await redis.hget(run, 'status')).toBe('queued');
      await redis.hset(run, 'status', 'running');
      expect(await redis.fmResume(run, 'q1')).toBe(-4); // a late resend once the run has moved on
    }, keys);
  });
});

describe('checkpoint.lua arguments', () => {
  it('splits the joined tasks and outputs, and bills each entry of the JSON list once, whatever its node id', async () => {
    const run = `${uniquePrefix()}:run`;
    const k = (name: string) => `${run}:${name}`;
    const keys = [run, k('tasks'), k('outputs'), k('quota'), k('period'), k('scen'), k('days'), k('billed'), k('leases')];
    const nodes = ['$trigger', 'a\nb', 'é"\\', '', '\ud800x'];
    const tasks = [{ seq: 1, text: 'line\nbreak' }, { seq: 2 }, { seq: 3, list: [] }];
    const settlement = {
      tenant: 't',
      runId: 'r1',
      scenarioId: 's1',
      billable: true,
      period: '2026-01',
      entries: nodes.map((node, i) => ({ key: String(i + 1), trigger: node === '$trigger', date: '2026-01-02', node })),
      heldUsed: 0,
      release: 0,
      at: new Date('2026-01-02T00:00:00Z'),
    };
    await withRedis(async (redis) => {
      await redis.hset(run, 'record', '{}', 'status', 'running');
      const checkpoint = (writeId: string, entries: typeof settlement.entries) =>
        redis.fmCheckpoint(
          ...keys,
          ...checkpointArgs(
            'running',
            writeId,
            tasks.map((t) => JSON.stringify(t)),
            ['{"o":1}', '{"o":2}'],
            settleArgs({ ...settlement, entries }, 100),
          ),
        );
      expect(await checkpoint('w1', settlement.entries)).toEqual([1]);
      expect((await redis.lrange(k('tasks'), 0, -1)).map((t) => JSON.parse(t))).toEqual(tasks);
      expect(await redis.lrange(k('outputs'), 0, -1)).toEqual(['{"o":1}', '{"o":2}']);
      // billed again with one new entry: only that one counts
      await checkpoint('w2', [...settlement.entries, { key: '9', trigger: false, date: '2026-01-02', node: 'a\nb' }]);
      expect(await redis.hget(k('period'), 'used')).toBe('6');
      expect(await redis.hget(k('scen'), 's1:runs')).toBe('1');
      expect(await redis.hget(k('scen'), 's1:actions')).toBe('6');
      expect(Number(await redis.hget(k('scen'), 's1:n:a\nb'))).toBe(2 ** 32 + 2);
      expect(Number(await redis.hget(k('scen'), 's1:n:é"\\'))).toBe(2 ** 32 + 1);
      expect(Number(await redis.hget(k('scen'), 's1:n:\ufffdx'))).toBe(2 ** 32 + 1); // as a lone surrogate arrived before
      expect(await redis.hget(k('days'), '2026-01-02')).toBe('6');
    }, keys);
  });
});

describe('expiries (lib-ttl.lua, redis/ttl.ts)', () => {
  it('keep leases and billed sets past the end of the longest billing period', async () => {
    await withRedis(async (redis) => {
      const [leases, billedEnded] = (await redis.eval(`${loadLua('lib-ttl')}\nreturn { TTL.LEASES, TTL.BILLED_ENDED }`, 0)) as number[];
      const period = 32 * 86_400; // 31 days, and a day of timezone offset
      expect(leases).toBe(40 * 86_400);
      expect(leases).toBeGreaterThan(period);
      expect(BILLED_TTL_SECONDS).toBeGreaterThan(period);
      expect(billedEnded).toBeGreaterThan(0);
    });
  });
});
