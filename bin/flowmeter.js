#!/usr/bin/env -S node --no-node-snapshot --max-semi-space-size=8
// isolated-vm needs --no-node-snapshot on Node 20+; the shebang passes it. A young generation of
// 8 MB semi-spaces instead of V8's 16: a worker's peak RSS on a 10,000-item loop of 1 KB items
// is ~12 MB lower for no measurable loss of speed (bench: rss, throughput). The bench starts
// worker processes with these same flags (bench/lib/processes.mjs reads them from this line).
import('../dist/cli/main.js').then(
  async ({ main }) => {
    const code = await main(process.argv.slice(2));
    process.exitCode = code;
    // Leave once stdout has drained, whatever handles (sockets, isolates) are still open; the
    // logger flushes its asynchronous writes on 'exit'.
    process.stdout.write('', () => setTimeout(() => process.exit(code), 0).unref());
  },
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
      console.error('flowmeter: not built yet; run `npm install` (or `npm run build`) in the project first');
    } else {
      console.error(`flowmeter: ${err?.stack ?? err}`);
    }
    process.exit(2);
  },
);
