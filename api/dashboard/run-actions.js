// What can be done from a run page: replay it, resume it when halted (a resume that would
// only halt again is refused by the server with the numbers, shown here), share its link; and
// the trigger payload it was started with.

import { api } from './api.js';
import { fmtNum, h, jsonBlock } from './dom.js';

function failure(err) {
  return `${err.message}${err.code ? ` (${err.code})` : ''}`;
}

/** The server's refusal of a resume that would halt again, with its numbers. */
function refusalBox(err) {
  const d = err.details ?? {};
  const until = typeof d.periodEnd === 'string' ? new Date(d.periodEnd) : null;
  return h(
    'div',
    { class: 'notice bad refusal', id: 'resume-refusal', role: 'alert', data: { code: err.code, needed: d.needed, remaining: d.remaining } },
    h('strong', {}, 'Not resumed: it would halt again. '),
    typeof d.needed === 'number'
      ? `The run needs at least ${fmtNum(d.needed)} more action${d.needed === 1 ? '' : 's'}; ${fmtNum(d.remaining)} ${d.remaining === 1 ? 'is' : 'are'} left in ${d.period}${until && !Number.isNaN(until.getTime()) ? ` (the period ends ${until.toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'short' })})` : ''}. `
      : '',
    h('span', { class: 'refusal-message' }, err.message),
  );
}

function resumeControls(run, onResumed) {
  const msg = h('span', { class: 'muted small action-message', role: 'status' });
  const refusal = h('div', { class: 'refusal-slot' });
  const button = h('button', { type: 'button', class: 'button', id: 'resume', disabled: run.resumable === false }, 'Resume run');
  button.addEventListener('click', async () => {
    button.disabled = true;
    refusal.replaceChildren();
    msg.textContent = 'Resuming…';
    try {
      await api(`/api/runs/${encodeURIComponent(run.runId)}/resume`, { method: 'POST' });
      msg.textContent = 'Resumed: the page updates as it runs.';
      onResumed?.();
    } catch (err) {
      msg.textContent = '';
      if (err.code === 'QUOTA_EXHAUSTED') refusal.append(refusalBox(err));
      else msg.textContent = `Could not resume: ${failure(err)}`;
      button.disabled = false;
    }
  });
  return { controls: [button], messages: [msg, refusal] };
}

function replayControls(run) {
  const msg = h('span', { class: 'small action-message', role: 'status' });
  const button = h(
    'button',
    { type: 'button', class: 'button', id: 'replay', title: "A new run of the scenario's current version with this run's trigger payload" },
    'Replay',
  );
  button.addEventListener('click', async () => {
    button.disabled = true;
    msg.className = 'small muted action-message';
    msg.textContent = 'Starting a replay…';
    try {
      const { runId } = await api(`/api/runs/${encodeURIComponent(run.runId)}/replay`, { method: 'POST' });
      location.hash = `#/runs/${encodeURIComponent(runId)}`;
    } catch (err) {
      msg.className = 'small error-text action-message';
      msg.textContent = `Could not replay: ${failure(err)}`;
      button.disabled = false;
    }
  });
  return { controls: [button], messages: [msg] };
}

/** A link to this run that works in another tab (after the key prompt there); the key is never in it. */
function shareControls(run) {
  const href = `${location.origin}${location.pathname}#/runs/${encodeURIComponent(run.runId)}`;
  const link = h('a', { href, id: 'share-link', class: 'small', target: '_blank', rel: 'noopener' }, 'Link to this run');
  const copy = h('button', { type: 'button', class: 'link-button copy-link small' }, 'Copy link');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(href);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = href; // no clipboard access: show it to copy by hand
    }
  });
  return { controls: [link, copy], messages: [] };
}

/** The actions bar of the run header; `onResumed` is called after a resume was accepted. */
export function runActions(run, onResumed) {
  const parts = [run.status === 'halted' ? resumeControls(run, onResumed) : null, replayControls(run), shareControls(run)].filter(Boolean);
  const note = 'Halted with its pending work saved: resuming continues exactly where it stopped (once quota is available).';
  const replayOf = run.replayOf
    ? h('span', { class: 'small', id: 'replay-of' }, 'Replay of ', h('a', { href: `#/runs/${encodeURIComponent(run.replayOf)}`, class: 'mono' }, run.replayOf))
    : null;
  return h(
    'div',
    { id: 'run-actions-bar' },
    run.status === 'halted' ? h('p', { class: 'muted small action-note' }, note) : null,
    h(
      'div',
      { class: 'run-actions' },
      parts.map((p) => p.controls),
      replayOf,
    ),
    h(
      'div',
      { class: 'run-messages' },
      parts.map((p) => p.messages),
    ),
  );
}

/** The trigger payload (the `$trigger` task's message), as the run got it. */
export function payloadSection(run) {
  const task = (run.tasks ?? []).find((t) => t.nodeId === '$trigger');
  const msg = task?.output;
  const payload = msg && typeof msg === 'object' && !msg.$truncated ? msg.payload : msg;
  return h(
    'section',
    { class: 'card', id: 'payload' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Trigger payload'), h('span', { class: 'muted' }, 'msg.payload as the run started')),
    task ? jsonBlock(payload) : h('p', { class: 'muted' }, 'Not recorded (the run did not start).'),
  );
}
