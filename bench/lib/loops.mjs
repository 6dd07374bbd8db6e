/** Closed loops (the load generator of every throughput measure) and order statistics. */
import { performance } from 'node:perf_hooks';

/**
 * A closed loop: `inflight` slots, each launching one unit after another until the window
 * ends. Counts units (and their `weight`) that END inside [start+warmMs, start+warmMs+measureMs).
 */
export async function closedLoop({ inflight, warmMs, measureMs, launch, deadlineMs = 60_000 }) {
  const t0 = performance.now();
  const from = t0 + warmMs;
  const to = from + measureMs;
  let units = 0;
  let weight = 0;
  let bad = 0;
  let all = 0;
  let firstBad = null;
  const slot = async () => {
    while (performance.now() < to) {
      if (performance.now() - t0 > deadlineMs) throw new Error('closed loop over its deadline');
      const r = await launch();
      all++;
      if (r.status && r.status !== 'succeeded') {
        bad++;
        firstBad ??= r.status;
      }
      if (r.t >= from && r.t < to) {
        units++;
        weight += r.weight ?? 1;
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, slot));
  if (bad > 0) throw new Error(`${bad} runs did not succeed (first: ${firstBad})`);
  return { perSec: units / (measureMs / 1000), weightPerSec: weight / (measureMs / 1000), units, weight, secs: measureMs / 1000, all };
}

/** Sums closed-loop slices: rate = all units / all counted seconds. */
export function slices() {
  const acc = { units: 0, weight: 0, secs: 0 };
  return {
    add(r) {
      acc.units += r.units;
      acc.weight += r.weight;
      acc.secs += r.secs;
      return r;
    },
    get perSec() {
      return acc.units / acc.secs;
    },
    get weightPerSec() {
      return acc.weight / acc.secs;
    },
  };
}

export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
export const median = (xs) => quantile(xs, 0.5);
