// The overview: this period's usage against the entitlement, per-scenario use, recent runs.

import { api, listOf } from './api.js';
import { historyCard, invoiceCard } from './billing.js';
import { chartLegend, usageChart } from './chart.js';
import { duration, fmtBytes, fmtDay, fmtDuration, fmtNum, h, replace, statusBadge, time } from './dom.js';
import { scenarioList } from './scenario-list.js';

function stat(name, label, value, note, cls) {
  return h(
    'div',
    { class: ['stat', cls], data: { stat: name } },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value' }, value),
    note ? h('div', { class: 'stat-note' }, note) : null,
  );
}

function periodLabel(p) {
  if (!p) return '';
  const start = new Date(p.start);
  const last = new Date(Date.parse(p.end) - 1);
  return `${p.key} · ${fmtDay(start, p.timezone)} – ${fmtDay(last, p.timezone)} (${p.timezone})`;
}

function projectionBox(report, quota) {
  const p = report.projection;
  const entitlement = report.limit + report.addOns;
  if (!p) return h('div', { id: 'projection', class: 'notice', data: { willExceed: 'null' } }, 'This period is closed: no projection.');
  const end = fmtDay(new Date(Date.parse(report.period.end) - 1), report.period.timezone);
  const rate = `about ${fmtNum(p.perDay)} actions a day`;
  if (p.willExceed) {
    const reached = report.used >= entitlement;
    const when = p.exceedsOn ? fmtDay(new Date(p.exceedsOn), report.period.timezone) : null;
    const halting = quota?.overage === 'halt';
    return h(
      'div',
      { id: 'projection', class: 'notice warn', role: 'status', data: { willExceed: 'true' } },
      h('strong', {}, reached ? 'Limit reached. ' : 'Projected to exceed the limit. '),
      `At this rate (${rate}) you will use ${fmtNum(p.projectedUsed)} actions by ${end} — more than your limit of ${fmtNum(entitlement)}.`,
      !reached && when ? ` The limit would be reached around ${when}.` : '',
      halting ? ' With overage set to halt, runs stop at the limit until the period rolls over or add-ons are bought.' : '',
      quota?.overage === 'allow' ? ' Actions past the limit are billed as overage.' : '',
    );
  }
  return h(
    'div',
    { id: 'projection', class: 'notice ok', data: { willExceed: 'false' } },
    h('strong', {}, 'On track. '),
    `At this rate (${rate}) you will use about ${fmtNum(p.projectedUsed)} of your ${fmtNum(entitlement)} actions by ${end}.`,
  );
}

function usageSection(report, quota) {
  const entitlement = report.limit + report.addOns;
  const pct = entitlement > 0 ? Math.min(100, (report.used / entitlement) * 100) : report.used > 0 ? 100 : 0;
  const meter = h(
    'div',
    { class: 'meter', title: `${fmtNum(report.used)} of ${fmtNum(entitlement)} actions` },
    h('div', { class: ['meter-fill', report.used > entitlement && 'over', pct >= 90 && 'high'] }),
  );
  meter.firstChild.style.width = `${pct.toFixed(1)}%`; // CSSOM, allowed by the page's CSP

  const alerts = report.alerts?.length
    ? h(
        'ul',
        { class: 'alerts', id: 'alerts' },
        report.alerts.map((a) =>
          h(
            'li',
            { data: { threshold: a.threshold } },
            h('span', { class: 'alert-pct' }, `${Math.round(a.threshold * 100)}%`),
            ' of the limit reached ',
            time(a.at),
          ),
        ),
      )
    : h('p', { class: 'muted', id: 'alerts' }, 'No usage alerts this period.');

  return h(
    'section',
    { class: 'card', id: 'usage' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Usage this period'), h('span', { class: 'muted', id: 'period' }, periodLabel(report.period))),
    h(
      'div',
      { class: 'usage-top' },
      h(
        'div',
        { class: 'usage-main' },
        h(
          'div',
          { class: 'big' },
          h('span', { id: 'used', data: { value: report.used } }, fmtNum(report.used)),
          h('span', { class: 'of' }, ' / '),
          h('span', { id: 'entitlement', data: { value: entitlement } }, fmtNum(entitlement)),
          h('span', { class: 'unit' }, ' actions'),
        ),
        h(
          'div',
          { class: 'muted small' },
          'limit ',
          h('span', { id: 'limit' }, fmtNum(report.limit)),
          ' + ',
          h('span', { id: 'addons' }, fmtNum(report.addOns)),
          ' add-ons',
          quota ? ` · overage: ${quota.overage}` : '',
        ),
        meter,
      ),
      h(
        'div',
        { class: 'stats' },
        stat('remaining', 'Remaining', fmtNum(report.remaining)),
        stat('overage', 'Overage', fmtNum(report.overage), null, report.overage > 0 ? 'bad' : null),
        stat('nonBillable', 'Non-billable', fmtNum(report.nonBillable), 'test runs, non-billable scenarios'),
        stat('runs', 'Runs', fmtNum(report.meters?.runs)),
        stat('connectorRequests', 'HTTP requests', fmtNum(report.meters?.connectorRequests)),
        stat('connectorBytes', 'HTTP traffic', fmtBytes(report.meters?.connectorBytes)),
        stat('mailsSent', 'Mails sent', fmtNum(report.meters?.mailsSent)),
      ),
    ),
    projectionBox(report, quota),
    h('div', { class: 'chart-wrap' }, usageChart(report), chartLegend(report)),
    h('h3', {}, 'Alerts'),
    alerts,
  );
}

/** Why a queued run waits (a flow-control limit holding it), as a small line under its status. */
function waitingLine(run) {
  return run.waiting ? h('div', { class: 'muted small run-waiting', title: `waiting: ${run.waiting}` }, `waiting: ${run.waiting}`) : null;
}

function runRow(run, names, fresh) {
  const ms = duration(run.startedAt, run.finishedAt);
  const tags = [
    run.trigger?.test ? h('span', { class: 'tag' }, 'test') : null,
    run.billable === false && !run.trigger?.test ? h('span', { class: 'tag' }, 'non-billable') : null,
  ];
  return h(
    'tr',
    { class: fresh && 'fresh', data: { runId: run.runId, status: run.status } },
    h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.runId)}`, class: 'mono run-link' }, run.runId), ...tags),
    h('td', { class: 'clip', title: run.scenarioId }, names.get(run.scenarioId) || run.scenarioId),
    h('td', { class: 'status-cell' }, statusBadge(run.status), waitingLine(run)),
    h('td', { class: 'num actions' }, fmtNum(run.actions)),
    h('td', { class: 'nowrap' }, time(run.startedAt)),
    h(
      'td',
      { class: 'num nowrap' },
      ms === null ? (run.status === 'running' || run.status === 'queued' ? h('span', { class: 'muted' }, '…') : '—') : fmtDuration(ms),
    ),
    h(
      'td',
      { class: 'error-cell', title: run.error ? `${run.error.code}: ${run.error.message}` : null },
      run.error ? [h('span', { class: 'error-code' }, run.error.code), ' ', h('span', { class: 'muted' }, run.error.message)] : '',
    ),
  );
}

function runsTable(runs, names, known) {
  if (!runs.length) return h('p', { class: 'muted', id: 'runs-empty' }, 'No runs yet.');
  return h(
    'table',
    { class: 'table', id: 'runs-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Run'),
        h('th', {}, 'Scenario'),
        h('th', {}, 'Status'),
        h('th', { class: 'num' }, 'Actions'),
        h('th', {}, 'Started'),
        h('th', { class: 'num' }, 'Duration'),
        h('th', {}, 'Error'),
      ),
    ),
    h(
      'tbody',
      {},
      runs.map((r) => runRow(r, names, known !== null && !known.has(r.runId))),
    ),
  );
}

/** Renders the overview into `root`; returns a handler for live events and a disposer. */
export async function overview(root, ctx) {
  const [report, scenariosData, runsData, quota, invoice, history] = await Promise.all([
    api('/api/usage'),
    api('/api/scenarios'),
    api('/api/runs', { params: { limit: 50 } }),
    api('/api/quota').catch(() => null), // informational only
    api('/api/invoice').catch(() => null), // 404 without a plan
    api('/api/usage/history', { params: { months: 12 } }).catch(() => []),
  ]);
  if (ctx.stale()) return null;
  ctx.setTenant(report.tenant);
  let scenarios = listOf(scenariosData, 'scenarios');
  let names = new Map(scenarios.map((sc) => [sc.id, sc.name || sc.id]));
  let known = new Set(listOf(runsData, 'runs').map((r) => r.runId));

  const usageEl = h('div', {}, usageSection(report, quota));
  const scenariosList = scenarioList(ctx, () => schedule());
  scenariosList.render(report, scenarios);
  const runsBody = h('div', { id: 'runs-body' }, runsTable(listOf(runsData, 'runs'), names, null));
  replace(
    root,
    usageEl,
    invoiceCard(invoice),
    historyCard(history),
    scenariosList.el,
    h(
      'section',
      { class: 'card', id: 'runs' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Recent runs'), h('span', { class: 'muted' }, 'last 50, newest first · updates live')),
      runsBody,
    ),
  );

  let timer = null;
  let busy = false;
  let again = false;
  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const [r, sc, rs, q] = await Promise.all([
        api('/api/usage'),
        api('/api/scenarios'),
        api('/api/runs', { params: { limit: 50 } }),
        api('/api/quota').catch(() => quota),
      ]);
      if (ctx.stale()) return;
      scenarios = listOf(sc, 'scenarios');
      names = new Map(scenarios.map((x) => [x.id, x.name || x.id]));
      const list = listOf(rs, 'runs');
      replace(usageEl, usageSection(r, q));
      scenariosList.render(r, scenarios);
      replace(runsBody, runsTable(list, names, known));
      known = new Set(list.map((x) => x.runId));
    } catch (err) {
      ctx.onError(err);
    } finally {
      busy = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  return {
    onEvent(e) {
      // Show the new status at once, then reload the lists and the usage.
      if (e?.type === 'run' && e.runId) {
        const row = runsBody.querySelector(`tr[data-run-id="${CSS.escape(e.runId)}"]`);
        if (row) {
          row.dataset.status = e.status;
          row.querySelector('.status-cell .status').replaceWith(statusBadge(e.status));
          // A run no longer queued waits for nothing; the refresh brings the reason of one still queued.
          if (e.status !== 'queued') row.querySelector('.status-cell .run-waiting')?.remove();
          if (typeof e.actions === 'number') row.querySelector('.actions').textContent = fmtNum(e.actions);
        }
      }
      schedule();
    },
    refresh: schedule,
    dispose() {
      clearTimeout(timer);
    },
  };
}
