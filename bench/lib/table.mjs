/**
 * The bench's results: rows of the table, the notes printed under it, errors (to stderr) and
 * lost run-end events; `printTable` writes them all at the end (or when the watchdog fires).
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

/** `benchStart`: performance.now() when the bench started; `loadAtStart`: the 1-min load average then. */
export function createTable({ benchStart, loadAtStart }) {
  // ---- results -----------------------------------------------------------------------------
  const rows = [];
  const notes = [];
  const errors = [];
  /** Run-end events that never arrived (the run was found ended by polling instead). */
  const lost = [];
  function row(measure, flowmeter, baseline, { unit = '', digits = 0, target, pass, ratioDigits = 2 }) {
    const fmt = (v) =>
      typeof v === 'number' && Number.isFinite(v)
        ? `${v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}${unit}`
        : String(v ?? 'n/a');
    const ratio = typeof flowmeter === 'number' && typeof baseline === 'number' && baseline > 0 ? flowmeter / baseline : null;
    const ok = pass(flowmeter, ratio);
    rows.push({
      measure,
      flowmeter: fmt(flowmeter),
      baseline: fmt(baseline),
      ratio: ratio === null ? 'n/a' : `${ratio.toFixed(ratioDigits)}×`,
      target,
      pass: ok === null ? 'n/a' : ok ? 'yes' : 'NO',
    });
  }
  function failedRow(measure, target, err) {
    errors.push(`${measure}: ${err?.stack ?? err}`);
    rows.push({ measure, flowmeter: 'error', baseline: '', ratio: '', target, pass: 'NO' });
  }

  // ---- the table ---------------------------------------------------------------------------
  function printTable() {
    const cols = ['measure', 'flowmeter', 'baseline', 'ratio', 'target', 'pass'];
    const width = Object.fromEntries(cols.map((c) => [c, Math.max(c.length, ...rows.map((r) => String(r[c]).length))]));
    const right = new Set(['flowmeter', 'baseline', 'ratio']);
    const line = (r) => `| ${cols.map((c) => (right.has(c) ? String(r[c]).padStart(width[c]) : String(r[c]).padEnd(width[c]))).join(' | ')} |`;
    const out = [
      line(Object.fromEntries(cols.map((c) => [c, c]))),
      `|${cols.map((c) => `-${'-'.repeat(width[c])}${right.has(c) ? ':' : '-'}`).join('|')}|`,
      ...rows.map(line),
      '',
      ...notes,
      ...(lost.length ? [`Lost events (runs found ended by polling): ${lost.join('; ')}.`] : []),
      `Machine: ${cpus().length} CPUs, node ${process.version}, 1-min load average ${loadAtStart.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end (other processes share the CPUs); bench took ${((performance.now() - benchStart) / 1000).toFixed(0)} s.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    if (errors.length) process.stderr.write(`\nbench errors:\n${errors.join('\n\n')}\n`);
  }

  return { rows, notes, errors, lost, row, failedRow, printTable };
}
