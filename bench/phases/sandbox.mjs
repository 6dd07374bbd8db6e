/** Phase `sandbox`: the per-call cost of the Function node's sandbox (a call to a host process). */
import { performance } from 'node:perf_hooks';
import { createSandboxPool } from '../../dist/services/sandbox-pool.js';
import { bareIsolate } from '../lib/baselines.mjs';
import { median } from '../lib/loops.mjs';
import { CODE, item } from '../lib/scenarios.mjs';

// ==========================================================================================
// 2. A warm Function call against bare isolated-vm
// ==========================================================================================
export async function sandboxPhase({ log, table: { row, failedRow, notes } }) {
  const measure = 'warm Function call, µs/call: sandbox pool run (host process) vs bare applySync (*2)';
  try {
    log('sandbox: per-call cost, interleaved rounds');
    const sandbox = createSandboxPool({ size: 1 });
    const bare = bareIsolate(CODE, 64, 1000);
    const msg = { payload: item(7), loop: { index: 7, count: 20_000 } };
    const vars = {};
    const req = { tenant: 'bench', code: CODE, msg, vars, timeoutMs: 1000, memoryMb: 64 };
    const check = await sandbox.run(req);
    if (JSON.stringify(check.result) !== JSON.stringify(bare.call(msg, vars))) throw new Error('sandbox and bare results differ');
    const N = 2000;
    const timeFm = async () => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) await sandbox.run(req);
      return ((performance.now() - t0) * 1000) / N;
    };
    const timeBare = () => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) bare.call(msg, vars);
      return ((performance.now() - t0) * 1000) / N;
    };
    const fm = [];
    const bb = [];
    for (let i = 0; i < 3; i++) {
      await timeFm();
      timeBare();
    }
    for (let r = 0; r < 12; r++) {
      if (r % 2 === 0) {
        fm.push(await timeFm());
        bb.push(timeBare());
      } else {
        bb.push(timeBare());
        fm.push(await timeFm());
      }
    }
    await sandbox.dispose();
    bare.dispose();
    const f = median(fm);
    const b = median(bb);
    log(`sandbox: flowmeter ${f.toFixed(2)} µs/call, bare ${b.toFixed(2)} µs/call (medians of 12 rounds × ${N})`);
    row(measure, f, b, { unit: ' µs', digits: 2, target: '≤ 2.00× bare', pass: (_v, ratio) => ratio !== null && ratio <= 2 });
    notes.push(
      `(*2) median of 12 interleaved rounds of ${N} calls awaited one after another (a full round trip to the host process each: the worst case; chains and concurrent calls share a hop); same code, isolate memoryLimit 64 MB, { timeout: 1000 }, msg/vars JSON in and the result JSON out on both sides.`,
    );
  } catch (err) {
    failedRow(measure, '≤ 2.00× bare', err);
  }

  // How soon an endless loop is stopped (test/sandbox.test.ts checks that it is, not how fast).
  const loopMeasure = 'endless loop stopped, ms (timeoutMs 100)';
  try {
    const own = createSandboxPool({ size: 1 });
    const req = { tenant: 'bench-loop', code: 'for (;;) {}', msg: {}, vars: {}, timeoutMs: 100, memoryMb: 64 };
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      let code = 'none';
      try {
        await own.run(req);
      } catch (err) {
        code = err?.code;
      }
      times.push(performance.now() - t0);
      if (code !== 'FUNCTION_TIMEOUT') throw new Error(`expected FUNCTION_TIMEOUT, got ${code}`);
    }
    await own.dispose();
    const ms = median(times);
    log(`sandbox: an endless loop is stopped after ${ms.toFixed(0)} ms (median of 5, timeoutMs 100)`);
    row(loopMeasure, ms, 100, { unit: ' ms', target: '≤ 3,000 ms', pass: (v) => v <= 3000 });
  } catch (err) {
    failedRow(loopMeasure, '≤ 3,000 ms', err);
  }
}
