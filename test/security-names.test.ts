/**
 * SPEC §9 / issue 11: `__proto__`, `constructor` and `prototype` are refused as names of lists,
 * tables, variables and connections and as keys of a Connector's headers, query and body, with
 * a `path: message` problem (before, they passed validation and were silently dropped).
 */
import { describe, expect, it } from 'vitest';
import { validateScenario } from '../scenario/validate.js';

/** Parsed from JSON text, as an API or CLI document is: `__proto__` is then an own key. */
const doc = (extra: string, node = '{ "id": "a", "type": "function", "code": "return msg;" }') =>
  JSON.parse(`{ "id": "s", "start": "a", "nodes": [${node}] ${extra} }`) as unknown;

describe('reserved names', () => {
  it.each(['__proto__', 'constructor', 'prototype'])('%s as a list, table, variable or connection name is a problem naming its path', (name) => {
    for (const field of ['lists', 'tables', 'variables', 'connections']) {
      const value = field === 'lists' ? '["x"]' : field === 'tables' ? '{ "a": 1 }' : field === 'variables' ? '1' : '{ "baseUrl": "https://x.example" }';
      const r = validateScenario(doc(`, "${field}": { "${name}": ${value} }`));
      expect(r.scenario).toBeNull();
      expect(r.problems).toContain(`${field}.${name}: "${name}" is a reserved name; use another name`);
    }
  });

  it('as keys of a Connector body, headers or query, nested too', () => {
    const node =
      '{ "id": "a", "type": "connector", "method": "POST", "url": "https://x.example", "headers": { "__proto__": "h" }, "query": { "constructor": "q" }, "body": { "a": [{ "__proto__": { "admin": true } }] } }';
    const r = validateScenario(doc('', node));
    expect(r.scenario).toBeNull();
    expect(r.problems).toEqual(
      expect.arrayContaining([
        'nodes[0].headers.__proto__: "__proto__" is a reserved name; use another key',
        'nodes[0].query.constructor: "constructor" is a reserved name; use another key',
        'nodes[0].body.a[0].__proto__: "__proto__" is a reserved name; use another key',
      ]),
    );
  });

  it('as a table key or a connection header', () => {
    const r = validateScenario(doc(', "tables": { "t": { "prototype": 1 } }, "connections": { "c": { "headers": { "__proto__": "x" } } }'));
    expect(r.problems).toEqual(
      expect.arrayContaining([
        'tables.t.prototype: "prototype" is a reserved name; use another key',
        'connections.c.headers.__proto__: "__proto__" is a reserved name; use another key',
      ]),
    );
  });

  it('ordinary names pass', () => {
    expect(validateScenario(doc(', "lists": { "proto": ["x"] }, "tables": { "ctor": { "a": 1 } }')).problems).toEqual([]);
  });
});
