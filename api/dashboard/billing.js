// Billing on the overview: the period's invoice (from the tenant's plan) and the usage of the
// last 12 periods as monthly bars, with the entitlement (limit + add-ons) as a line.

import { fmtNum, h, s } from './dom.js';

function money(amount, currency) {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

/** The invoice card; without a plan (null), a note saying so. */
export function invoiceCard(inv) {
  if (!inv) {
    return h(
      'section',
      { class: 'card', id: 'invoice' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Invoice')),
      h('p', { class: 'muted', id: 'invoice-none' }, 'No plan is set for this tenant.'),
    );
  }
  const rows = inv.lines.map((l) =>
    h(
      'tr',
      { data: { kind: l.kind, amount: l.amount } },
      h('td', {}, h('span', { class: 'tag' }, l.kind)),
      h('td', { class: 'clip', title: l.description }, l.description),
      h('td', { class: 'num' }, fmtNum(l.quantity)),
      h('td', { class: 'num' }, money(l.unitPrice, inv.currency)),
      h('td', { class: 'num amount' }, money(l.amount, inv.currency)),
    ),
  );
  return h(
    'section',
    { class: 'card', id: 'invoice' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, 'Invoice'),
      h('span', { class: 'muted' }, `${inv.period} · ${inv.currency}`, inv.preview ? ' · preview: the period has not ended' : ''),
    ),
    h(
      'table',
      { class: 'table', id: 'invoice-lines' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Kind'),
          h('th', {}, 'Description'),
          h('th', { class: 'num' }, 'Quantity'),
          h('th', { class: 'num' }, 'Unit price'),
          h('th', { class: 'num' }, 'Amount'),
        ),
      ),
      h('tbody', {}, rows),
      h(
        'tfoot',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Total'),
          h('th', {}),
          h('th', {}),
          h('th', {}),
          h('th', { class: 'num', id: 'invoice-total', data: { total: inv.total } }, money(inv.total, inv.currency)),
        ),
      ),
    ),
  );
}

const W = 960;
const H = 240;
const M = { top: 18, right: 16, bottom: 30, left: 56 };

/** Monthly bars (oldest first) of `rows` (the history, newest first) with the entitlement line. */
export function historyChart(rows) {
  const months = [...rows].reverse();
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const top = Math.max(1, ...months.map((m) => Math.max(m.used, m.limit + m.addOns))) * 1.1;
  const slot = pw / Math.max(months.length, 1);
  const y = (v) => Math.round((M.top + ph * (1 - v / top)) * 10) / 10;
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    id: 'history-chart',
    role: 'img',
    'aria-label': 'Actions per billing period, with the entitlement',
  });
  svg.append(s('line', { x1: M.left, x2: M.left + pw, y1: M.top + ph, y2: M.top + ph, class: 'axis' }));
  svg.append(s('text', { x: M.left - 8, y: y(top / 1.1) + 4, class: 'tick tick-left' }, fmtNum(Math.round(top / 1.1))));
  const bars = s('g', { class: 'bars' });
  const points = [];
  months.forEach((m, i) => {
    const x = M.left + slot * i;
    const entitlement = m.limit + m.addOns;
    const g = s(
      'g',
      { class: 'month-bar', data: { period: m.period, used: m.used, entitlement } },
      s(
        'rect',
        {
          x: Math.round(x + slot * 0.2),
          y: y(m.used),
          width: Math.round(slot * 0.6),
          height: Math.max(0, M.top + ph - y(m.used)),
          class: ['bar', m.used > entitlement && 'bar-over'],
        },
        s('title', {}, `${m.period}: ${fmtNum(m.used)} of ${fmtNum(entitlement)} actions`),
      ),
      s('text', { x: Math.round(x + slot / 2), y: M.top + ph + 16, class: 'day-label' }, m.period),
    );
    bars.append(g);
    points.push(`${Math.round(x + slot * 0.1)},${y(entitlement)}`, `${Math.round(x + slot * 0.9)},${y(entitlement)}`);
  });
  svg.append(bars, s('polyline', { points: points.join(' '), class: 'entitlement-line', fill: 'none' }));
  return svg;
}

export function historyCard(rows) {
  return h(
    'section',
    { class: 'card', id: 'history' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, 'Last 12 periods'),
      h('span', { class: 'muted' }, 'actions used; the line is the entitlement (limit + add-ons)'),
    ),
    h('div', { class: 'chart-wrap' }, historyChart(rows)),
  );
}
