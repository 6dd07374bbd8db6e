/**
 * A scenario as a picture (SPEC §12 graph): its nodes, the trigger, the edges between them
 * and which nodes a Catch handles, with validation warnings on the nodes they name; and the
 * path a run took, from its task log. Pure: no stores, no I/O. Edges come from the node
 * definitions (`refs`, `entry`, `handles` in `nodes/define.ts`), never from node type names.
 */
import { type TaskRecord, TRIGGER_NODE } from '../core/types.js';
import { nodeType } from '../nodes/index.js';
import { refsOf } from './graph.js';
import type { Scenario } from './schema.js';

export interface DiagramNode {
  id: string;
  /** The node's type, or `trigger` for the trigger (then `trigger` says which kind). */
  type: string;
  name?: string;
  /** How the node is entered: `edge`, `onError` (a Catch), `never` (a Comment), or `trigger`. */
  entry: 'edge' | 'onError' | 'never' | 'trigger';
  /** A Catch without a scope: it handles the failure of every node (no `error` edges are drawn). */
  catchesAll?: boolean;
  /** The scenario's validation warnings that name this node (`nodes[i]…: message`). */
  warnings: string[];
}

export interface DiagramEdge {
  from: string;
  to: string;
  /**
   * What makes the edge: `start` (trigger → start), the node field holding the reference
   * (`next`, `cases`, `default`, `body`, `steps`, `branches`, …), or `error` (a node in a Catch's
   * scope → the Catch: taken when it fails).
   */
  kind: string;
  /** For a reference in a list (`cases.1.next`, `steps.0`): its position, from 0. */
  index?: number;
}

export interface Diagram {
  nodes: DiagramNode[];
  edges: DiagramEdge[];
  /** Warnings that name no node. */
  warnings: string[];
}

const NODE_WARNING = /^nodes\[(\d+)\]/;

/** The diagram of a valid scenario; `warnings` are its validation warnings (`validateScenario`). */
export function scenarioDiagram(scenario: Scenario, warnings: readonly string[] = []): Diagram {
  const nodes: DiagramNode[] = [{ id: TRIGGER_NODE, type: 'trigger', name: scenario.trigger.type, entry: 'trigger', warnings: [] }];
  const edges: DiagramEdge[] = [{ from: TRIGGER_NODE, to: scenario.start, kind: 'start' }];
  const ids = new Set(scenario.nodes.map((n) => n.id));
  for (const n of scenario.nodes) {
    const def = nodeType(n.type);
    const entry = def?.entry ?? 'edge';
    const node: DiagramNode = { id: n.id, type: n.type, ...(n.name && { name: n.name }), entry, warnings: [] };
    if (entry === 'onError') {
      const scope = def?.handles?.(n as never);
      if (scope) for (const from of scope) if (ids.has(from)) edges.push({ from, to: n.id, kind: 'error' });
      if (!scope) node.catchesAll = true;
    }
    for (const ref of refsOf(n.type, n)) {
      if (ref.kind !== 'node' || ref.edge === false || !ids.has(ref.name)) continue;
      const [kind, index] = ref.path.split('.');
      edges.push({ from: n.id, to: ref.name, kind: kind!, ...(index !== undefined && /^\d+$/.test(index) && { index: Number(index) }) });
    }
    nodes.push(node);
  }
  const unplaced: string[] = [];
  for (const w of warnings) {
    const m = NODE_WARNING.exec(w);
    const node = m ? nodes[Number(m[1]) + 1] : undefined;
    if (node) node.warnings.push(w);
    else unplaced.push(w);
  }
  return { nodes, edges, warnings: unplaced };
}

/** What a run did at one node. */
export interface NodeVisit {
  /** Executions of the node (a loop's own, not its iterations). */
  executions: number;
  /** Loop iterations run (tasks of the node with an `iteration` index). */
  iterations: number;
  /** Actions the run spent on the node. */
  actions: number;
  /** Tasks of the node that failed (`error`). */
  errors: number;
  /** Tasks of the node that could not start for quota (`halted`). */
  halted: number;
}

/** Per node, what the run's task log shows (nodes it never reached are absent). */
export function runPath(tasks: readonly Pick<TaskRecord, 'nodeId' | 'status' | 'actions' | 'iteration'>[]): Record<string, NodeVisit> {
  const out: Record<string, NodeVisit> = Object.create(null); // node ids may be __proto__
  for (const t of tasks) {
    const v = (out[t.nodeId] ??= { executions: 0, iterations: 0, actions: 0, errors: 0, halted: 0 });
    if (t.status === 'halted') {
      v.halted++;
      continue;
    }
    if (typeof t.iteration === 'number') v.iterations++;
    else v.executions++;
    v.actions += t.actions;
    if (t.status === 'error') v.errors++;
  }
  return out;
}
