import { describe, expect, it } from 'vitest';
import { scenarioJsonSchema } from '../scenario/schema.js';
import { validateScenario } from '../scenario/validate.js';

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
