/**
 * Prometheus series a tenant can make (api/metrics.ts): a tenant names its scenarios, so each
 * tenant's first MAX_SCENARIO_SERIES get series of their own and the rest share "(other)".
 * Before, one API key deploying and running 10,000 scenarios made 10,000 series per counter
 * in every API server's memory and in every scrape.
 */
import { describe, expect, it } from 'vitest';
import { MAX_SCENARIO_SERIES, Metrics } from '../api/metrics.js';
import { createEmbedded } from '../engine/embedded.js';
import { scenarioOf } from './helpers/run.js';

/** A scenario of one Filter node (no sandbox): one run, 2 actions. */
const pass = (id: string) => scenarioOf({ id, start: 'keep', nodes: [{ id: 'keep', type: 'filter', when: { path: 'msg.payload', op: 'eq', value: 1 } }] });

describe('metrics series of one tenant', () => {
  it(`${MAX_SCENARIO_SERIES} scenarios get series of their own; the rest are counted together as scenario "(other)"`, async () => {
    const engine = createEmbedded({ env: {} });
    const metrics = new Metrics(engine);
    try {
      await engine.ledger.setQuota('many', { monthlyActions: 100_000 });
      await engine.ledger.setQuota('few', { monthlyActions: 100_000 });
      await metrics.watch('many');
      await metrics.watch('few');
      const extra = 7;
      for (let i = 0; i < MAX_SCENARIO_SERIES + extra; i++) {
        await engine.scenarios.deploy('many', pass(`s${i}`));
        await engine.trigger('many', `s${i}`, 1, { type: 'manual' });
      }
      await engine.scenarios.deploy('few', pass('mine'));
      await engine.trigger('few', 'mine', 1, { type: 'manual' });
      // Every run counted (which scenarios are named depends on the order their runs ended).
      const total = (text: string, metric: string) =>
        text
          .split('\n')
          .filter((l) => l.startsWith(`${metric}{tenant="many"`))
          .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
      const few = 'flowmeter_runs_total{tenant="few",scenario="mine",status="succeeded"} 1';
      let text = '';
      for (let i = 0; i < 250 && (total(text, 'flowmeter_runs_total') < MAX_SCENARIO_SERIES + extra || !text.includes(few)); i++) {
        text = await metrics.render();
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(total(text, 'flowmeter_runs_total')).toBe(MAX_SCENARIO_SERIES + extra);
      expect(total(text, 'flowmeter_actions_total')).toBe(2 * (MAX_SCENARIO_SERIES + extra));
      const runs = text.split('\n').filter((l) => l.startsWith('flowmeter_runs_total{tenant="many"'));
      expect(runs).toHaveLength(MAX_SCENARIO_SERIES + 1);
      expect(runs).toContain(`flowmeter_runs_total{tenant="many",scenario="(other)",status="succeeded"} ${extra}`);
      const actions = text.split('\n').filter((l) => l.startsWith('flowmeter_actions_total{tenant="many"'));
      expect(actions).toHaveLength(MAX_SCENARIO_SERIES + 1);
      expect(actions).toContain(`flowmeter_actions_total{tenant="many",scenario="(other)"} ${2 * extra}`);
      // Another tenant's scenarios are named as before.
      expect(text).toContain(few);
    } finally {
      await metrics.close();
      await engine.close();
    }
  });
});
