// One scenario as a picture (SPEC §12): its graph shaded by this period's actions per node,
// its validation warnings, and a table of the nodes' counts. The run page overlays a run's
// path on the same drawing (runPathCard).

import { api, reloadOnEvents } from './api.js';
import { fmtNum, h, replace } from './dom.js';
import { drawGraph, legend } from './graph.js';

function warningsList(graph) {
  const all = [...graph.nodes.flatMap((n) => n.warnings.map((w) => [n.id, w])), ...graph.warnings.map((w) => [null, w])];
  if (!all.length) return null;
  return h(
    'div',
    { class: 'notice warn', id: 'graph-warnings' },
    h('strong', {}, `${all.length} validation warning${all.length === 1 ? '' : 's'}`),
    h(
      'ul',
      {},
      all.map(([id, w]) => h('li', { data: { nodeId: id } }, id ? h('span', { class: 'mono' }, id) : '', id ? ': ' : '', w)),
    ),
  );
}

function nodeTable(graph) {
  const total = graph.actions || 0;
  const rows = [...graph.nodes]
    .filter((n) => n.entry !== 'never')
    .sort((a, b) => b.actions - a.actions || a.id.localeCompare(b.id))
    .map((n) =>
      h(
        'tr',
        { data: { nodeId: n.id } },
        h('td', { class: 'mono' }, n.id, n.name && n.type !== 'trigger' ? h('span', { class: 'muted' }, ` ${n.name}`) : ''),
        h('td', {}, n.type),
        h('td', { class: 'num' }, fmtNum(n.actions)),
        h('td', { class: 'num' }, total > 0 ? `${((n.actions / total) * 100).toFixed(1)}%` : '—'),
        h('td', { class: 'num' }, fmtNum(n.runs)),
      ),
    );
  return h(
    'table',
    { class: 'table graph-nodes' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Node'),
        h('th', {}, 'Type'),
        h('th', { class: 'num' }, 'Actions'),
        h('th', { class: 'num' }, 'Share'),
        h('th', { class: 'num' }, 'Runs'),
      ),
    ),
    h('tbody', {}, rows),
  );
}

/** Renders scenario `id` into `root`. */
export async function scenarioPage(root, ctx, id) {
  async function load() {
    const path = `/api/scenarios/${encodeURIComponent(id)}`;
    const [graph, doc] = await Promise.all([api(`${path}/graph`), api(path)]);
    const drawing = await drawGraph(graph, { idPrefix: 'sc' });
    if (ctx.stale()) return;
    const sc = doc.scenario;
    replace(
      root,
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Overview')),
      h(
        'section',
        { class: 'card', id: 'scenario-header', data: { scenarioId: sc.id } },
        h(
          'div',
          { class: 'card-head' },
          h('h2', {}, sc.name || sc.id),
          h('span', { class: 'mono muted' }, sc.id),
          h('span', { class: ['pill', doc.enabled ? 'pill-on' : 'pill-off'], id: 'scenario-enabled' }, doc.enabled ? 'enabled' : 'disabled'),
        ),
        h(
          'p',
          { class: 'muted' },
          `${sc.trigger.type} trigger · ${fmtNum(sc.nodes.length)} nodes · `,
          h('strong', { id: 'graph-actions' }, fmtNum(graph.actions)),
          ` actions billed in ${graph.period}`,
        ),
      ),
      h(
        'section',
        { class: 'card', id: 'graph' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Graph'), h('span', { class: 'muted' }, 'nodes shaded by their share of this period’s actions')),
        legend(graph),
        drawing,
        warningsList(graph),
      ),
      h('section', { class: 'card', id: 'graph-table' }, h('div', { class: 'card-head' }, h('h2', {}, 'Actions per node')), nodeTable(graph)),
    );
  }
  await load();
  return reloadOnEvents(ctx, load, (e) => e?.type === 'run' && e.scenarioId === id, 500);
}

/**
 * The run page's picture: the graph of the scenario version the run executed, with the nodes
 * it reached highlighted and counted (a loop's iterations on the loop), drawn before it is
 * returned (`data-ready` on the drawing); a failure to load it is said in the card.
 */
export async function runPathCard(runId) {
  const card = h(
    'section',
    { class: 'card', id: 'run-path' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Path'), h('span', { class: 'muted' }, 'nodes this run reached, ×executions, ↻ loop iterations')),
  );
  try {
    const p = await api(`/api/runs/${encodeURIComponent(runId)}/path`);
    const visits = new Map(p.path.map((v) => [v.nodeId, v]));
    card.append(await drawGraph(p, { path: visits, idPrefix: 'run' }));
  } catch (err) {
    card.append(h('p', { class: 'muted', id: 'run-path-error' }, `Path unavailable: ${err.message}`));
  }
  return card;
}
