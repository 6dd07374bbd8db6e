/**
 * The registry of node types. The engine, graph checks, validation and `estimate` look a
 * type up here and ask its definition (`define.ts`); a new built-in type is one file in
 * `nodes/` plus its line below, and `registerNode` adds one at run time (a test's own type).
 */
import type { z } from 'zod';
import { catchNode } from './catch.js';
import { commentNode } from './comment.js';
import { connectorNode } from './connector.js';
import { conversionNode } from './conversion.js';
import type { NodeDefinition } from './define.js';
import { exceptionNode } from './exception.js';
import { fanOutNode } from './fan-out.js';
import { filterNode } from './filter.js';
import { functionNode } from './function.js';
import { loopNode } from './loop.js';
import { mailNode } from './mail.js';
import { sequencerNode } from './sequencer.js';
import { switchNode } from './switch.js';

const types: NodeDefinition[] = [
  functionNode,
  switchNode,
  filterNode,
  fanOutNode,
  sequencerNode,
  loopNode,
  connectorNode,
  mailNode,
  conversionNode,
  catchNode,
  exceptionNode,
  commentNode,
] as unknown as NodeDefinition[];

/** Every registered node type, built-ins first, in registration order. */
export const NODE_TYPES: readonly NodeDefinition[] = types;

const byType = new Map(types.map((d) => [d.type, d]));
let version = 0;

export function nodeType(type: string): NodeDefinition | undefined {
  return byType.get(type);
}

/** Adds a node type. Throws when its name is not an identifier or is taken. */
export function registerNode<S extends z.ZodObject>(def: NodeDefinition<S>): void {
  if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(def.type))
    throw new Error(`node type ${JSON.stringify(def.type)} must be 1-64 letters and digits, starting with a letter`);
  if (byType.has(def.type)) throw new Error(`node type ${JSON.stringify(def.type)} is already registered`);
  types.push(def as unknown as NodeDefinition);
  byType.set(def.type, def as unknown as NodeDefinition);
  version++;
}

/** Changes whenever a type is registered (for what is built from the registry, like the schema). */
export function registryVersion(): number {
  return version;
}
