/** A validated scenario prepared for execution: node lookup and the selection of the node (a Catch) a failure enters. */
import type { NodeDefinition } from '../nodes/define.js';
import { nodeType } from '../nodes/index.js';
import type { Scenario } from './schema.js';

export interface CompiledNode {
  id: string;
  type: string;
  config: Record<string, unknown> & { id: string; type: string; next?: string };
  def: NodeDefinition;
}

export interface CompiledScenario {
  scenario: Scenario;
  nodes: Map<string, CompiledNode>;
  /** The catch that handles a failure of `nodeId` on a path already inside `caught`, if any. */
  catchFor(nodeId: string, caught: readonly string[]): string | null;
}

const cache = new WeakMap<Scenario, CompiledScenario>();

export function compile(scenario: Scenario): CompiledScenario {
  const hit = cache.get(scenario);
  if (hit) return hit;
  const nodes = new Map<string, CompiledNode>();
  const scoped: Array<{ id: string; scope: Set<string> }> = [];
  const catchAll: string[] = [];
  for (const n of scenario.nodes) {
    const def = nodeType(n.type);
    if (!def) throw new Error(`unknown node type ${n.type}`);
    nodes.set(n.id, { id: n.id, type: n.type, config: n as CompiledNode['config'], def });
    if (def.entry === 'onError') {
      const scope = def.handles?.(n as never);
      if (scope) scoped.push({ id: n.id, scope: new Set(scope) });
      else catchAll.push(n.id);
    }
  }
  const compiled: CompiledScenario = {
    scenario,
    nodes,
    catchFor(nodeId, caught) {
      // A catch with an explicit scope wins over a catch-all; a catch never handles failures
      // on its own path. Among equals, the first in document order.
      for (const c of scoped) if (c.scope.has(nodeId) && !caught.includes(c.id)) return c.id;
      for (const id of catchAll) if (!caught.includes(id)) return id;
      return null;
    },
  };
  cache.set(scenario, compiled);
  return compiled;
}
