/**
 * The Node-RED baseline of the embedded row: Node-RED 4 doing the same chain (10 Function nodes,
 * the same code) on the same 20,000 items, measured in the same bench run.
 *
 * Node-RED is not a dependency of the package: the bench installs it on demand, once, into a
 * cache folder ($FLOWMETER_BENCH_CACHE, else $XDG_CACHE_HOME/flowmeter-bench, else
 * ~/.cache/flowmeter-bench) with `npm install --prefix <dir> node-red@4`. When that fails (no
 * registry), `noderedRate` throws with the reason and the bench prints the row as skipped.
 *
 * Node-RED runs embedded in a child process (this file with --child): RED.init with a settings
 * object (no editor, no admin API, no HTTP server, logging off, default asynchronous message
 * delivery), a flow of 10 Function nodes → a counter Function, started with RED.start(). The
 * child feeds the first Function node `count` messages `{ payload: item, loop: { index, count } }`
 * (what Flowmeter's loop gives its body) through `node.receive`, and reports the Function
 * executions (10 per message; the counter is not counted) per second until the counter saw
 * the last message, as one JSON line on stdout.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const SPEC = 'node-red@4';

/** The folder Node-RED is installed into (outside the package). */
export function noderedDir() {
  const base = process.env.FLOWMETER_BENCH_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'flowmeter-bench');
  return join(base, 'node-red');
}

function installed(dir) {
  const pkg = join(dir, 'node_modules', 'node-red', 'package.json');
  return existsSync(pkg) ? JSON.parse(readFileSync(pkg, 'utf8')).version : null;
}

/** Installs node-red@4 into the cache folder unless it is there; resolves to its version. */
export async function ensureNodered(log = () => undefined) {
  const dir = noderedDir();
  const have = installed(dir);
  if (have?.startsWith('4.')) return have;
  mkdirSync(dir, { recursive: true });
  log(`node-red: installing ${SPEC} into ${dir} (once)`);
  await new Promise((resolve, reject) => {
    execFile(
      'npm',
      ['install', '--prefix', dir, SPEC, '--no-audit', '--no-fund', '--loglevel=error'],
      { timeout: 240_000, maxBuffer: 4 << 20 },
      (err, _out, stderr) => {
        if (err)
          reject(
            new Error(
              `npm install ${SPEC} failed (${String(stderr || err.message)
                .trim()
                .split('\n')
                .at(-1)})`,
            ),
          );
        else resolve();
      },
    );
  });
  const v = installed(dir);
  if (!v) throw new Error(`npm install ${SPEC} left no node-red in ${dir}`);
  return v;
}

/**
 * Node executions/s of Node-RED doing the chain: `code` in 10 Function nodes, `count` items
 * made by `item(i)`. Runs in a child process; resolves to { rate, ms, executions, version }.
 */
export async function noderedRate({ code, count, items, log = () => undefined, timeoutMs = 120_000 }) {
  const version = await ensureNodered(log);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
  child.stdin.end(JSON.stringify({ dir: noderedDir(), code, count, items }));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await new Promise((resolve) => child.on('exit', (c, s) => resolve(s ?? c)));
  clearTimeout(timer);
  const line = out.trim().split('\n').at(-1) ?? '';
  if (exit !== 0 || !line.startsWith('{')) throw new Error(`node-red child ended with ${exit}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  return { ...JSON.parse(line), version };
}

// ---- the child ---------------------------------------------------------------------------
async function child() {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  const { dir, code, count, items } = input;
  const require = createRequire(join(dir, 'node_modules', 'noop.js'));
  const RED = require('node-red');
  const userDir = mkdtempSync(join(tmpdir(), 'flowmeter-bench-nodered-'));
  let finish;
  const finished = new Promise((r) => (finish = r));
  const N = 10;
  const flow = [{ id: 'tab', type: 'tab', label: 'bench' }];
  for (let i = 1; i <= N; i++) {
    flow.push({
      id: `f${i}`,
      type: 'function',
      z: 'tab',
      name: `f${i}`,
      x: 100 + 50 * i,
      y: 100,
      func: code,
      outputs: 1,
      wires: [[i < N ? `f${i + 1}` : 'count']],
    });
  }
  flow.push({
    id: 'count',
    type: 'function',
    z: 'tab',
    name: 'count',
    x: 700,
    y: 100,
    func: 'const n = (context.get("n") || 0) + 1; context.set("n", n); if (n === global.get("benchCount")) global.get("benchDone")(); return null;',
    outputs: 1,
    wires: [[]],
  });
  const settings = {
    userDir,
    flowFile: 'flows.json',
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    credentialSecret: false,
    logging: { console: { level: 'off', metrics: false, audit: false } },
    functionGlobalContext: { benchDone: () => finish(), benchCount: count },
    editorTheme: { projects: { enabled: false } },
  };
  RED.init(null, settings);
  await RED.start();
  await RED.runtime.flows.setFlows({ flows: { flows: flow } });
  const first = () => RED.nodes.getNode('f1');
  for (let t = 0; !first() && t < 200; t++) await new Promise((r) => setTimeout(r, 25));
  const f1 = first();
  if (!f1) throw new Error('the flow did not start');
  const feed = (n) => {
    for (let i = 0; i < n; i++) f1.receive({ payload: items[i % items.length], loop: { index: i, count: n } });
  };
  // Warm-up on 1,000 messages (the counter then starts again).
  let warmDone;
  const warm = new Promise((r) => (warmDone = r));
  await setCounter(RED, 1000, () => warmDone());
  feed(1000);
  await warm;
  await setCounter(RED, count, () => finish());
  const t0 = performance.now();
  feed(count);
  await finished;
  const ms = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ rate: (count * N) / (ms / 1000), ms, executions: count * N })}\n`);
  await RED.stop();
  rmSync(userDir, { recursive: true, force: true });
  process.exit(0);
}

/** Resets the counter node's count and sets what it waits for. */
async function setCounter(RED, n, done) {
  const g = RED.nodes.getNode('count').context();
  g.set('n', 0);
  g.global.set('benchCount', n);
  g.global.set('benchDone', done);
}

if (process.argv[2] === '--child') {
  child().catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
