/** Phase `embedded`: Embedded mode (in this process), against a bare isolated-vm function. */
import { performance } from 'node:perf_hooks';
import { instantsBetween } from '../../dist/core/cron.js';
import { createEmbedded } from '../../dist/engine/embedded.js';
import { bareIsolate } from '../lib/baselines.mjs';
import { noderedRate } from '../lib/nodered.mjs';
import { CODE, item, SCN } from '../lib/scenarios.mjs';

// ==========================================================================================
// 1. Embedded mode (in this process)
// ==========================================================================================
const EMB_ITEMS = 20_000;
const EMB_TARGET = 45_000;

export async function embeddedPhase({ log, table: { row, failedRow, notes } }) {
  const measure = `embedded: node executions/s, loop of ${EMB_ITEMS.toLocaleString('en-US')} items × chain of 10 Function (*1)`;
  try {
    log('embedded: warming up');
    const engine = createEmbedded();
    await engine.ledger.setQuota('default', { monthlyActions: 1e9 });
    const items = Array.from({ length: EMB_ITEMS }, (_, i) => item(i));
    const warm = await engine.run(SCN.loop10, { items: items.slice(0, 1000) });
    if (warm.status !== 'succeeded') throw new Error(`warm-up run ${warm.status}: ${JSON.stringify(warm.error)}`);
    const bare = bareIsolate(CODE);
    const bareRun = (n) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        let msg = { payload: items[i], loop: { index: i, count: n } };
        for (let k = 0; k < 10; k++) msg = bare.call(msg, {});
      }
      return performance.now() - t0;
    };
    bareRun(1000);
    log(`embedded: bare isolated-vm baseline (${EMB_ITEMS * 10} applySync calls)`);
    const bareMs1 = bareRun(EMB_ITEMS / 2);
    log(`embedded: flowmeter run (${EMB_ITEMS} items × 10 Function nodes)`);
    const t0 = performance.now();
    const run = await engine.run(SCN.loop10, { items });
    const ms = performance.now() - t0;
    const bareMs2 = bareRun(EMB_ITEMS / 2);
    bare.dispose();
    if (run.status !== 'succeeded') throw new Error(`run ${run.status}: ${JSON.stringify(run.error)}`);
    const fnTasks = run.tasks.filter((t) => t.type === 'function').length;
    const loopTasks = run.tasks.filter((t) => t.type === 'loop' && t.iteration === undefined).length;
    const counted = fnTasks + loopTasks;
    if (fnTasks !== EMB_ITEMS * 10) throw new Error(`expected ${EMB_ITEMS * 10} Function tasks, got ${fnTasks}`);
    const rate = counted / (ms / 1000);
    const bareRate = (EMB_ITEMS * 10) / ((bareMs1 + bareMs2) / 1000);
    log(
      `embedded: ${counted} node executions in ${ms.toFixed(0)} ms = ${rate.toFixed(0)}/s (run.actions ${run.actions}, all tasks ${run.tasks.length}); bare ${bareRate.toFixed(0)} calls/s`,
    );
    row(measure, rate, bareRate, { unit: '/s', target: `≥ ${EMB_TARGET.toLocaleString('en-US')}/s`, pass: (v) => v >= EMB_TARGET });
    notes.push(
      `(*1) counts ${fnTasks.toLocaleString('en-US')} Function executions + ${loopTasks} loop node = ${counted.toLocaleString('en-US')} in ${(ms / 1000).toFixed(2)} s (the trigger and the ${EMB_ITEMS.toLocaleString('en-US')} iteration tasks are not counted; run.actions = ${run.actions.toLocaleString('en-US')}); baseline: bare isolated-vm applySync calls/s of the same code and JSON in the same process (the ceiling if the engine cost nothing); target is absolute.`,
    );
    await engine.close();
    await noderedRow({ log, row, failedRow, notes }, rate, items);
  } catch (err) {
    failedRow(measure, `≥ ${EMB_TARGET.toLocaleString('en-US')}/s`, err);
  }

  // The scheduler's instants for a minute-level schedule over a month (test/schedule.test.ts
  // checks them, not how fast): every minute in New York, 2027-10-15 to 11-15, 44,580 instants.
  const cronMeasure = 'cron: instants of */1 * * * * over a month (New York), ms';
  try {
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const out = instantsBetween('*/1 * * * *', 'America/New_York', new Date('2027-10-15T00:00:00Z'), new Date('2027-11-15T00:00:00Z'));
      times.push(performance.now() - t0);
      if (out.length !== 44_580) throw new Error(`expected 44580 instants, got ${out.length}`);
    }
    const ms = times.sort((a, b) => a - b)[2];
    log(`cron: a month of minute instants in ${ms.toFixed(0)} ms (median of 5)`);
    row(cronMeasure, ms, null, { unit: ' ms', target: '≤ 1,000 ms', pass: (v) => v <= 1000 });
  } catch (err) {
    failedRow(cronMeasure, '≤ 1,000 ms', err);
  }
}

/** The same chain in Node-RED 4 (installed on demand, run in a child process), right after Flowmeter's run. */
async function noderedRow({ log, row, failedRow, notes }, fmRate, items) {
  const measure = `embedded: the same ${EMB_ITEMS.toLocaleString('en-US')} items × 10 Function, node executions/s vs Node-RED 4 (*1b)`;
  const target = '≥ 1.50× Node-RED';
  try {
    log('embedded: Node-RED 4 doing the same chain (child process)');
    const nr = await noderedRate({ code: CODE, count: EMB_ITEMS, items, log });
    log(`embedded: node-red ${nr.version}: ${nr.executions} Function executions in ${nr.ms.toFixed(0)} ms = ${nr.rate.toFixed(0)}/s`);
    row(measure, fmRate, nr.rate, { unit: '/s', target, pass: (_v, r) => r !== null && r >= 1.5 });
    notes.push(
      `(*1b) baseline: Node-RED ${nr.version} embedded in a child process (RED.init with a settings object, no editor or HTTP, default asynchronous delivery), a flow of 10 Function nodes with the same code → a counter Function, fed the same ${EMB_ITEMS.toLocaleString('en-US')} items as { payload, loop } messages through the first node's receive(); ${nr.executions.toLocaleString('en-US')} Function executions (the counter not counted) in ${(nr.ms / 1000).toFixed(2)} s, after a 1,000-message warm-up. Node-RED is installed on demand into a cache folder (bench/lib/nodered.mjs), not a dependency.`,
    );
  } catch (err) {
    if (/npm install/.test(String(err?.message))) {
      log(`embedded: Node-RED row skipped: ${err.message}`);
      row(measure, fmRate, 'skipped', { unit: '/s', target, pass: () => null });
      notes.push(`(*1b) skipped: ${err.message}`);
    } else failedRow(measure, target, err);
  }
}
