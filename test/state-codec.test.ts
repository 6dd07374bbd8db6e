import { describe, expect, it } from 'vitest';
import type { RunState } from '../core/types.js';
import { decodeState, encodeState } from '../engine/state-codec.js';

describe('stored run state', () => {
  const items = Array.from({ length: 50 }, (_, i) => ({ id: i, text: 'x'.repeat(100) }));
  const input = { payload: { items, other: 1 } };
  const state: RunState = {
    items: [{ node: 'body', msg: { payload: items[3] }, frame: 'f1', caught: [] }],
    frames: {
      root: { kind: 'root', open: 1 },
      f1: { kind: 'loop', parent: 'root', node: 'each', input, items, over: 'msg.payload.items', index: 4, collected: [1, 2], open: 1, caught: [] },
      f2: { kind: 'loop', parent: 'f1', node: 'inner', input: { payload: 1 }, items: ['a', 'b'], index: 0, collected: null, open: 1, caught: ['c'] },
      f3: { kind: 'seq', parent: 'f2', node: 'seq', input: { payload: 'in' }, steps: ['s1', 's2'], index: 1, open: 1, caught: [] },
    },
    nextFrame: 4,
    nextSeq: 17,
    partial: 1,
  };

  it('writes frame statics once, items read from the input not at all, and reads it all back', () => {
    const written = new Set<string>();
    const first = encodeState(state, written);
    expect(first.ids).toEqual(['f1', 'f2', 'f3']);
    const fields = Object.fromEntries(first.fields);
    expect(JSON.parse(fields['f:f1']!)).toEqual({ input }); // items come from the input
    expect(JSON.parse(fields['f:f2']!)).toEqual({ input: { payload: 1 }, items: ['a', 'b'] });
    expect(first.json.length).toBeLessThan(JSON.stringify(state).length / 5);
    expect(decodeState(first.json, (n) => fields[n])).toEqual(state);
    for (const id of first.ids) written.add(id);
    const again = encodeState(state, written);
    expect(again.fields).toEqual([]);
    expect(decodeState(again.json, (n) => fields[n])).toEqual(state);
  });

  it('a frame whose input is the trigger message stores a reference to it, not a copy', async () => {
    const { rememberTrigger } = await import('../engine/state-codec.js');
    const copy = structuredClone(state);
    const trigger = copy.frames.f1!.kind === 'loop' ? copy.frames.f1.input : {};
    rememberTrigger(copy, trigger);
    const { json, fields } = encodeState(copy, new Set());
    const stored = Object.fromEntries(fields);
    expect(JSON.parse(stored['f:f1']!)).toEqual({ trigger: true });
    expect(() => decodeState(json, (n) => stored[n])).toThrow(/trigger message/);
    const back = decodeState(
      json,
      (n) => stored[n],
      () => structuredClone(trigger),
    );
    expect(back).toEqual(state);
  });

  it('a missing frame field is an error, not a silent loss', () => {
    const { json } = encodeState(state, new Set());
    expect(() => decodeState(json, () => undefined)).toThrow(/frame f1/);
  });
});

describe('task log caps', () => {
  it('a large input is a marker with its size and a scrubbed preview, without serialising it whole', async () => {
    const { storedTask } = await import('../engine/task-log.js');
    const { Redactor } = await import('../core/redact.js');
    const redactor = new Redactor();
    redactor.add('top-secret-value');
    const big = { payload: Array.from({ length: 5000 }, (_, i) => ({ i, note: `top-secret-value ${'y'.repeat(50)}` })) };
    const small = { payload: { note: 'top-secret-value here' } };
    const task = {
      seq: 2,
      nodeId: 'n',
      type: 'function',
      status: 'ok' as const,
      actions: 1,
      startedAt: '',
      durationMs: 0,
      input: big,
      output: small,
      error: null,
    };
    const stored = storedTask(task, 16 * 1024, redactor);
    const marker = stored.input as { $truncated: boolean; bytes: number; preview: string };
    expect(marker.$truncated).toBe(true);
    expect(marker.bytes).toBeGreaterThan(JSON.stringify(big).length * 0.95);
    expect(marker.preview.length).toBeLessThanOrEqual(1100);
    expect(marker.preview).not.toMatch(/top-sec/);
    expect(marker.preview).toContain('[redacted]');
    expect(stored.output).toEqual({ payload: { note: '[redacted] here' } });
    // Just over the cap: the exact size of the serialisation.
    const edge = { payload: 'z'.repeat(20_000) };
    expect((storedTask({ ...task, input: edge }, 16 * 1024, null).input as { bytes: number }).bytes).toBe(JSON.stringify(edge).length);
  });
});
