/**
 * Graph checks of a scenario: references, cycles, edges into nodes not entered by edges
 * (Catch, Comment: see `entry` in `nodes/define.ts`), and reachability. Pure: knows nothing of stores or queues.
 */
import { didYouMean } from '../core/suggest.js';
import type { NodeRef } from '../nodes/define.js';
import { nodeType } from '../nodes/index.js';

export interface GraphInput {
  start?: unknown;
  nodes: Array<{ index: number; id: string; type: string; parsed: unknown | null }>;
  lists: Record<string, unknown>;
  tables: Record<string, unknown>;
  connections: Record<string, unknown>;
  /**
   * Whether to warn about unreachable nodes (default true). False when some node's edges
   * could not be read (its problem is reported): every warning would be a guess.
   */
  reachability?: boolean;
}

export interface GraphReport {
  problems: string[];
  warnings: string[];
}

/** Every reference a node makes, or [] when its config is not valid (already reported). */
export function refsOf(type: string, parsed: unknown): NodeRef[] {
  if (parsed === null) return [];
  const def = nodeType(type);
  if (!def) return [];
  try {
    return def.refs(parsed as never);
  } catch {
    return [];
  }
}

/** How a node type is entered (`edge` for an unknown type: its problem is reported elsewhere). */
const entryOf = (type: string) => nodeType(type)?.entry ?? 'edge';

export function checkGraph(g: GraphInput): GraphReport {
  const problems: string[] = [];
  const warnings: string[] = [];
  const byId = new Map<string, (typeof g.nodes)[number]>();
  for (const n of g.nodes) {
    if (byId.has(n.id)) problems.push(`nodes[${n.index}].id: duplicate node id "${n.id}" (also nodes[${byId.get(n.id)!.index}])`);
    else byId.set(n.id, n);
  }
  const edges = new Map<string, Array<{ to: string; path: string }>>();
  for (const n of g.nodes) {
    const out: Array<{ to: string; path: string }> = [];
    for (const ref of refsOf(n.type, n.parsed)) {
      const where = `nodes[${n.index}].${ref.path}`;
      if (ref.kind === 'node') {
        const target = byId.get(ref.name);
        if (!target) {
          problems.push(`${where}: node "${ref.name}" does not exist${didYouMean(ref.name, byId.keys())}`);
          continue;
        }
        if (ref.edge === false) {
          if (entryOf(target.type) === 'never') problems.push(`${where}: "${ref.name}" is a ${target.type} node and never runs`);
          continue;
        }
        if (entryOf(target.type) !== 'edge') {
          problems.push(`${where}: "${ref.name}" is a ${target.type} node, which cannot be the target of an edge`);
          continue;
        }
        out.push({ to: ref.name, path: where });
      } else {
        const pool = ref.kind === 'list' ? g.lists : ref.kind === 'table' ? g.tables : g.connections;
        if (!Object.hasOwn(pool, ref.name)) {
          problems.push(
            `${where}: ${ref.kind} "${ref.name}" does not exist in the scenario's ${ref.kind === 'list' ? 'lists' : ref.kind === 'table' ? 'tables' : 'connections'}${didYouMean(ref.name, Object.keys(pool))}`,
          );
        }
      }
    }
    edges.set(n.id, out);
  }

  if (typeof g.start === 'string') {
    const s = byId.get(g.start);
    if (!s) problems.push(`start: node "${g.start}" does not exist${startHint(g.start, [...byId.keys()])}`);
    else if (entryOf(s.type) !== 'edge') problems.push(`start: "${g.start}" is a ${s.type} node, which cannot be the start`);
  }

  problems.push(
    ...findCycles(
      g.nodes.map((n) => n.id),
      edges,
      byId,
    ),
  );

  // Reachability from start, and from every node entered by failures (Catch), not by edges.
  const seen = new Set<string>();
  const stack = [...(typeof g.start === 'string' ? [g.start] : []), ...g.nodes.filter((n) => entryOf(n.type) === 'onError').map((n) => n.id)];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of edges.get(id) ?? []) stack.push(e.to);
  }
  let startName: string;
  try {
    startName = String(g.start);
  } catch {
    startName = typeof g.start; // e.g. an object without a prototype: String() throws
  }
  // Without a valid start, reachability would only repeat the start's problem.
  const startExists = typeof g.start === 'string' && byId.has(g.start);
  for (const n of g.reachability === false || !startExists ? [] : g.nodes) {
    if (!seen.has(n.id) && entryOf(n.type) === 'edge' && byId.get(n.id) === n) {
      warnings.push(`nodes[${n.index}]: node "${n.id}" is not reachable from start "${startName}"`);
    }
  }
  return { problems, warnings };
}

/** `; did you mean "x"?`, else the node ids when there are few. */
function startHint(start: string, ids: string[]): string {
  const hint = didYouMean(start, ids);
  if (hint || ids.length === 0) return hint;
  return ids.length <= 10 ? ` (nodes: ${ids.join(', ')})` : '';
}

/** Each cycle once, as `path: cycle a → b → a`. */
function findCycles(ids: string[], edges: Map<string, Array<{ to: string; path: string }>>, byId: Map<string, { index: number }>): string[] {
  const WHITE = 0,
    GREY = 1,
    BLACK = 2;
  const color = new Map<string, number>(ids.map((id) => [id, WHITE]));
  const problems: string[] = [];
  const stack: string[] = [];
  const visit = (id: string): void => {
    color.set(id, GREY);
    stack.push(id);
    for (const e of edges.get(id) ?? []) {
      const c = color.get(e.to);
      if (c === GREY) {
        const cycle = [...stack.slice(stack.indexOf(e.to)), e.to];
        problems.push(`${e.path}: cycle ${cycle.join(' → ')} (repetition is only through a loop node)`);
      } else if (c === WHITE) visit(e.to);
    }
    stack.pop();
    color.set(id, BLACK);
  };
  for (const id of ids) if (color.get(id) === WHITE && byId.has(id)) visit(id);
  return problems;
}
