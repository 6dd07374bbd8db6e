// The overview's scenario table: this period's use per scenario, and the scenario actions —
// enable/disable, a test run with a JSON payload, delete (confirmed in place) and, for cron
// scenarios, the next firing in the scenario's timezone and the viewer's.

import { api } from './api.js';
import { fmtNum, h, replace } from './dom.js';

const VIEWER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** `Dec 1, 09:30 GMT+5:30` in `timeZone` (the viewer's when undefined). */
function fmtInstant(iso, timeZone) {
  const opts = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' };
  try {
    return new Intl.DateTimeFormat('en-US', { ...opts, timeZone }).format(new Date(iso));
  } catch {
    return new Intl.DateTimeFormat('en-US', opts).format(new Date(iso));
  }
}

/** Parses the payload editor's text: `{ payload }` or `{ error }` (empty means no payload). */
export function parsePayload(text) {
  if (!text.trim()) return { payload: null };
  try {
    return { payload: JSON.parse(text) };
  } catch (err) {
    return { error: `The payload is not valid JSON: ${err.message}. Nothing was started.` };
  }
}

function nextFiringLine(sc) {
  const t = sc.trigger;
  if (t?.type !== 'cron') return null;
  const zone = t.timezone || 'UTC';
  const schedule = h('span', { class: 'mono' }, t.schedule);
  if (!sc.nextFiring) return h('div', { class: 'muted small next-firing', data: { nextFiring: '' } }, schedule, ` (${zone}) · does not fire while disabled`);
  const local = zone === VIEWER_TZ ? '' : `${fmtInstant(sc.nextFiring)} your time`;
  return h(
    'div',
    { class: 'small next-firing', data: { nextFiring: sc.nextFiring } },
    schedule,
    ' · next ',
    h('time', { datetime: sc.nextFiring, title: sc.nextFiring, class: 'next-scenario-tz' }, `${fmtInstant(sc.nextFiring, zone)} (${zone})`),
    h('span', { class: 'next-viewer-tz muted' }, local),
  );
}

/**
 * The scenario table. `render(report, scenarios)` redraws the rows, keeping an open test-run
 * form (its text and focus) where the set of scenarios is unchanged; `onChange` is called after
 * an action changed something.
 */
export function scenarioList(ctx, onChange) {
  const el = h('section', { class: 'card', id: 'scenarios' });
  const forms = new Map(); // scenario id → its open test-run form row
  const confirming = new Set();
  const notes = new Map(); // scenario id → the last action's error, kept across redraws
  let last = null;

  function row(r) {
    const sc = r.info;
    const id = r.scenarioId;
    const share = h('div', { class: 'share' }, h('div', { class: 'share-fill' }));
    share.firstChild.style.width = `${Math.min(100, (r.actions / r.total) * 100).toFixed(1)}%`;
    const status = h('div', { class: ['row-status small', notes.has(id) && 'error-text'], role: 'status' }, notes.get(id) ?? '');
    const act = async (button, label, path, opts) => {
      button.disabled = true;
      notes.delete(id);
      status.className = 'row-status small muted';
      status.textContent = label;
      try {
        await api(path, opts);
        status.textContent = '';
        onChange();
      } catch (err) {
        if (err.unauthorized) return ctx.onError(err);
        notes.set(id, `${err.message} (${err.code})`);
        status.className = 'row-status small error-text';
        status.textContent = notes.get(id);
        button.disabled = false;
      }
    };
    const path = `/api/scenarios/${encodeURIComponent(id)}`;
    let actions = null;
    if (sc) {
      const toggle = h(
        'button',
        { type: 'button', class: 'button small-button toggle', 'aria-pressed': String(sc.enabled) },
        sc.enabled ? 'Disable' : 'Enable',
      );
      toggle.addEventListener('click', () =>
        act(toggle, sc.enabled ? 'Disabling…' : 'Enabling…', `${path}/${sc.enabled ? 'disable' : 'enable'}`, { method: 'POST' }),
      );
      const test = h('button', { type: 'button', class: 'button small-button test-run', 'aria-expanded': String(forms.has(id)) }, 'Test run');
      test.addEventListener('click', () => {
        if (forms.has(id)) forms.delete(id);
        else forms.set(id, testForm(id));
        draw(true);
      });
      let del;
      if (confirming.has(id)) {
        const yes = h('button', { type: 'button', class: 'button small-button danger confirm-delete' }, 'Yes, delete');
        const no = h('button', { type: 'button', class: 'link cancel-delete' }, 'Cancel');
        yes.addEventListener('click', () => {
          confirming.delete(id);
          void act(yes, 'Deleting…', path, { method: 'DELETE' });
        });
        no.addEventListener('click', () => {
          confirming.delete(id);
          draw(true);
        });
        del = h('span', { class: 'confirm' }, `Delete ${id}? It stops taking triggers; its runs stay. `, yes, ' ', no);
      } else {
        del = h('button', { type: 'button', class: 'button small-button danger delete' }, 'Delete');
        del.addEventListener('click', () => {
          confirming.add(id);
          draw(true);
        });
      }
      actions = h('div', { class: 'row-actions' }, toggle, test, del);
    }
    return h(
      'tr',
      { class: 'scenario-row', data: { scenarioId: id, runs: r.runs, enabled: sc ? String(sc.enabled) : null } },
      h(
        'td',
        {},
        sc ? h('a', { class: 'name', href: `#/scenarios/${encodeURIComponent(id)}` }, sc.name || id) : h('div', { class: 'name' }, id),
        h('div', { class: 'muted small' }, h('span', { class: 'mono' }, id), ' · ', sc?.trigger?.type ?? 'not deployed'),
        sc ? nextFiringLine(sc) : null,
      ),
      h('td', {}, sc ? h('span', { class: ['pill', sc.enabled ? 'pill-on' : 'pill-off'] }, sc.enabled ? 'enabled' : 'disabled') : ''),
      h('td', { class: 'num runs' }, fmtNum(r.runs)),
      h('td', { class: 'num actions' }, fmtNum(r.actions)),
      h('td', { class: 'share-cell' }, share),
      h('td', { class: 'actions-cell' }, actions, status),
    );
  }

  /** The test-run form of scenario `id`: a JSON payload editor checked before anything is sent. */
  function testForm(id) {
    const text = h('textarea', { class: 'payload-editor', rows: 5, spellcheck: 'false', 'aria-label': `Payload for a test run of ${id}` });
    text.value = '{\n  \n}';
    const msg = h('p', { class: 'payload-error error', role: 'alert', hidden: true });
    const start = h('button', { type: 'submit', class: 'start-test-run' }, 'Start test run');
    const form = h(
      'form',
      { class: 'test-run-form' },
      h('label', {}, h('span', { class: 'small muted' }, 'Payload (JSON, becomes msg.payload; empty for none) — a test run is not billed'), text),
      msg,
      h('div', {}, start),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const parsed = parsePayload(text.value);
      msg.hidden = !parsed.error;
      msg.textContent = parsed.error ?? '';
      if (parsed.error) return;
      start.disabled = true;
      try {
        const { runId } = await api(`/api/scenarios/${encodeURIComponent(id)}/trigger`, { method: 'POST', body: { payload: parsed.payload, test: true } });
        forms.delete(id);
        location.hash = `#/runs/${encodeURIComponent(runId)}`;
      } catch (err) {
        if (err.unauthorized) return ctx.onError(err);
        msg.hidden = false;
        msg.textContent = `Could not start the run: ${err.message} (${err.code})`;
        start.disabled = false;
      }
    });
    return h('tr', { class: 'test-run-row', data: { formFor: id } }, h('td', { colspan: 6 }, form));
  }

  function rowsOf(report, scenarios) {
    const byId = new Map(scenarios.map((sc) => [sc.id, sc]));
    const seen = new Set();
    const total = Math.max(1, report.used + report.nonBillable);
    const rows = [...(report.byScenario ?? [])]
      .sort((a, b) => b.runs - a.runs || b.actions - a.actions)
      .map((u) => ({ ...u, info: byId.get(u.scenarioId), total }));
    for (const r of rows) seen.add(r.scenarioId);
    for (const sc of scenarios) if (!seen.has(sc.id)) rows.push({ scenarioId: sc.id, runs: 0, actions: 0, info: sc, total });
    for (const id of forms.keys()) if (!byId.has(id)) forms.delete(id);
    return rows;
  }

  /** Draws the rows; `full` false keeps form rows in place when only the rows' contents changed. */
  function draw(full) {
    const rows = rowsOf(last.report, last.scenarios);
    const tbody = el.querySelector('tbody');
    const ids = rows.map((r) => r.scenarioId).join('\n');
    if (!full && tbody && tbody.dataset.ids === ids) {
      for (const r of rows) tbody.querySelector(`tr.scenario-row[data-scenario-id="${CSS.escape(r.scenarioId)}"]`)?.replaceWith(row(r));
      return;
    }
    const head = ['Scenario', 'State', 'Runs', 'Actions', 'Share', ''].map((t, i) => h('th', { class: i === 2 || i === 3 ? 'num' : null }, t));
    replace(
      el,
      h('div', { class: 'card-head' }, h('h2', {}, 'Scenarios'), h('span', { class: 'muted' }, 'this period, most runs first')),
      rows.length
        ? h(
            'table',
            { class: 'table' },
            h('thead', {}, h('tr', {}, head)),
            h(
              'tbody',
              { data: { ids } },
              rows.map((r) => [row(r), forms.get(r.scenarioId) ?? null]),
            ),
          )
        : h('p', { class: 'muted' }, 'No scenarios deployed yet.'),
    );
  }

  return {
    el,
    render(report, scenarios) {
      last = { report, scenarios };
      draw(false);
    },
  };
}
