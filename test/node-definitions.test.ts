/**
 * Node definitions own their semantics: how a node is entered, its raw fields, its cost
 * bounds. Node types defined here, in the test, run through validation, the executor and
 * `estimate` without any change outside `nodes/`; and no file of `scenario/` or `engine/`
 * names a node type.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { concurrent, EMPTY, one } from '../nodes/cost.js';
import { defineNode, nextRef } from '../nodes/define.js';
import { nodeId } from '../nodes/fields.js';
import { NODE_TYPES, registerNode } from '../nodes/index.js';
import { estimateScenario } from '../scenario/estimate.js';
import { validateScenario } from '../scenario/validate.js';
import { runOnce, scenarioOf } from './helpers/run.js';

/** Emits two copies of its message to `next` (entered by edges, the default). */
const twiceNode = defineNode({
  type: 'twice',
  config: z.object({ next: nodeId.optional() }),
  emitsOutputs: true,
  refs: (n) => nextRef(n.next),
  estimate: (n, c) => one(concurrent([c.next(n.next), c.next(n.next)])),
  costNote: () => 'a Twice node sends its message on twice',
  execute: (input) => ({ kind: 'emit', messages: [input, input] }),
});

/** Entered only by a failure of a node it handles (like a Catch); tags the message. */
const rescueNode = defineNode({
  type: 'rescue',
  config: z.object({ handles: z.array(nodeId).min(1), next: nodeId.optional() }),
  emitsOutputs: true,
  entry: 'onError',
  refs: (n) => [...n.handles.map((name, i) => ({ path: `handles.${i}`, kind: 'node' as const, name, edge: false as const })), ...nextRef(n.next)],
  handles: (n) => n.handles,
  estimate: (n, c) => one(c.next(n.next)),
  execute: (input) => ({ kind: 'emit', messages: [{ ...input, payload: 'rescued' }] }),
});

/** Never executed, never counted; its `note` is free text, not a template. */
const stickyNode = defineNode({
  type: 'sticky',
  config: z.object({ note: z.string() }),
  emitsOutputs: false,
  entry: 'never',
  rawFields: ['note'],
  refs: () => [],
  check: (n) => (n.note.length > 20 ? ['note: must be at most 20 characters'] : []),
  estimate: () => EMPTY,
  execute() {
    throw new Error('never executed');
  },
});

registerNode(twiceNode);
registerNode(rescueNode);
registerNode(stickyNode);

const conv = (id: string, next?: string) => ({ id, type: 'conversion', table: 't', path: 'msg.payload', ...(next && { next }) });

describe('a node type defined outside the engine', () => {
  it('registers once, by an identifier', () => {
    expect(NODE_TYPES.map((d) => d.type)).toEqual(expect.arrayContaining(['twice', 'rescue', 'sticky']));
    expect(() => registerNode(twiceNode)).toThrow('node type "twice" is already registered');
    expect(() => registerNode({ ...twiceNode, type: 'no way' })).toThrow(/node type "no way" must be/);
  });

  it('runs, and is billed and estimated by its own definition', async () => {
    const doc = { start: 'tw', tables: { t: {} }, nodes: [{ id: 'tw', type: 'twice', next: 'c' }, conv('c')] };
    const run = await runOnce(doc, 7);
    expect(run.status).toBe('succeeded');
    expect(run.outputs.map((m) => m.payload)).toEqual([7, 7]);
    expect(run.actions).toBe(1 + 1 + 2);
    const e = estimateScenario(scenarioOf(doc));
    expect(e.perRun).toEqual({ min: 4, max: 4 });
    expect(e.assumptions).toContain('a Twice node sends its message on twice');
  });

  it('entry onError: entered by a handled failure, never by an edge', async () => {
    const nodes = [{ id: 'x', type: 'exception', message: 'boom' }, { id: 'r', type: 'rescue', handles: ['x'], next: 'c' }, conv('c')];
    const run = await runOnce({ start: 'x', tables: { t: {} }, nodes });
    expect(run.status).toBe('succeeded');
    expect(run.tasks.map((t) => t.nodeId)).toEqual(['$trigger', 'x', 'r', 'c']);
    expect(run.outputs.map((m) => m.payload)).toEqual(['rescued']);
    expect(estimateScenario(scenarioOf({ start: 'x', tables: { t: {} }, nodes })).perRun).toEqual({ min: 4, max: 4 });
    const edge = validateScenario({ id: 's', start: 'c', tables: { t: {} }, nodes: [conv('c', 'r'), { id: 'r', type: 'rescue', handles: ['c'] }] });
    expect(edge.problems).toEqual(['nodes[0].next: "r" is a rescue node, which cannot be the target of an edge']);
    expect(edge.warnings).toEqual([]); // entered by failures: not unreachable
  });

  it('entry never: not counted, not a target, raw fields and own checks in validation', async () => {
    const note = { id: 'n', type: 'sticky', note: '{{not a path}}' };
    const run = await runOnce({ start: 'c', tables: { t: {} }, nodes: [conv('c'), note] });
    expect(run.actions).toBe(2);
    expect(estimateScenario(scenarioOf({ start: 'c', tables: { t: {} }, nodes: [conv('c'), note] })).perRun).toEqual({ min: 2, max: 2 });
    const v = validateScenario({
      id: 's',
      start: 'c',
      tables: { t: {} },
      nodes: [conv('c', 'n'), { ...note, note: 'x'.repeat(21) }, { id: 'r', type: 'rescue', handles: ['n'] }],
    });
    expect(v.problems).toEqual([
      'nodes[0].next: "n" is a sticky node, which cannot be the target of an edge',
      'nodes[2].handles.0: "n" is a sticky node and never runs',
      'nodes[1].note: must be at most 20 characters',
    ]);
  });
});

const TYPE_NAMES = NODE_TYPES.map((d) => d.type);
/** Comments removed, string literals kept (a template literal's `${…}` parts are read as its text). */
const TOKEN = /\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g;

/** The node type names a source names as string literals, outside comments. */
function typeLiterals(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(TOKEN)) {
    const tok = m[0];
    if (tok.startsWith('/')) continue;
    const text = tok.slice(1, -1);
    if (!TYPE_NAMES.includes(text)) continue;
    const before = source.slice(Math.max(0, m.index - 40), m.index);
    // `kind: 'loop'`: the engine's loop frame (core/types.ts Frame), stored in pending state.
    if (text === 'loop' && /\bkind\s*(?::|[!=]==)\s*$/.test(before)) continue;
    // `typeof x === 'function'` is JavaScript, not a node type.
    if (text === 'function' && /\btypeof\s+[\w.?]+\s*[!=]==?\s*$/.test(before)) continue;
    found.push(tok);
  }
  return found;
}

describe('scenario/ and engine/ know no node type by name', () => {
  it('the scan finds a type name in code and ignores comments, frame kinds and typeof', () => {
    expect(typeLiterals(`if (n.type === 'catch') x(); // 'loop'\n/* 'comment' */ const s = new Set(["comment", \`fanOut\`]);`)).toEqual([
      `'catch'`,
      '"comment"',
      '`fanOut`',
    ]);
    expect(typeLiterals(`f.kind === 'loop'; ({ kind: 'loop' }); typeof v === 'function'; case 'loop':`)).toEqual([`'loop'`]);
  });

  for (const dir of ['scenario', 'engine']) {
    it(`${dir}/*.ts`, () => {
      const root = join(import.meta.dirname, '..', dir);
      const files = readdirSync(root).filter((f) => f.endsWith('.ts'));
      expect(files.length).toBeGreaterThan(0);
      const hits = files.flatMap((f) => typeLiterals(readFileSync(join(root, f), 'utf8')).map((t) => `${dir}/${f}: ${t}`));
      expect(hits).toEqual([]);
    });
  }
});
