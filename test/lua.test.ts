import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis, SCRIPTS } from '../redis/client.js';
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
    const redis = await connectRedis(redisUrl());
    const run = `${uniquePrefix()}:run`;
    try {
      await redis.hset(run, 'record', '{}', 'status', 'running');
      const checkpoint = (writeId: string) =>
        redis.fmCheckpoint(
          run,
          `${run}:tasks`,
          `${run}:outputs`,
          run,
          run,
          run,
          run,
          run,
          run,
          '',
          '{"v":1}',
          '',
          '0',
          100,
          'halted',
          writeId,
          '',
          '',
          'r1',
          's1',
          '',
          1,
          '{"seq":1}',
          0,
          '',
          0,
          '0',
        );
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
    } finally {
      await redis.del(run, `${run}:tasks`, `${run}:outputs`);
      redis.disconnect();
    }
  });
});

describe('checkpoint.lua arguments', () => {
  it('splits the joined tasks and outputs, and bills each entry of the JSON list once, whatever its node id', async () => {
    const redis = await connectRedis(redisUrl());
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
    try {
      await redis.hset(run, 'record', '{}', 'status', 'running');
      const checkpoint = (writeId: string, entries: typeof settlement.entries) =>
        redis.fmCheckpoint(
          ...keys,
          '',
          '{"v":1}',
          '',
          '0',
          100,
          'running',
          writeId,
          '',
          '',
          'r1',
          's1',
          '',
          tasks.length,
          tasks.map((t) => JSON.stringify(t)).join('\n'),
          2,
          '{"o":1}\n{"o":2}',
          0,
          '1',
          ...settleArgs({ ...settlement, entries }, 100),
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
    } finally {
      await redis.del(...keys);
      redis.disconnect();
    }
  });
});

describe('expiries (lib-ttl.lua, redis/ttl.ts)', () => {
  it('keep leases and billed sets past the end of the longest billing period', async () => {
    const redis = await connectRedis(redisUrl());
    try {
      const [leases, billedEnded] = (await redis.eval(`${loadLua('lib-ttl')}\nreturn { TTL.LEASES, TTL.BILLED_ENDED }`, 0)) as number[];
      const period = 32 * 86_400; // 31 days, and a day of timezone offset
      expect(leases).toBe(40 * 86_400);
      expect(leases).toBeGreaterThan(period);
      expect(BILLED_TTL_SECONDS).toBeGreaterThan(period);
      expect(billedEnded).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
  });
});
