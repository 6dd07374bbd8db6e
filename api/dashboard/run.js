// One run: header, outputs, the task log with a context viewer per task, and the scenario's
// global variables.

import { api, reloadOnEvents } from './api.js';
import { duration, fmtDuration, fmtNum, h, jsonBlock, replace, statusBadge, time } from './dom.js';
import { payloadSection, runActions } from './run-actions.js';
import { runPathCard } from './scenario.js';

const FINAL = new Set(['succeeded', 'failed', 'rejected']);

function field(label, ...value) {
  return h('div', { class: 'field' }, h('div', { class: 'field-label' }, label), h('div', { class: 'field-value' }, ...value));
}

function errorBox(error) {
  if (!error) return null;
  return h(
    'div',
    { class: 'notice bad', id: 'run-error' },
    h('strong', { class: 'mono' }, error.code),
    ': ',
    error.message,
    error.nodeId ? h('span', { class: 'muted' }, ` (node ${error.nodeId})`) : '',
    typeof error.status === 'number' ? h('span', { class: 'muted' }, ` · HTTP ${error.status}`) : '',
  );
}

function header(run, scenario, onResumed) {
  const ms = duration(run.startedAt, run.finishedAt);
  const trig = [run.trigger?.type ?? '—', run.trigger?.test ? ' (test)' : ''];
  return h(
    'section',
    { class: 'card', id: 'run-header', data: { runId: run.runId, status: run.status } },
    h('div', { class: 'card-head' }, h('h2', {}, 'Run ', h('span', { class: 'mono' }, run.runId)), statusBadge(run.status)),
    h(
      'div',
      { class: 'fields' },
      field('Scenario', scenario?.name || run.scenarioId, h('div', { class: 'mono muted small' }, run.scenarioId)),
      field('Status', statusBadge(run.status), run.waiting ? h('div', { class: 'muted small', id: 'run-waiting' }, `waiting: ${run.waiting}`) : ''),
      field('Actions', h('span', { id: 'run-actions' }, fmtNum(run.actions)), run.billable === false ? h('span', { class: 'tag' }, 'non-billable') : ''),
      field('Trigger', ...trig),
      field('Started', time(run.startedAt)),
      field('Finished', time(run.finishedAt)),
      field('Duration', ms === null ? '—' : fmtDuration(ms)),
      field('Tasks', fmtNum(run.taskCount ?? run.tasks?.length ?? 0)),
    ),
    errorBox(run.error),
    runActions(run, onResumed),
  );
}

function outputsSection(run) {
  const outputs = run.outputs ?? [];
  return h(
    'section',
    { class: 'card', id: 'outputs' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, 'Outputs'),
      h('span', { class: 'muted' }, `${fmtNum(outputs.length)} message${outputs.length === 1 ? '' : 's'}`),
    ),
    outputs.length
      ? h(
          'div',
          { class: 'outputs' },
          outputs.map((o, i) => h('details', { class: 'output', open: i < 3 }, h('summary', {}, `Output ${i + 1}`), jsonBlock(o))),
        )
      : h('p', { class: 'muted' }, 'This run emitted no outputs.'),
  );
}

function taskDetail(t) {
  return h(
    'div',
    { class: 'task-detail' },
    t.error ? errorBox(t.error) : null,
    h(
      'div',
      { class: 'io' },
      h('div', { class: 'io-col', data: { part: 'input' } }, h('h4', {}, 'Input'), jsonBlock(t.input)),
      h('div', { class: 'io-col', data: { part: 'output' } }, h('h4', {}, 'Output'), jsonBlock(t.output)),
    ),
    t.logs?.length ? h('div', { class: 'logs' }, h('h4', {}, 'Log'), h('pre', { class: 'json' }, t.logs.join('\n'))) : null,
  );
}

function taskTable(run, open) {
  const tasks = run.tasks ?? [];
  const rows = [];
  for (const t of tasks) {
    const isOpen = open.has(t.seq);
    const row = h(
      'tr',
      { class: ['task', isOpen && 'open'], tabindex: 0, 'aria-expanded': String(isOpen), data: { seq: t.seq, status: t.status } },
      h('td', { class: 'num' }, String(t.seq)),
      h('td', { class: 'mono' }, t.nodeId, typeof t.iteration === 'number' ? h('span', { class: 'iter' }, `[${t.iteration}]`) : ''),
      h('td', {}, t.type),
      h('td', {}, statusBadge(t.status)),
      h('td', { class: 'num' }, fmtNum(t.actions)),
      h('td', { class: 'num' }, fmtDuration(t.durationMs)),
      h(
        'td',
        { class: 'error-cell' },
        t.error ? h('span', {}, h('span', { class: 'error-code' }, t.error.code), ' ', h('span', { class: 'muted' }, t.error.message)) : '',
      ),
      h('td', { class: 'chev', 'aria-hidden': 'true' }, isOpen ? '▾' : '▸'),
    );
    const detail = h('tr', { class: 'task-detail-row', hidden: !isOpen, data: { detailFor: t.seq } }, h('td', { colspan: 8 }, isOpen ? taskDetail(t) : null));
    const toggle = () => {
      const now = !open.has(t.seq);
      if (now) open.add(t.seq);
      else open.delete(t.seq);
      row.classList.toggle('open', now);
      row.setAttribute('aria-expanded', String(now));
      row.querySelector('.chev').textContent = now ? '▾' : '▸';
      detail.hidden = !now;
      if (now && !detail.firstChild.firstChild) detail.firstChild.append(taskDetail(t));
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        toggle();
      }
    });
    rows.push(row, detail);
  }
  return h(
    'section',
    { class: 'card', id: 'tasks' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, 'Task log'),
      h(
        'span',
        { class: 'muted' },
        run.taskCount > tasks.length
          ? `the first ${fmtNum(tasks.length)} of ${fmtNum(run.taskCount)} tasks · click a row for its input and output`
          : `${fmtNum(tasks.length)} tasks · click a row for its input and output`,
      ),
    ),
    tasks.length
      ? h(
          'table',
          { class: 'table tasks' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { class: 'num' }, 'Seq'),
              h('th', {}, 'Node'),
              h('th', {}, 'Type'),
              h('th', {}, 'Status'),
              h('th', { class: 'num' }, 'Actions'),
              h('th', { class: 'num' }, 'Duration'),
              h('th', {}, 'Error'),
              h('th', {}),
            ),
          ),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'muted' }, 'No tasks recorded.'),
  );
}

function varsSection(scenarioData, err) {
  const body = (() => {
    if (err) return h('p', { class: 'muted', id: 'vars-error' }, `Variables unavailable: ${err.message}`);
    const vars = scenarioData?.vars ?? {};
    const names = Object.keys(vars).sort();
    if (!names.length) return h('p', { class: 'muted' }, 'This scenario has no global variables.');
    return h(
      'table',
      { class: 'table vars' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Current value'))),
      h(
        'tbody',
        {},
        names.map((n) => h('tr', { data: { var: n } }, h('td', { class: 'mono' }, n), h('td', {}, jsonBlock(vars[n])))),
      ),
    );
  })();
  return h(
    'section',
    { class: 'card', id: 'vars' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Global variables'), h('span', { class: 'muted' }, 'current values, shared by all runs of the scenario')),
    body,
  );
}

/** Renders run `id` into `root`; returns a live-event handler. */
export async function runPage(root, ctx, id) {
  const open = new Set();
  let last = null;
  async function load() {
    const run = await api(`/api/runs/${encodeURIComponent(id)}`);
    let scenarioData = null;
    let varsErr = null;
    try {
      scenarioData = await api(`/api/scenarios/${encodeURIComponent(run.scenarioId)}`);
    } catch (err) {
      varsErr = err;
    }
    const pathCard = await runPathCard(id);
    if (ctx.stale()) return;
    last = run;
    replace(
      root,
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Overview')),
      header(run, scenarioData?.scenario, () => load().catch(ctx.onError)),
      pathCard,
      h('div', { class: 'grid-run' }, payloadSection(run), outputsSection(run)),
      varsSection(scenarioData, varsErr),
      taskTable(run, open),
    );
  }
  await load();
  // Its own events and the variables reload it; once it is final, only a `run` event (a resume).
  const wants = (e) => (e?.runId === id || e?.type === 'vars') && !(last && FINAL.has(last.status) && e.type !== 'run');
  return reloadOnEvents(ctx, load, wants, 250);
}
