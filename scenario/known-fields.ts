/**
 * The fields a part of a scenario document may have, for "did you mean" on an unknown field:
 * the document's own, a node's (by its type), the trigger's (by its type), a connection's.
 */
import { nodeType } from '../nodes/index.js';
import { connectionSchema, schemas, triggerSchema } from './schema.js';

const keysOf = (shape: object | undefined): string[] => (shape ? Object.keys(shape) : []);

function at(doc: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur = doc;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, p)) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/** The known field names of the object at `path` in `doc`; [] where none are known. */
export function knownFieldsAt(doc: unknown, path: ReadonlyArray<PropertyKey>): string[] {
  if (path.length === 0) return keysOf(schemas().scenario.shape);
  const type = (at(doc, path) as { type?: unknown } | undefined)?.type;
  if (path.length === 2 && path[0] === 'nodes' && typeof type === 'string') {
    const def = nodeType(type);
    return def ? ['id', 'type', 'name', ...keysOf(def.config.shape)] : [];
  }
  if (path.length === 1 && path[0] === 'trigger') {
    const option = triggerSchema.options.find((o) => o.shape.type.value === type);
    return keysOf(option?.shape);
  }
  if (path.length === 2 && path[0] === 'connections') return keysOf(connectionSchema.shape);
  return [];
}
