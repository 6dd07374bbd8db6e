// The usage chart: one bar per day of the billing period (daily actions, left axis), the
// cumulative total as a line (right axis), the entitlement (limit + add-ons) as a horizontal
// line on the cumulative axis, and what went past it in the overage colour. The limit and the
// projection are named by tags on the right (running-total) axis, moved apart when they would
// overlap, so neither reads as a daily figure.

import { fmtDay, fmtNum, h, localDate, s } from './dom.js';

const W = 960;
const H = 290;
const M = { top: 22, right: 100, bottom: 34, left: 48 };
/** Height of an axis tag, and the least distance between two tags' centres. */
const TAG_H = 16;
const TAG_GAP = 19;
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

/** A round step so that `ticks` steps cover `max`. */
function niceStep(max, ticks) {
  const raw = Math.max(max, 1) / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 3, 4, 5, 6, 8, 10]) if (m * p >= raw) return Math.max(1, m * p);
  return 10 * p;
}

/** Every date (`YYYY-MM-DD`) of the period `YYYY-MM`. */
export function periodDays(key) {
  const m = /^(\d{4})-(\d{2})$/.exec(String(key));
  if (!m) return [];
  const n = new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate();
  return Array.from({ length: n }, (_, i) => `${key}-${String(i + 1).padStart(2, '0')}`);
}

/**
 * Per day: actions, the cumulative total at the end of the day, and the part of the day's
 * actions past the entitlement.
 */
export function dailySeries(report) {
  const byDay = new Map((report.byDay ?? []).map((d) => [d.date, Number(d.actions) || 0]));
  const days = periodDays(report.period?.key);
  // A day the report names outside the month (should not happen): keep it rather than hide it.
  for (const d of byDay.keys()) if (!days.includes(d)) days.push(d);
  days.sort();
  const entitlement = (Number(report.limit) || 0) + (Number(report.addOns) || 0);
  let cum = 0;
  return days.map((date) => {
    const actions = byDay.get(date) ?? 0;
    const before = cum;
    cum += actions;
    const over = Math.max(0, cum - Math.max(before, entitlement));
    return { date, actions, over, cumulative: cum };
  });
}

/**
 * Moves tags (`{ y }`, the centre wanted) apart so that centres are at least `gap` apart,
 * within [lo, hi], changing the order of none; returns the centres, in the tags' order.
 */
export function spreadTags(ys, lo, hi, gap = TAG_GAP) {
  const order = ys.map((y, i) => ({ y: Math.min(hi, Math.max(lo, y)), i })).sort((a, b) => a.y - b.y);
  for (let k = 1; k < order.length; k++) order[k].y = Math.max(order[k].y, order[k - 1].y + gap);
  const last = order.length - 1;
  if (last >= 0 && order[last].y > hi) {
    order[last].y = hi;
    for (let k = last - 1; k >= 0; k--) order[k].y = Math.min(order[k].y, order[k + 1].y - gap);
  }
  const out = [];
  for (const o of order) out[o.i] = o.y;
  return out;
}

/** A tag on the right axis: a filled box with `text`, a leader from `y0` when it had to move. */
function axisTag(cls, text, y0, y) {
  const x = M.left + PW + 4;
  const w = Math.round(text.length * 6.3 + 12);
  return s(
    'g',
    { class: ['axis-tag', cls], data: { y: Math.round(y0) } },
    Math.abs(y - y0) > 0.5 ? s('path', { class: 'tag-leader', d: `M${M.left + PW},${y0} L${x},${y}` }) : null,
    s('rect', { class: 'tag-box', x, y: y - TAG_H / 2, width: w, height: TAG_H, rx: 3 }),
    s('text', { class: 'tag-text', x: x + 6, y: y + 4 }, text),
  );
}

export function usageChart(report, now = new Date()) {
  const tz = report.period?.timezone || 'UTC';
  const series = dailySeries(report);
  const n = Math.max(series.length, 1);
  const entitlement = (Number(report.limit) || 0) + (Number(report.addOns) || 0);
  const today = localDate(now, tz);
  const periodOver = series.length > 0 && today > series[series.length - 1].date;
  // The cumulative line runs up to today (or the whole period once it is over).
  let lastIdx = periodOver ? series.length - 1 : series.findIndex((d) => d.date === today);
  if (lastIdx < 0) lastIdx = series.reduce((acc, d, i) => (d.actions > 0 ? i : acc), -1);
  const maxCum = series.length ? series[Math.max(lastIdx, 0)].cumulative : 0;
  const projection = report.projection ?? null;
  const projected = projection ? Number(projection.projectedUsed) || 0 : 0;

  const dailyStep = niceStep(Math.max(1, ...series.map((d) => d.actions)) * 1.1, 4);
  const dailyMax = dailyStep * 4;
  const cumTop = Math.max(entitlement, maxCum, Math.min(projected, 2 * Math.max(entitlement, maxCum, 1)), 1) * 1.08;
  const cumStep = niceStep(cumTop, 4);
  const cumMax = cumStep * 4;

  const slot = PW / n;
  const xc = (i) => M.left + slot * (i + 0.5);
  const yD = (v) => M.top + PH * (1 - v / dailyMax);
  const yC = (v) => M.top + PH * (1 - Math.min(v, cumMax) / cumMax);
  const r = (v) => Math.round(v * 10) / 10;

  // The limit's and the projection's tags on the running-total axis, apart.
  const hasProjection = projection && !periodOver && lastIdx >= 0 && series.length > 0;
  const projEnd = Math.min(projected, cumMax);
  const wanted = [yC(entitlement), ...(hasProjection ? [yC(projEnd)] : [])];
  const [limitY, projY] = spreadTags(wanted, M.top - 6, M.top + PH + 6);

  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
    'aria-label': `Actions per day in ${report.period?.key ?? 'this period'}, with the cumulative total and the limit`,
  });
  const defs = s('defs', {}, s('clipPath', { id: 'fm-above-limit' }, s('rect', { x: 0, y: 0, width: W, height: r(yC(entitlement)) })));
  svg.append(defs);

  // Grid and both axes' labels.
  const grid = s('g', { class: 'grid' });
  for (let i = 0; i <= 4; i++) {
    const y = r(M.top + PH * (1 - i / 4));
    grid.append(
      s('line', { x1: M.left, x2: M.left + PW, y1: y, y2: y, class: i === 0 ? 'axis' : 'gridline' }),
      s('text', { x: M.left - 8, y: y + 4, class: 'tick tick-left' }, fmtNum(dailyStep * i)),
      // A right tick hidden by a tag is left out.
      [limitY, projY].some((t) => t !== undefined && Math.abs(t - y) < TAG_H)
        ? null
        : s('text', { x: M.left + PW + 8, y: y + 4, class: 'tick tick-right' }, fmtNum(cumStep * i)),
    );
  }
  grid.append(
    s('text', { x: 2, y: M.top - 10, class: 'axis-title axis-daily' }, '◂ actions per day'),
    s('text', { x: W - 2, y: M.top - 10, class: 'axis-title axis-total tick-left' }, 'running total, limit ▸'),
  );
  svg.append(grid);

  // Day labels (every day when they fit) and today's marker.
  const labels = s('g', { class: 'days' });
  const every = slot >= 22 ? 1 : slot >= 11 ? 2 : 5;
  series.forEach((d, i) => {
    const day = Number(d.date.slice(8, 10));
    if ((day - 1) % every === 0 || i === series.length - 1)
      labels.append(s('text', { x: r(xc(i)), y: M.top + PH + 16, class: ['day-label', d.date === today && 'today'] }, String(day)));
  });
  const todayIdx = series.findIndex((d) => d.date === today);
  if (todayIdx >= 0) svg.append(s('rect', { class: 'today-band', x: r(M.left + slot * todayIdx), y: M.top, width: r(slot), height: PH }));
  svg.append(labels);

  // Daily bars, the part past the entitlement in the overage colour.
  const bars = s('g', { class: 'bars' });
  const bw = Math.max(2, slot * 0.62);
  series.forEach((d, i) => {
    if (d.actions <= 0) return;
    const x = r(xc(i) - bw / 2);
    const within = d.actions - d.over;
    const g = s(
      'g',
      { class: ['day-bar', d.over > 0 && 'has-over'], data: { date: d.date, actions: d.actions, over: d.over } },
      s(
        'title',
        {},
        `${fmtDay(new Date(`${d.date}T12:00:00Z`), 'UTC')}: ${fmtNum(d.actions)} actions${d.over ? `, ${fmtNum(d.over)} past the limit` : ''} (total ${fmtNum(d.cumulative)})`,
      ),
    );
    if (within > 0) g.append(s('rect', { class: 'bar', x, width: r(bw), y: r(yD(within)), height: r(yD(0) - yD(within)) }));
    if (d.over > 0) g.append(s('rect', { class: 'bar-over', x, width: r(bw), y: r(yD(d.actions)), height: r(yD(within) - yD(d.actions)) }));
    bars.append(g);
  });
  svg.append(bars);

  // The entitlement, on the running-total axis, named by its tag there.
  const yl = r(yC(entitlement));
  svg.append(
    s(
      'g',
      { class: 'limit', data: { limit: entitlement } },
      s(
        'line',
        { class: 'limit-line', x1: M.left, x2: M.left + PW, y1: yl, y2: yl },
        s(
          'title',
          {},
          `limit ${fmtNum(entitlement)}${report.addOns ? ` (${fmtNum(report.limit)} + ${fmtNum(report.addOns)} add-ons)` : ''}, on the running-total axis`,
        ),
      ),
      axisTag('limit-label', `limit ${fmtNum(entitlement)}`, yl, r(limitY)),
    ),
  );

  // The cumulative line, drawn again in the overage colour above the limit.
  if (lastIdx >= 0 && series.length) {
    const pts = [`${r(M.left)},${r(yC(0))}`, ...series.slice(0, lastIdx + 1).map((d, i) => `${r(xc(i))},${r(yC(d.cumulative))}`)];
    const path = `M${pts.join(' L')}`;
    svg.append(
      s('path', { class: 'cum-line', d: path, data: { total: maxCum } }),
      s('path', { class: 'cum-line-over', d: path, 'clip-path': 'url(#fm-above-limit)' }),
      s(
        'circle',
        { class: ['cum-dot', maxCum > entitlement && 'over'], cx: r(xc(lastIdx)), cy: r(yC(maxCum)), r: 3.5 },
        s('title', {}, `${fmtNum(maxCum)} actions so far`),
      ),
    );
    // Projection to the period's end at the current rate.
    if (hasProjection) {
      const x0 = xc(lastIdx);
      const x1 = M.left + PW;
      let xe = x1;
      let ve = projected;
      if (projected > cumMax && projected > maxCum) {
        xe = x0 + (x1 - x0) * ((cumMax - maxCum) / (projected - maxCum));
        ve = cumMax;
      }
      svg.append(
        s(
          'g',
          { class: ['projection', projection.willExceed && 'exceeds'] },
          s('line', { class: 'projection-line', x1: r(x0), y1: r(yC(maxCum)), x2: r(xe), y2: r(yC(ve)) }),
          axisTag('projection-label', `projected ${fmtNum(projected)}`, r(yC(projEnd)), r(projY)),
        ),
      );
    }
  }
  return svg;
}

export function chartLegend(report) {
  const item = (cls, label) => h('span', { class: 'legend-item' }, h('span', { class: ['swatch', cls] }), label);
  return h(
    'div',
    { class: 'legend' },
    item('sw-bar', 'actions per day (left axis)'),
    item('sw-over', 'past the limit (overage)'),
    item('sw-cum', 'running total (right axis)'),
    item('sw-limit', `limit${report.addOns ? ` (${fmtNum(report.limit)} + ${fmtNum(report.addOns)} add-ons)` : ''}, on the running-total axis`),
    report.projection ? item('sw-proj', 'projection at the current rate') : null,
  );
}
