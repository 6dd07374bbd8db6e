/**
 * EXPERIMENT: a worker preload that samples process.memoryUsage() every 20 ms and writes the
 * peaks (MB) and the V8 heap spaces at the peak to $TMPDIR/flowmeter-mem-<pid>.json at exit.
 *
 *   BENCH_WORKER_ARGS="--import ./bench/experiments/mem-peak.mjs" BENCH_ONLY=rss npm run bench
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';

const peak = {};
let atPeak = null;
setInterval(() => {
  const m = process.memoryUsage();
  for (const [k, v] of Object.entries(m)) peak[k] = Math.max(peak[k] ?? 0, v);
  if (!atPeak || m.rss > atPeak.rss) atPeak = { ...m, spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size])) };
}, 20).unref();
process.on('exit', () => {
  const mb = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v / 1e6) : mb(v)]));
  writeFileSync(join(tmpdir(), `flowmeter-mem-${process.pid}.json`), `${JSON.stringify({ peakMB: mb(peak), atPeakMB: mb(atPeak ?? {}) }, null, 1)}\n`);
});
