/**
 * The contract's scenario cases (test/conformance/cases/*.json, copied from the shared
 * conformance suite), each run through the built command line as a user runs it:
 * `node bin/flowmeter.js run FILE --json [ARGS] [--payload JSON]`, with a loopback HTTP peer
 * on 127.0.0.1 for connector cases (`$PEER` in a scenario). A case is
 * `{ name, scenario, payload?, args?, expect: { exit, status, actions, outputs?,
 * outputsUnordered?, errorCode?, stderr?, assert? } }`; `outputs` compares the payloads of
 * run.outputs, `assert` is a JS expression over `run`.
 *
 * test/conformance/pending/ holds cases for an open issue; they do not run by default
 * (FM_CONFORMANCE_DIR=test/conformance/pending npx vitest run test/conformance runs them).
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Case {
  name: string;
  scenario: unknown;
  payload?: unknown;
  args?: string[];
  expect: {
    exit?: number;
    status?: string;
    actions?: number;
    outputs?: unknown[];
    outputsUnordered?: boolean;
    errorCode?: string;
    stderr?: string;
    assert?: string;
  };
}

interface RunJson {
  status?: string;
  actions?: number;
  tasks?: { actions?: number }[];
  outputs?: { payload: unknown }[];
  error?: { code?: string };
}

const bin = resolve('bin/flowmeter.js');
const casesDirName = process.env.FM_CONFORMANCE_DIR ?? 'test/conformance/cases';
const casesDir = resolve(casesDirName);
const files = readdirSync(casesDir)
  .filter((f) => f.endsWith('.json'))
  .sort();
const cases: Case[] = files.map((f) => JSON.parse(readFileSync(join(casesDir, f), 'utf8')) as Case);
const tmp = mkdtempSync(join(tmpdir(), 'fm-conformance-'));

// The loopback peer for connector cases: the first request of each path gets 503 when the
// path contains "flaky", every other request is echoed back as JSON.
const seen = new Map<string, number>();
let server: Server;
let peer = '';

beforeAll(async () => {
  if (!existsSync('dist/cli/main.js')) throw new Error('build first: npm run build');
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const n = (seen.get(url) ?? 0) + 1;
      seen.set(url, n);
      if (n === 1 && url.includes('flaky')) {
        res.writeHead(503);
        res.end('busy');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          method: req.method,
          url,
          attempt: n,
          idempotencyKey: req.headers['idempotency-key'] ?? null,
          received: body ? JSON.parse(body) : null,
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('loopback peer has no port');
  peer = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

/** Spawns the CLI without blocking, so that the loopback peer keeps answering meanwhile. */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--no-node-snapshot', bin, ...args], {
      env: { ...process.env, FLOWMETER_REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', fail);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

const sortKey = (v: unknown) => JSON.stringify(v);
const sorted = (xs: unknown[]) => [...xs].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));

/** Every way the run departs from the case's expectations (the checks of the shared run.mjs). */
function problems(c: Case, p: { status: number | null; stdout: string; stderr: string }): string[] {
  const e = c.expect,
    out: string[] = [];
  if (e.exit !== undefined && p.status !== e.exit) out.push(`exit ${p.status}, expected ${e.exit}`);
  let run: RunJson | null = null;
  if (e.status !== undefined || e.actions !== undefined || e.outputs || e.assert || e.errorCode) {
    try {
      run = JSON.parse(p.stdout) as RunJson;
    } catch {
      out.push('stdout is not one JSON document');
    }
  }
  if (run) {
    if (e.status !== undefined && run.status !== e.status) out.push(`status ${run.status}, expected ${e.status}`);
    if (e.actions !== undefined && run.actions !== e.actions) out.push(`actions ${run.actions}, expected ${e.actions}`);
    const sum = (run.tasks ?? []).reduce((a, t) => a + (t.actions ?? 0), 0);
    if (sum !== run.actions) out.push(`tasks sum to ${sum} actions, run says ${run.actions}`);
    if (e.errorCode !== undefined && run.error?.code !== e.errorCode) out.push(`error.code ${run.error?.code}, expected ${e.errorCode}`);
    if (e.outputs) {
      let got = (run.outputs ?? []).map((m) => m.payload),
        want = e.outputs;
      if (e.outputsUnordered) {
        got = sorted(got);
        want = sorted(want);
      }
      if (!isDeepStrictEqual(got, want)) out.push(`outputs ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
    if (e.assert) {
      try {
        if (!new Function('run', `return (${e.assert});`)(run)) out.push(`assert failed: ${e.assert}`);
      } catch (x) {
        out.push(`assert threw: ${(x as Error).message}`);
      }
    }
  }
  if (e.stderr && !new RegExp(e.stderr, 'i').test(p.stderr)) out.push(`stderr does not match /${e.stderr}/i: ${p.stderr.trim().slice(0, 200)}`);
  return out;
}

describe(`conformance cases (${casesDirName})`, () => {
  it('finds the cases, each with a name and expectations', () => {
    expect(cases.length).toBeGreaterThan(0);
    if (!process.env.FM_CONFORMANCE_DIR)
      expect(files).toEqual(['01-nine-actions.json', '02-switch-default.json', '03-catch-scoped.json', '04-quota-halts.json', '05-invalid-cycle.json']);
    for (const c of cases) {
      expect(typeof c.name).toBe('string');
      expect(Object.keys(c.expect).length).toBeGreaterThan(0);
    }
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it('the checker reports a run that departs from a case', () => {
    const c = cases.find((x) => x.expect.status !== undefined && x.expect.actions !== undefined);
    expect(c).toBeDefined();
    const wrong = JSON.stringify({ status: 'failed', actions: 1, tasks: [{ actions: 2 }], outputs: [{ payload: 'nope' }] });
    const found = problems(c!, { status: 1, stdout: wrong, stderr: '' });
    expect(found).toContain(`status failed, expected ${c!.expect.status}`);
    expect(found).toContain('tasks sum to 2 actions, run says 1');
    expect(problems(c!, { status: c!.expect.exit ?? 0, stdout: 'not json', stderr: '' })).toEqual(['stdout is not one JSON document']);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const scenarioFile = join(tmp, `${c.name}.json`);
      const text = typeof c.scenario === 'string' ? c.scenario : JSON.stringify(c.scenario).replaceAll('$PEER', peer);
      writeFileSync(scenarioFile, text);
      const args = ['run', scenarioFile, '--json', ...(c.args ?? [])];
      if (c.payload !== undefined) args.push('--payload', JSON.stringify(c.payload));
      const p = await runCli(args);
      expect(problems(c, p), `${c.name} (stderr: ${p.stderr.trim().slice(0, 500) || 'empty'})`).toEqual([]);
    }, 70_000);
  }
});
