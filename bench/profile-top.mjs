/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): top functions by self time, top
 * functions by inclusive time, and self time grouped by where the code lives.
 *
 *   node bench/profile-top.mjs FILE.cpuprofile [...] [--top N]
 *
 * Several files are summed (e.g. the profiles of two worker processes).
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let top = 30;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length === 0) {
  process.stderr.write('usage: node bench/profile-top.mjs FILE.cpuprofile [...] [--top N]\n');
  process.exit(2);
}

const self = new Map(); // key → µs
const incl = new Map(); // key → µs
const group = new Map(); // group → µs
let total = 0;
let idle = 0;

function shortUrl(url) {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 1);
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

function groupOf(frame) {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(idle)' || functionName === '(program)') return functionName;
    return `(native) ${functionName || '(anonymous)'}`;
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/').slice(0, 2).join('/') : url.slice(5)}`;
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 1);
  return url;
}

for (const file of files) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map();
  const parent = new Map();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = (n) => {
    const f = n.callFrame;
    return `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  };
  const samples = prof.samples;
  const deltas = prof.timeDeltas;
  for (let i = 0; i < samples.length; i++) {
    const dt = Math.max(0, deltas[i + 1] ?? deltas[i] ?? 0);
    const n = byId.get(samples[i]);
    if (!n) continue;
    const fname = n.callFrame.functionName;
    if (fname === '(idle)') {
      idle += dt;
      continue;
    }
    total += dt;
    const k = keyOf(n);
    self.set(k, (self.get(k) ?? 0) + dt);
    const g = groupOf(n.callFrame);
    group.set(g, (group.get(g) ?? 0) + dt);
    const seen = new Set();
    for (let id = n.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      const key = keyOf(node);
      if (seen.has(key) || key.startsWith('(root)')) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + dt);
    }
  }
}

const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
const print = (title, map, n) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${ms(v)} ms ${pct(v)}  ${k}\n`);
};
process.stdout.write(`profiles: ${files.length}; busy ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms (busy = 100%)\n`);
print('self time by place', group, 25);
print('top functions by self time', self, top);
print('top functions by inclusive time', incl, top);
