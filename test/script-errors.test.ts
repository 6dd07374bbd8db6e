import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { errorMessage, isErrorCode } from '../core/errors.js';
import { MemoryScenarioStore, type ScenarioStore } from '../engine/scenario-store.js';
import { LUA_DIR, loadLua } from '../redis/lua-loader.js';
import { SCRIPT_CODES, SCRIPT_ERRORS, type ScriptCodeName, scriptError } from '../redis/script-errors.js';
import type { Scenario } from '../scenario/schema.js';
import { redisUrl, useProduction } from './helpers/production.js';

const names = Object.keys(SCRIPT_CODES) as ScriptCodeName[];
const scripts = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));

describe('script return codes', () => {
  it('are unique negative values, each mapped to a registry code by scriptError', () => {
    const values = Object.values(SCRIPT_CODES);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toBeLessThan(0);
    const seen = new Set<string>();
    for (const name of names) {
      const err = scriptError(SCRIPT_CODES[name], { tenant: 't', runId: 'r1', scenarioId: 's1' });
      expect(isErrorCode(err.code), name).toBe(true);
      expect(err.code, name).toBe(SCRIPT_ERRORS[name].code);
      seen.add(`${err.code}: ${err.message}`);
    }
    expect(seen.size).toBe(names.length);
    expect(scriptError(-99)).toMatchObject({ code: 'INTERNAL', message: 'a Lua script returned the unknown code -99' });
  });

  it('are the same table in lib-codes.lua, as Redis runs it', async () => {
    const redis = new Redis(redisUrl());
    try {
      const lua = `${loadLua('lib-codes')}\nlocal out = {}\nfor name, v in pairs(ERR) do out[#out + 1] = name .. '=' .. v end\nreturn out`;
      const pairs = (await redis.eval(lua, 0)) as string[];
      expect(Object.fromEntries(pairs.map((p) => p.split('=')).map(([n, v]) => [n, Number(v)]))).toEqual(SCRIPT_CODES);
    } finally {
      redis.disconnect();
    }
  });

  it('every script documents the codes it returns, with their values, and returns no bare negative number', () => {
    for (const file of scripts) {
      const text = readFileSync(join(LUA_DIR, file), 'utf8');
      const end = text.indexOf(']]');
      const header = text.slice(0, end);
      const body = text.slice(end);
      const documented = new Set<string>();
      for (const m of header.matchAll(/ERR\.([A-Z_]+) \((-\d+)\)/g)) {
        expect(names, `${file}: ${m[1]}`).toContain(m[1]);
        expect(SCRIPT_CODES[m[1] as ScriptCodeName], `${file}: ${m[1]}`).toBe(Number(m[2]));
        documented.add(m[1]!);
      }
      const returned = new Set([...body.matchAll(/return ERR\.([A-Z_]+)/g)].map((m) => m[1]!));
      expect([...returned].sort(), file).toEqual([...documented].sort());
      expect(body, file).not.toMatch(/return\s+-\d/);
      if (returned.size > 0) expect(body, file).toContain('--- @include "lib-codes"');
    }
  });

  it("give the Redis scenario store the memory twin's errors, word for word", async () => {
    const scenario = { id: 'one', trigger: { type: 'manual' }, nodes: [] } as unknown as Scenario;
    const memory = new MemoryScenarioStore();
    const p = await useProduction();
    try {
      await p.ledger.setQuota('t', { maxActiveScenarios: 1 });
      for (const store of [memory, p.scenarios] as ScenarioStore[]) {
        await store.deploy('t', scenario);
        await store.deploy('t', { ...scenario, id: 'two' });
        await store.enable('t', 'one', 1);
      }
      const failures = async (store: ScenarioStore) => [
        await store.enable('t', 'two', 1).then(
          () => 'enabled',
          (e) => `${(e as { code: string }).code}: ${errorMessage(e)}`,
        ),
        await store.enable('t', 'ghost', 1).then(
          () => 'enabled',
          (e) => `${(e as { code: string }).code}: ${errorMessage(e)}`,
        ),
      ];
      const expected = [
        'MAX_ACTIVE_SCENARIOS: tenant t has 1 scenario enabled and its maxActiveScenarios is 1: disable one, or raise the limit with `flowmeter quota set --tenant t --max-active N` (none: no limit)',
        'NOT_FOUND: no scenario "ghost"',
      ];
      expect(await failures(memory)).toEqual(expected);
      expect(await failures(p.scenarios)).toEqual(expected);
      await expect(p.runs.markResumed('t', 'no-such-run')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no run no-such-run for tenant t' });
    } finally {
      await p.close();
    }
  });
});
