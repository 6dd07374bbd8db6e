/** Readable (non-JSON) output of run records, and of a tenant's lists. */
import type { RunRecord, TaskRecord } from '../core/types.js';

const MAX_ROWS = 200;

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function ms(d: number): string {
  return d < 10 ? `${d.toFixed(2)} ms` : d < 1000 ? `${d.toFixed(1)} ms` : `${(d / 1000).toFixed(2)} s`;
}

function taskRow(t: TaskRecord): string[] {
  const node = t.iteration !== undefined ? `${t.nodeId}[${t.iteration}]` : t.nodeId;
  const note = t.error ? `${t.error.code}: ${t.error.message}` : '';
  return [String(t.seq), node, t.type, t.status, String(t.actions), ms(t.durationMs), note];
}

/** A table of tasks (status, actions, duration), then a summary line. */
export function formatRun(run: RunRecord, opts: FormatOptions = {}): string {
  const head = ['seq', 'node', 'type', 'status', 'actions', 'duration', 'error'];
  const shown = run.tasks.slice(0, MAX_ROWS);
  const rows = [head, ...shown.map(taskRow)];
  const widths = head.map((_, i) => Math.min(40, Math.max(...rows.map((r) => r[i]!.length))));
  const lines = rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : pad(c, widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  if (run.tasks.length > MAX_ROWS) lines.push(`… ${run.tasks.length - MAX_ROWS} more tasks (use --json for all)`);
  lines.push(...detailLines(run, opts));
  lines.push('');
  lines.push(summaryLine(run));
  return `${lines.join('\n')}\n`;
}

/** What `formatRun` shows besides the task table. */
export interface FormatOptions {
  /** Also the trigger payload and each task's input. */
  verbose?: boolean;
}

const MAX_VALUE_CHARS = 2000;

function oneLine(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}… (use --json for all)` : text;
}

/** Function log() lines, the outputs, and with `verbose` the payload and task inputs. */
function detailLines(run: RunRecord, opts: FormatOptions): string[] {
  const out: string[] = [];
  const logs = run.tasks.flatMap((t) => (t.logs ?? []).map((l) => `  [${t.nodeId}] ${l}`));
  if (logs.length) out.push('', 'logs:', ...logs);
  if (opts.verbose) {
    const trigger = run.tasks.find((t) => t.nodeId === '$trigger');
    if (trigger) out.push('', `payload: ${oneLine((trigger.output as { payload?: unknown } | null)?.payload ?? null)}`);
    out.push('', 'inputs:', ...run.tasks.filter((t) => t.nodeId !== '$trigger').map((t) => `  ${t.seq} ${t.nodeId}: ${oneLine(t.input)}`));
  }
  if (run.outputs.length) out.push('', 'outputs:', ...run.outputs.map((m, i) => `  ${i + 1}. ${oneLine(m.payload)}`));
  return out;
}

export function summaryLine(run: RunRecord): string {
  const took = run.startedAt && run.finishedAt ? ` in ${ms(Date.parse(run.finishedAt) - Date.parse(run.startedAt))}` : '';
  const err = run.error ? ` — ${run.error.code}: ${run.error.message}` : run.waiting ? ` — waiting: ${run.waiting}` : '';
  return `run ${run.runId} ${run.status}: ${run.actions} action${run.actions === 1 ? '' : 's'}, ${run.tasks.length} task${run.tasks.length === 1 ? '' : 's'}, ${run.outputs.length} output${run.outputs.length === 1 ? '' : 's'}${took}${err}`;
}

export function exitCodeOf(run: RunRecord): number {
  return run.status === 'succeeded' ? 0 : run.status === 'failed' ? 1 : 3;
}

/** A tenant's list: JSON with --json, else a header naming the tenant and one row per item. */
export function tenantListing<T>(tenant: string, noun: string, list: T[], row: (item: T) => string, json?: boolean): string {
  if (json) return `${JSON.stringify(list)}\n`;
  if (list.length === 0) return `no ${noun} for tenant ${tenant}\n`;
  return `${noun} of tenant ${tenant}:\n${list.map(row).join('\n')}\n`;
}
