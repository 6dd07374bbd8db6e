/** The command line as a user meets it: the built `flowmeter` binary, spawned. */
import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const bin = resolve('bin/flowmeter.js');
const dir = mkdtempSync(join(tmpdir(), 'fm-cli-'));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--no-node-snapshot', bin, ...args], { encoding: 'utf8', env: { ...process.env, FLOWMETER_REDIS_URL: '', ...env }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

const ok = file('ok.json', {
  id: 'ok', start: 'a', trigger: { type: 'manual' },
  nodes: [{ id: 'a', type: 'function', code: 'return { payload: msg.payload * 2 };' }, { id: 'orphan', type: 'function', code: 'return msg;' }],
});

beforeAll(() => {
  if (!existsSync('dist/cli/main.js')) throw new Error('build first: npm run build');
});

describe('flowmeter CLI', () => {
  it('validate: 0 with warnings on stderr; 2 listing every problem', () => {
    const good = cli(['validate', ok]);
    expect(good.code).toBe(0);
    expect(good.err).toContain('warning: nodes[1]: node "orphan" is not reachable');
    const bad = cli(['validate', file('bad.json', { id: 'x', start: 'a', nodes: [{ id: 'a', type: 'function', code: 'return msg', next: 'b' }, { id: 'b', type: 'filter', when: { path: 'nope', op: 'eq' } }, { id: 'c', type: 'mystery' }] })]);
    expect(bad.code).toBe(2);
    const lines = bad.err.trim().split('\n');
    expect(lines).toContain('nodes[1].when.path: must be a path rooted at msg or vars, like msg.payload.score');
    expect(lines.some((l) => l.startsWith('nodes[2].type: unknown node type "mystery"'))).toBe(true);
  });

  it('run --json prints one run record; exit codes 0, 1, 3', () => {
    const r = cli(['run', ok, '--payload', '21', '--json']);
    expect(r.code).toBe(0);
    const run = JSON.parse(r.out);
    expect(run).toMatchObject({ status: 'succeeded', actions: 2, outputs: [{ payload: 42 }] });
    const failing = file('fail.json', { id: 'f', start: 'a', nodes: [{ id: 'a', type: 'exception', message: 'nope', code: 'E_NOPE' }] });
    const f = cli(['run', failing, '--json']);
    expect(f.code).toBe(1);
    expect(JSON.parse(f.out).error).toMatchObject({ code: 'E_NOPE', nodeId: 'a' });
    const h = cli(['run', ok, '--quota', '1', '--json']);
    expect(h.code).toBe(3);
    expect(JSON.parse(h.out)).toMatchObject({ status: 'halted', actions: 1, error: { code: 'QUOTA_EXHAUSTED' } });
    const rej = cli(['run', ok, '--quota', '0', '--json']);
    expect(rej.code).toBe(3);
    expect(JSON.parse(rej.out)).toMatchObject({ status: 'rejected', actions: 0 });
  });

  it('run without --json prints a task table and a summary line', () => {
    const r = cli(['run', ok, '--payload', '1']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^seq\s+node\s+type\s+status\s+actions\s+duration/m);
    expect(r.out).toMatch(/^run run_\w+ succeeded: 2 actions, 2 tasks, 1 output in /m);
  });

  it('bad input gets one line naming what is wrong, and exit 2', () => {
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
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
      expect(r.err).toMatch(re);
    }
  });

  it('an unreachable Redis is one line and a non-zero exit', () => {
    const r = cli(['--redis', 'redis://127.0.0.1:1', 'usage']);
    expect(r.code).not.toBe(0);
    expect(r.err.trim()).toBe('flowmeter: cannot reach Redis at redis://127.0.0.1:1: ECONNREFUSED');
  });

  it('schema prints a JSON Schema', () => {
    const r = cli(['schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ type: 'object', title: 'Flowmeter scenario' });
  });
});
