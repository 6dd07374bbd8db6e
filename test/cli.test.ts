/**
 * The command line as a user meets it: `main(args, io)` in this process for what commands
 * print and their exit codes, and the built `flowmeter` binary, spawned, once for what only a
 * real process shows (the exit code it leaves with, its stdout and stderr).
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const bin = resolve('bin/flowmeter.js');
const dir = mkdtempSync(join(tmpdir(), 'fm-cli-'));

/** In process, with an empty environment (no FLOWMETER_REDIS_URL). */
async function cli(args: string[]) {
  const r = await runCli(args, {});
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** The built binary, spawned. */
function spawned(args: string[]) {
  const r = spawnSync(process.execPath, ['--no-node-snapshot', bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FLOWMETER_REDIS_URL: '' },
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

const ok = file('ok.json', {
  id: 'ok',
  start: 'a',
  trigger: { type: 'manual' },
  nodes: [
    { id: 'a', type: 'function', code: 'return { payload: msg.payload * 2 };' },
    { id: 'orphan', type: 'function', code: 'return msg;' },
  ],
});

describe('flowmeter CLI', () => {
  it('validate: 0 with warnings on stderr; 2 listing every problem', async () => {
    const good = await cli(['validate', ok]);
    expect(good.code).toBe(0);
    expect(good.err).toContain('warning: nodes[1]: node "orphan" is not reachable');
    const bad = await cli([
      'validate',
      file('bad.json', {
        id: 'x',
        start: 'a',
        nodes: [
          { id: 'a', type: 'function', code: 'return msg', next: 'b' },
          { id: 'b', type: 'filter', when: { path: 'nope', op: 'eq' } },
          { id: 'c', type: 'mystery' },
        ],
      }),
    ]);
    expect(bad.code).toBe(2);
    const lines = bad.err.trim().split('\n');
    expect(lines).toContain('nodes[1].when.path: must be a path rooted at msg or vars, like msg.payload.score');
    expect(lines.some((l) => l.startsWith('nodes[2].type: unknown node type "mystery"'))).toBe(true);
  });

  it('run --json prints one run record; exit codes 0, 1, 3', async () => {
    const r = await cli(['run', ok, '--payload', '21', '--json']);
    expect(r.code).toBe(0);
    const run = JSON.parse(r.out);
    expect(run).toMatchObject({ status: 'succeeded', actions: 2, outputs: [{ payload: 42 }] });
    const failing = file('fail.json', { id: 'f', start: 'a', nodes: [{ id: 'a', type: 'exception', message: 'nope', code: 'E_NOPE' }] });
    const f = await cli(['run', failing, '--json']);
    expect(f.code).toBe(1);
    expect(JSON.parse(f.out).error).toMatchObject({ code: 'E_NOPE', nodeId: 'a' });
    const h = await cli(['run', ok, '--quota', '1', '--json']);
    expect(h.code).toBe(3);
    expect(JSON.parse(h.out)).toMatchObject({ status: 'halted', actions: 1, error: { code: 'QUOTA_EXHAUSTED' } });
    const rej = await cli(['run', ok, '--quota', '0', '--json']);
    expect(rej.code).toBe(3);
    expect(JSON.parse(rej.out)).toMatchObject({ status: 'rejected', actions: 0 });
  });

  it('run without --json prints a task table and a summary line', async () => {
    const r = await cli(['run', ok, '--payload', '1']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^seq\s+node\s+type\s+status\s+actions\s+duration/m);
    expect(r.out).toMatch(/^run run_\w+ succeeded: 2 actions, 2 tasks, 1 output in /m);
  });

  it('bad input gets one line naming what is wrong, and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', join(dir, 'missing.json')], /cannot read scenario file .*missing\.json: no such file/],
      [['run', file('broken.json', '{ "id": ')], /broken\.json is not valid JSON/],
      [['run', ok, '--payload', '{nope'], /--payload is not valid JSON/],
      [['run', ok, '--quota', 'lots'], /--quota must be a whole number/],
      [['run', ok, '--bogus'], /unknown option '--bogus'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['run', ok, '--payload', '1', '--input', ok], /either --input FILE or --payload JSON/],
      [['usage'], /usage needs Redis: pass --redis URL or set FLOWMETER_REDIS_URL/],
      [['worker', '--heap-growth', 'lots'], /--heap-growth must be a whole number, got "lots"/],
      [['worker', '--concurrency', '0'], /--concurrency must be at least 1, got 0/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
      expect(r.err).toMatch(re);
    }
  });

  it('an unreachable Redis is one line and a non-zero exit', async () => {
    const r = await cli(['--redis', 'redis://127.0.0.1:1', 'usage']);
    expect(r.code).not.toBe(0);
    expect(r.err.trim()).toBe('flowmeter: cannot reach Redis at redis://127.0.0.1:1: ECONNREFUSED');
  });

  it('--version prints the version on stdout', async () => {
    expect(await cli(['--version'])).toEqual({ code: 0, out: '0.1.0\n', err: '' });
  });

  it('schema prints a JSON Schema', async () => {
    const r = await cli(['schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ type: 'object', title: 'Flowmeter scenario' });
  });
});

describe('the built binary (a real process)', () => {
  beforeAll(() => {
    if (!existsSync('dist/cli/main.js')) throw new Error('build first: npm run build');
  });

  it('leaves with the exit code of the command: 0, 1, 3, 2; output on stdout, the error on stderr', () => {
    const r = spawned(['run', ok, '--payload', '21', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ status: 'succeeded', actions: 2, outputs: [{ payload: 42 }] });
    expect(r.err).toContain('warning: nodes[1]: node "orphan" is not reachable');
    const failing = file('fail-bin.json', { id: 'f', start: 'a', nodes: [{ id: 'a', type: 'exception', message: 'nope', code: 'E_NOPE' }] });
    const f = spawned(['run', failing, '--json']);
    expect(f.code).toBe(1);
    expect(JSON.parse(f.out).error).toMatchObject({ code: 'E_NOPE', nodeId: 'a' });
    const h = spawned(['run', ok, '--quota', '1', '--json']);
    expect(h.code).toBe(3);
    expect(JSON.parse(h.out)).toMatchObject({ status: 'halted', actions: 1, error: { code: 'QUOTA_EXHAUSTED' } });
    const bad = spawned(['run', ok, '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe('');
    expect(bad.err).toBe("flowmeter: unknown option '--bogus'\n");
  });
});
