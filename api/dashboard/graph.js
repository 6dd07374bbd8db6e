// A scenario drawn as a graph (SPEC §12): laid out with dagre (served from the package's own
// dependency, /dashboard/dagre.js), drawn as SVG. Nodes are shaded by their share of the
// period's actions, or, on a run page, the run's path is highlighted with its counts.

import { fmtNum, h, s } from './dom.js';

let dagreModule = null;
/** dagre, loaded once, on the first page that draws a graph. */
function loadDagre() {
  dagreModule ??= import('./dagre.js').then((m) => m.default ?? m);
  return dagreModule;
}

const NODE_H = 46;
const CHAR_W = 7; // node sizes come from label lengths, not from measuring text: the same layout everywhere
const LIGHT = [238, 243, 252];
const DARK = [28, 63, 143];

/** The fill of a node with `t` (0..1) of the most expensive node's actions; white for none. */
export function shade(t) {
  if (!(t > 0)) return '#ffffff';
  const c = LIGHT.map((l, i) => Math.round(l + (DARK[i] - l) * Math.min(1, t)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/** The text on an edge: which case, step or branch; none for `next`, `start` and `error`. */
function edgeLabel(e) {
  const n = typeof e.index === 'number' ? ` ${e.index + 1}` : '';
  const names = { cases: 'case', steps: 'step', branches: 'branch', default: 'default', body: 'body' };
  if (e.kind === 'next' || e.kind === 'start' || e.kind === 'error') return '';
  return `${Object.hasOwn(names, e.kind) ? names[e.kind] : e.kind}${n}`;
}

function title(n) {
  return n.type === 'trigger' ? 'trigger' : n.name || n.id;
}

function subtitle(n, visit) {
  const kind = n.type === 'trigger' ? n.name : n.type;
  if (n.entry === 'never') return `${kind} · not run`;
  if (visit || typeof n.actions !== 'number') return kind; // a run's picture has no period counts
  return `${kind} · ${fmtNum(n.actions ?? 0)} action${n.actions === 1 ? '' : 's'}`;
}

/** What a run did at a node, as a badge: ×2, or 1 + 4 iterations on a loop. */
function visitText(v) {
  if (v.iterations > 0) return `×${v.executions} ↻ ${v.iterations}`;
  return `×${v.executions + v.halted}`;
}

function nodeWidth(n) {
  return Math.max(120, Math.max(clip(title(n), 26).length, subtitle(n, null).length) * CHAR_W + 28);
}

function pathD(points) {
  return points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

function marker(id, cls) {
  return s(
    'marker',
    { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse', class: cls },
    s('path', { d: 'M0,0 L10,5 L0,10 z' }),
  );
}

/**
 * Draws `graph` ({ nodes, edges } of the API) into a new element. With `path` (a Map of the
 * run's visits by node id: node ids may be `constructor` or `__proto__`), the nodes the run reached are highlighted with their counts; without
 * it, nodes are shaded by actions. The element gets `data-ready` once drawn.
 */
export async function drawGraph(graph, { path = null, idPrefix = 'g' } = {}) {
  const dagre = await loadDagre();
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 26, ranksep: 60, edgesep: 16, marginx: 14, marginy: 14 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) g.setNode(n.id, { width: nodeWidth(n), height: NODE_H });
  graph.edges.forEach((e, i) => {
    const label = edgeLabel(e);
    g.setEdge(e.from, e.to, { label, width: label.length * 6.2 + 6, height: label ? 14 : 0, labelpos: 'c' }, `e${i}`);
  });
  dagre.layout(g);

  const total = graph.nodes.reduce((a, n) => a + (n.actions ?? 0), 0);
  const max = Math.max(0, ...graph.nodes.map((n) => n.actions ?? 0));
  const { width, height } = g.graph();
  const svg = s(
    'svg',
    {
      class: ['graph', path && 'graph-run'],
      width: Math.ceil(width),
      height: Math.ceil(height),
      viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
      role: 'img',
      'aria-label': `${graph.nodes.length} nodes, ${graph.edges.length} edges`,
    },
    s(
      'defs',
      {},
      marker(`${idPrefix}-arrow`, 'arrow'),
      marker(`${idPrefix}-arrow-error`, 'arrow arrow-error'),
      marker(`${idPrefix}-arrow-taken`, 'arrow arrow-taken'),
    ),
  );
  const edgesLayer = s('g', { class: 'edges' });
  const nodesLayer = s('g', { class: 'nodes' });
  svg.append(edgesLayer, nodesLayer);

  const visited = (id) => Boolean(path?.has(id));
  graph.edges.forEach((e, i) => {
    const laid = g.edge({ v: e.from, w: e.to, name: `e${i}` });
    // On a run page: an edge between two nodes the run reached (an error edge: its node failed).
    const taken = path && visited(e.from) && visited(e.to) && (e.kind !== 'error' || path.get(e.from).errors > 0);
    const cls = ['edge', `edge-${e.kind}`, taken && 'taken'];
    const m = taken ? 'arrow-taken' : e.kind === 'error' ? 'arrow-error' : 'arrow';
    const el = s(
      'g',
      { class: cls, data: { from: e.from, to: e.to, kind: e.kind } },
      s('path', { d: pathD(laid.points), 'marker-end': `url(#${idPrefix}-${m})` }),
      s('title', {}, `${e.from} → ${e.to} (${e.kind}${typeof e.index === 'number' ? ` ${e.index + 1}` : ''})`),
    );
    if (laid.label) el.append(s('text', { class: 'edge-label', x: laid.x.toFixed(1), y: (laid.y + 4).toFixed(1), 'text-anchor': 'middle' }, laid.label));
    edgesLayer.append(el);
  });

  for (const n of graph.nodes) {
    const { x, y, width: w } = g.node(n.id);
    const visit = path?.get(n.id) ?? null;
    const t = max > 0 ? (n.actions ?? 0) / max : 0;
    const fill = path ? (visit ? '#e6f4ec' : '#ffffff') : shade(t);
    const dark = !path && t > 0.55;
    const share = total > 0 ? (n.actions ?? 0) / total : 0;
    const cls = ['node', `node-${n.entry}`, dark && 'dark', path && (visit ? 'visited' : 'unvisited'), visit?.errors > 0 && 'failed'];
    const el = s(
      'g',
      {
        class: cls,
        transform: `translate(${(x - w / 2).toFixed(1)},${(y - NODE_H / 2).toFixed(1)})`,
        data: {
          nodeId: n.id,
          type: n.type,
          actions: n.actions ?? null,
          share: path ? null : share.toFixed(4),
          warnings: n.warnings?.length ?? 0,
          executions: visit ? visit.executions : null,
          iterations: visit ? visit.iterations : null,
        },
      },
      s('rect', { width: w, height: NODE_H, rx: n.entry === 'trigger' ? NODE_H / 2 : 6, fill }),
      s('text', { class: 'node-title', x: 12, y: 19 }, clip(title(n), 26)),
      s('text', { class: 'node-sub', x: 12, y: 35 }, subtitle(n, visit)),
      s('title', {}, tooltip(n, share, visit)),
    );
    if (visit) {
      const text = visitText(visit);
      const bw = text.length * 7 + 12;
      el.append(
        s(
          'g',
          { class: 'visit-badge', transform: `translate(${w - bw / 2 - 6},${NODE_H})` },
          s('rect', { x: -bw / 2, y: -9, width: bw, height: 18, rx: 9 }),
          s('text', { y: 4, 'text-anchor': 'middle' }, text),
        ),
      );
    }
    if (n.warnings?.length) {
      el.append(
        s(
          'g',
          { class: 'warn-badge', transform: `translate(${w - 4},4)` },
          s('circle', { r: 9 }),
          s('text', { y: 4, 'text-anchor': 'middle' }, '!'),
          s('title', {}, n.warnings.join('\n')),
        ),
      );
    }
    nodesLayer.append(el);
  }
  const box = h('div', { class: 'graph-box' }, svg);
  box.dataset.ready = 'true';
  return box;
}

function tooltip(n, share, visit) {
  const lines = [`${n.id} (${n.type === 'trigger' ? `${n.name} trigger` : n.type})`];
  if (n.catchesAll) lines.push('catches the failure of every node');
  if (visit) {
    lines.push(`ran ${visit.executions}×${visit.iterations ? `, ${visit.iterations} loop iterations` : ''}, ${visit.actions} actions`);
    if (visit.errors) lines.push(`${visit.errors} failed`);
    if (visit.halted) lines.push(`${visit.halted} halted for quota`);
  } else if (typeof n.actions === 'number') {
    lines.push(`${fmtNum(n.actions)} actions (${(share * 100).toFixed(1)}% of the period's), ${fmtNum(n.runs)} runs`);
  }
  for (const w of n.warnings ?? []) lines.push(`⚠ ${w}`);
  return lines.join('\n');
}

/** The shading legend: from no actions to the most expensive node's share. */
export function legend(graph) {
  const total = graph.nodes.reduce((a, n) => a + (n.actions ?? 0), 0);
  const max = Math.max(0, ...graph.nodes.map((n) => n.actions ?? 0));
  const steps = [0, 0.25, 0.5, 0.75, 1];
  const pct = (v) => `${total > 0 ? ((v * max * 100) / total).toFixed(v === 0 ? 0 : 1) : '0'}%`;
  return h(
    'div',
    { class: 'graph-legend', id: 'graph-legend' },
    h('span', { class: 'muted small' }, 'Share of this period’s actions:'),
    steps.map((v) => {
      const sw = s('svg', { width: 14, height: 14, 'aria-hidden': 'true' }, s('rect', { width: 14, height: 14, rx: 3, fill: shade(v) }));
      return h('span', { class: 'legend-step' }, sw, ' ', v === 0 ? 'none' : pct(v));
    }),
    h('span', { class: 'legend-step' }, h('span', { class: 'legend-catch' }), ' failure → catch'),
    h('span', { class: 'legend-step' }, h('span', { class: 'legend-warn' }, '!'), ' warning'),
  );
}
