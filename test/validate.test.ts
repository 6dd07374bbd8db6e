import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenarioJsonSchema } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';
import { runCli } from './helpers/cli.js';

const base = { id: 'v', trigger: { type: 'manual' }, start: 'a' };
const problems = (doc: unknown) => validateScenario(doc).problems;

describe('validation', () => {
  it('accepts a valid scenario with defaults filled in', () => {
    const r = validateScenario({ ...base, nodes: [{ id: 'a', type: 'function', code: 'return msg;' }] });
    expect(r.problems).toEqual([]);
    expect(r.scenario!.billable).toBe(true);
    expect(r.scenario!.nodes[0]).toMatchObject({ timeoutMs: 1000, memoryMb: 64 });
  });

  it('reports every problem at once as path: message', () => {
    const p = problems({
      id: 'Bad Id!',
      trigger: { type: 'manual' },
      start: 'missing',
      nodes: [
        { id: 'a', type: 'function', code: 'return msg;', next: 'nope' },
        { id: 'a', type: 'filter', when: { path: 'payload.x', op: 'eq', value: 1 } },
        { id: 'b', type: 'teleport' },
        { id: 'c', type: 'filter', when: { path: 'msg.x', op: 'like', value: 1 } },
        { id: 'd', type: 'conversion', table: 'nope', path: 'msg.payload' },
        { id: 'e', type: 'connector', connection: 'ghost', url: '/x' },
        { id: 'f', type: 'filter', when: { path: 'msg.x', op: 'inList', value: 'nolist' } },
        { id: 'g', type: 'mail', to: '{{payload.owner}}', subject: 's', extra: 1 },
      ],
    });
    const expected = [
      /^id: must be 1-64/,
      /^start: node "missing" does not exist/,
      /^nodes\[0\]\.next: node "nope" does not exist/,
      /^nodes\[1\]\.id: duplicate node id "a"/,
      /^nodes\[1\]\.when\.path: must be a path rooted at msg or vars/,
      /^nodes\[2\]\.type: unknown node type "teleport"/,
      /^nodes\[3\]\.when\.op: /,
      /^nodes\[4\]\.table: table "nope" does not exist/,
      /^nodes\[5\]\.connection: connection "ghost" does not exist/,
      /^nodes\[6\]\.when\.value: list "nolist" does not exist/,
      /^nodes\[7\]: unknown field "extra"/,
    ];
    for (const re of expected)
      expect(
        p.some((x) => re.test(x)),
        `${re} in\n${p.join('\n')}`,
      ).toBe(true);
  });

  it('rejects cycles, and edges into catch and comment nodes', () => {
    const p = problems({
      ...base,
      nodes: [
        { id: 'a', type: 'function', code: 'return msg;', next: 'b' },
        { id: 'b', type: 'switch', cases: [{ when: { path: 'msg.x', op: 'exists' }, next: 'a' }], default: 'note' },
        { id: 'c', type: 'catch', next: 'c2' },
        { id: 'c2', type: 'catch' },
        { id: 'note', type: 'comment', text: 'x' },
      ],
    });
    expect(p.some((x) => /cycle a → b → a/.test(x))).toBe(true);
    expect(p).toContain('nodes[1].default: "note" is a comment node, which cannot be the target of an edge');
    expect(p).toContain('nodes[2].next: "c2" is a catch node, which cannot be the target of an edge');
  });

  it('a loop body leading back to the loop is a cycle', () => {
    const p = problems({
      ...base,
      nodes: [
        { id: 'a', type: 'loop', over: 'msg.payload', body: 'b' },
        { id: 'b', type: 'function', code: 'return msg;', next: 'a' },
      ],
    });
    expect(p.some((x) => x.includes('cycle'))).toBe(true);
  });

  it('warns about unreachable nodes but not about catch or comment nodes', () => {
    const r = validateScenario({
      ...base,
      nodes: [
        { id: 'a', type: 'function', code: 'return msg;' },
        { id: 'island', type: 'function', code: 'return msg;' },
        { id: 'c', type: 'catch', next: 'handler' },
        { id: 'handler', type: 'function', code: 'return msg;' },
        { id: 'n', type: 'comment', text: 'x' },
      ],
    });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual(['nodes[1]: node "island" is not reachable from start "a"']);
  });

  it('checks Function syntax, cron schedules, timezones and template paths', () => {
    const p = problems({
      id: 'v',
      start: 'a',
      trigger: { type: 'cron', schedule: '61 * * * *', timezone: 'Mars/Olympus' },
      nodes: [
        { id: 'a', type: 'function', code: 'return {', next: 'b' },
        { id: 'b', type: 'mail', to: '{{owner}}', subject: 'x' },
      ],
    });
    expect(p.some((x) => x.startsWith('nodes[0].code: SyntaxError'))).toBe(true);
    expect(p.some((x) => x.startsWith('trigger.timezone: unknown IANA timezone'))).toBe(true);
    expect(p.some((x) => x.startsWith('trigger.schedule:'))).toBe(true);
    expect(p).toContain('nodes[1].to: template {{owner}} must name a path rooted at msg or vars');
  });

  it('never throws on hostile documents', () => {
    for (const doc of [
      null,
      1,
      'x',
      [],
      {},
      { nodes: 'x' },
      { nodes: [null, 1, []] },
      { id: 'x', start: 'a', nodes: [{ id: 'a', type: 'switch', cases: 'x' }] },
      { __proto__: { id: 'x' } },
    ]) {
      const r = validateScenario(doc);
      expect(r.scenario).toBeNull();
      expect(r.problems.length).toBeGreaterThan(0);
      for (const line of r.problems) expect(line).toMatch(/^[^\n]+: [^\n]+$/);
    }
  });

  it('exports a JSON Schema naming every node type', () => {
    const schema = JSON.stringify(scenarioJsonSchema());
    for (const t of ['function', 'switch', 'filter', 'fanOut', 'sequencer', 'loop', 'connector', 'mail', 'conversion', 'catch', 'exception', 'comment']) {
      expect(schema).toContain(`"const":"${t}"`);
    }
  });
});

describe('one precise message per mistake, with a suggestion (issue 15)', () => {
  const fnNode = (id: string, next?: string) => ({ id, type: 'function', code: 'return msg;', ...(next && { next }) });

  it('a misspelt field: one problem naming it and the field meant; no reachability warnings derived from it', () => {
    const r = validateScenario({
      ...base,
      start: 'each',
      nodes: [
        { id: 'each', type: 'loop', over: 'msg.payload.items', body: 'b', next: 'c', colect: true },
        fnNode('b', 'd'),
        fnNode('d'),
        fnNode('c', 'e'),
        fnNode('e'),
      ],
    });
    expect(r.problems).toEqual(['nodes[0]: unknown field "colect"; did you mean "collect"?']);
    expect(r.warnings).toEqual([]);
  });

  it('a misspelt edge field: the nodes it would reach are not called unreachable', () => {
    const r = validateScenario({ ...base, start: 'a', nodes: [{ ...fnNode('a'), nxt: 'b' }, fnNode('b', 'c'), fnNode('c')] });
    expect(r.problems).toEqual(['nodes[0]: unknown field "nxt"; did you mean "next"?']);
    expect(r.warnings).toEqual([]);
  });

  it('misspelt top-level and trigger fields are suggested too', () => {
    expect(problems({ ...base, start: 'a', nodes: [fnNode('a')], variabls: {} })).toEqual(['(document): unknown field "variabls"; did you mean "variables"?']);
    expect(problems({ ...base, trigger: { type: 'cron', schedul: '* * * * *' }, start: 'a', nodes: [fnNode('a')] })).toContain(
      'trigger: unknown field "schedul"; did you mean "schedule"?',
    );
  });

  it('an unknown type: one problem with the type meant; its id still exists, so no cascade', () => {
    const r = validateScenario({
      ...base,
      start: 'a',
      nodes: [
        { id: 'a', type: 'functon', code: 'return msg;', next: 'b' },
        fnNode('b'),
        { id: 'c', type: 'filter', when: { path: 'msg.x', op: 'exists' }, next: 'a' },
      ],
    });
    expect(r.problems).toEqual(['nodes[0].type: unknown node type "functon"; did you mean "function"?']);
    expect(r.warnings).toEqual([]);
    expect(problems({ ...base, start: 'a', nodes: [{ id: 'a', type: 'zzzzzz' }] })).toEqual([
      'nodes[0].type: unknown node type "zzzzzz" (one of: function, switch, filter, fanOut, sequencer, loop, connector, mail, conversion, catch, exception, comment)',
    ]);
  });

  it('a bad start or edge: did you mean over the node ids, and no unreachable warnings', () => {
    const r = validateScenario({ ...base, start: 'fetch-lead', nodes: [fnNode('fetch-leads', 'sendd'), fnNode('send')] });
    expect(r.problems).toEqual([
      'nodes[0].next: node "sendd" does not exist; did you mean "send"?',
      'start: node "fetch-lead" does not exist; did you mean "fetch-leads"?',
    ]);
    expect(r.warnings).toEqual([]);
    expect(problems({ ...base, start: 'x', nodes: [fnNode('alpha'), fnNode('beta')] })).toEqual(['start: node "x" does not exist (nodes: alpha, beta)']);
  });

  it('an unclosed {{ is an error naming the node and field', () => {
    expect(problems({ ...base, start: 'a', nodes: [{ id: 'a', type: 'mail', to: 'x@example.com', subject: 'Hi {{msg.payload.name' }] })).toEqual([
      'nodes[0].subject: unclosed {{ in "Hi {{msg.payload.name"; write {{path}}',
    ]);
    expect(
      problems({
        ...base,
        start: 'a',
        connections: { c: { baseUrl: 'https://x.example' } },
        nodes: [{ id: 'a', type: 'connector', connection: 'c', url: '/x', body: { lines: ['{{msg.payload.a}}', '{{ msg.payload.b'] } }],
      }),
    ).toEqual(['nodes[0].body.lines[1]: unclosed {{ in "{{ msg.payload.b"; write {{path}}']);
  });

  it('vars.x that the scenario does not declare: a warning with the name meant; declared or setVar names are fine', () => {
    const doc = (code: string) => ({
      ...base,
      start: 'f',
      variables: { count: 0 },
      nodes: [
        { id: 'f', type: 'function', code, next: 'm' },
        { id: 'm', type: 'mail', to: 'x@example.com', subject: '{{vars.cont}} {{vars.count}} {{vars.total}}' },
      ],
    });
    const r = validateScenario(doc('return msg;'));
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      `nodes[1].subject: {{vars.cont}} reads vars.cont, which the scenario's variables do not declare and no Function sets; did you mean "count"?`,
      `nodes[1].subject: {{vars.total}} reads vars.total, which the scenario's variables do not declare and no Function sets`,
    ]);
    expect(validateScenario(doc('setVar("total", 1); setVar(\'cont\', 2); return msg;')).warnings).toEqual([]);
    // A name computed at run time could be anything: no guesses.
    expect(validateScenario(doc('setVar(msg.payload.k, 1); return msg;')).warnings).toEqual([]);
  });

  it('through `flowmeter validate`: exit 2 with the one line; warnings on stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fm-val-'));
    const file = join(dir, 's.json');
    writeFileSync(
      file,
      JSON.stringify({ ...base, start: 'each', nodes: [{ id: 'each', type: 'loop', over: 'msg.payload', body: 'b', colect: true }, fnNode('b')] }),
    );
    const r = await runCli(['validate', file]);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toContain('nodes[0]: unknown field "colect"; did you mean "collect"?');
    expect(r.stderr).not.toContain('reachable');
    writeFileSync(file, JSON.stringify({ ...base, start: 'm', nodes: [{ id: 'm', type: 'mail', to: 'x@example.com', subject: '{{vars.nope}}' }] }));
    const w = await runCli(['validate', file]);
    expect(w.code).toBe(0);
    expect(w.stderr).toContain('warning: nodes[0].subject: {{vars.nope}} reads vars.nope');
  });
});
