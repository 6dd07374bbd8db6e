/**
 * Conditions' inList / notInList on a scenario's named lists, and in / notIn on a literal list:
 * indexed (core/conditions.ts), and answering exactly as the scan with isDeepStrictEqual it
 * replaces, for any JSON list and value; a literal list with templates is rendered each time.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../core/conditions.js';

const scan = (list: unknown[], v: unknown) => list.some((x) => isDeepStrictEqual(x, v));
const scope = (payload: unknown) => ({ msg: { payload }, vars: {} });
const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(0, -0, Number.NaN, 1, '1', null, true, 'a'));

describe('inList / notInList, in / notIn', () => {
  it('answer as a scan of the list with isDeepStrictEqual would, for any list and value (-0, NaN, objects included)', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 12 }), value, fc.boolean(), (list, probe, pickFromList) => {
        const v = pickFromList && list.length > 0 ? structuredClone(list[list.length - 1]) : probe;
        const lists = { l: list };
        expect(evaluate({ path: 'msg.payload', op: 'inList', value: 'l' }, scope(v), lists)).toBe(scan(list, v));
        expect(evaluate({ path: 'msg.payload', op: 'notInList', value: 'l' }, scope(v), lists)).toBe(!scan(list, v));
        // A literal list (in/notIn), looked at once the same way, twice to use its index.
        for (let i = 0; i < 2; i++) {
          expect(evaluate({ path: 'msg.payload', op: 'in', value: list }, scope(v))).toBe(scan(list, v));
          expect(evaluate({ path: 'msg.payload', op: 'notIn', value: list }, scope(v))).toBe(!scan(list, v));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a literal list with templates is rendered for each message', () => {
    const c = { path: 'msg.payload.who', op: 'in', value: ['admin', '{{msg.payload.me}}'] } as const;
    expect(evaluate(c, scope({ who: 'kari', me: 'kari' }))).toBe(true);
    expect(evaluate(c, scope({ who: 'kari', me: 'lars' }))).toBe(false);
    expect(evaluate(c, scope({ who: 'admin', me: 'lars' }))).toBe(true);
    expect(evaluate({ path: 'msg.payload', op: 'eq', value: { a: ['{{msg.payload.a.0}}'] } }, scope({ a: [1] }))).toBe(true); // rendered: { a: [1] }
  });

  it('a list of 100,000 entries: members found, others not, a missing list matches nothing', () => {
    const list = Array.from({ length: 100_000 }, (_, i) => `user${i}@example.com`);
    const lists = { block: list };
    for (const [v, want] of [
      ['user99999@example.com', true],
      ['user0@example.com', true],
      ['nobody@example.com', false],
      [7, false],
    ] as const) {
      expect(evaluate({ path: 'msg.payload', op: 'inList', value: 'block' }, scope(v), lists)).toBe(want);
    }
    expect(evaluate({ path: 'msg.payload', op: 'inList', value: 'none' }, scope('x'), lists)).toBe(false);
  });
});
