// Flowmeter operator dashboard: sign-in, routing (#/, #/runs/<id>, #/scenarios/<id>) and live updates.
// A page's URL is shareable: a tab without the key (it lives in each tab's sessionStorage, never
// in the URL) shows the key prompt, then the linked page. Once a page is drawn, <body> gets
// `data-ready="true"` (a screenshot or test waits for it; "login" or "error" otherwise).

import { ApiError, eventsUrl, session } from './api.js';
import { h, replace } from './dom.js';
import { overview } from './overview.js';
import { runPage } from './run.js';
import { scenarioPage } from './scenario.js';

const $ = (id) => document.getElementById(id);
const view = $('view');

let current = null; // { onEvent, refresh, dispose } of the view on screen
let early = []; // live events that came while the view was loading: handed to it once drawn
let loadedOffline = false; // the view on screen was loaded while live updates were not connected
const waiters = []; // resolved when the live connection opens or fails

/** How long a page load waits for live updates to connect (events after that are not missed). */
const LIVE_WAIT_MS = 3000;
let generation = 0;
let source = null;
let retry = null;

function setLive(state) {
  const el = $('live');
  el.dataset.state = state;
  el.title = state === 'on' ? 'Live updates on' : state === 'connecting' ? 'Connecting to live updates…' : 'Live updates off (reload to retry)';
}

/** Marks the page as complete (`true`), waiting for a key (`login`), failed (`error`), or loading (null). */
function setReady(state) {
  if (state) document.body.dataset.ready = state;
  else delete document.body.dataset.ready;
}

/** What the URL names, for the key prompt: "run X", or null for the overview. */
function linkedPage() {
  const m = /^#\/runs\/([^/?#]+)$/.exec(location.hash);
  return m ? `run ${decodeURIComponent(m[1])}` : null;
}

function showLogin(message) {
  stopLive();
  current?.dispose?.();
  current = null;
  generation++;
  replace(view);
  $('nav').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message ?? '';
  $('login-key').value = '';
  $('login-tenant').value = session.tenant;
  const target = linkedPage();
  $('login-target').hidden = !target;
  $('login-target').textContent = target ? `Sign in to open ${target}: this tab has no key yet (keys are not put in links).` : '';
  $('login-key').focus();
  setReady('login');
}

function failure(err) {
  if (err instanceof ApiError) return `${err.message} (${err.status ? `HTTP ${err.status} ` : ''}${err.code})`;
  return String(err?.message ?? err);
}

/** A failed call: a refused key goes back to the sign-in form, anything else is shown in place. */
function onError(err) {
  // A refused key, or an admin key without a (valid) tenant: back to the sign-in form.
  if (err instanceof ApiError && (err.unauthorized || (err.status === 400 && /tenant/i.test(err.message)))) {
    const withTenant = Boolean(session.tenant);
    session.clear();
    showLogin(`The server refused this key: ${failure(err)}. Check the key${withTenant ? ' and tenant' : ''} and try again.`);
    return;
  }
  const box = h('div', { class: 'notice bad', role: 'alert', id: 'view-error' }, h('strong', {}, 'Could not load this page. '), failure(err));
  view.prepend(box);
  if (document.body.dataset.ready !== 'true') setReady('error');
}

async function route() {
  if (!session.key) return showLogin();
  $('login').hidden = true;
  $('nav').hidden = false;
  $('session').hidden = false;
  current?.dispose?.();
  current = null;
  setReady(null);
  early = [];
  const gen = ++generation;
  const ctx = {
    stale: () => gen !== generation,
    onError: (err) => {
      if (gen === generation) onError(err);
    },
    setTenant: (t) => {
      $('tenant-name').textContent = t;
    },
  };
  const hash = location.hash.replace(/^#/, '') || '/';
  const runMatch = /^\/runs\/([^/?#]+)$/.exec(hash);
  const scenarioMatch = /^\/scenarios\/([^/?#]+)$/.exec(hash);
  replace(view, h('p', { class: 'muted loading' }, 'Loading…'));
  try {
    // Subscribe first, then load: every event after the data was read reaches the view.
    await liveConnected();
    if (gen !== generation) return;
    loadedOffline = $('live').dataset.state !== 'on';
    let page;
    if (hash === '/' || hash === '') {
      document.title = 'Flowmeter — overview';
      page = await overview(view, ctx);
    } else if (runMatch) {
      const id = decodeURIComponent(runMatch[1]);
      document.title = `Flowmeter — run ${id}`;
      page = await runPage(view, ctx, id);
    } else if (scenarioMatch) {
      const id = decodeURIComponent(scenarioMatch[1]);
      document.title = `Flowmeter — scenario ${id}`;
      page = await scenarioPage(view, ctx, id);
    } else {
      replace(view, h('div', { class: 'notice' }, 'No such page. ', h('a', { href: '#/' }, 'Back to the overview')));
      setReady('true');
      return;
    }
    if (gen !== generation) {
      page?.dispose?.();
      return;
    }
    current = page;
    for (const e of early.splice(0)) current?.onEvent?.(e); // what happened while it loaded
    setReady('true');
  } catch (err) {
    if (gen !== generation) return;
    replace(view);
    onError(err);
  }
}

function handle(raw) {
  let e;
  try {
    e = JSON.parse(raw);
  } catch {
    return;
  }
  if (current) current.onEvent?.(e);
  else if (early.length < 1000) early.push(e);
}

function startLive() {
  if (source || !session.key) return;
  setLive('connecting');
  const es = new EventSource(eventsUrl());
  source = es;
  const onMessage = (m) => handle(m.data);
  es.addEventListener('message', onMessage);
  es.addEventListener('open', () => {
    if (source !== es) return;
    const wasDown = $('live').dataset.state === 'off';
    setLive('on');
    wake();
    // Catch up with what happened while disconnected (or before, for a view loaded offline).
    if (wasDown || loadedOffline) {
      loadedOffline = false;
      current?.refresh?.();
    }
  });
  es.addEventListener('error', () => {
    if (source !== es) return;
    wake(); // a view waiting for the connection loads without it (and catches up when it opens)
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. the server answered with an error): try again later.
      setLive('off');
      source = null;
      clearTimeout(retry);
      retry = setTimeout(() => {
        if (session.key) startLive();
      }, 5000);
    } else {
      setLive('off');
    }
  });
}

function wake() {
  for (const w of waiters.splice(0)) w();
}

/** Starts live updates if needed; resolves once connected, failed, or after LIVE_WAIT_MS. */
function liveConnected() {
  startLive();
  if ($('live').dataset.state !== 'connecting') return Promise.resolve();
  return new Promise((resolve) => {
    waiters.push(resolve);
    setTimeout(resolve, LIVE_WAIT_MS);
  });
}

function stopLive() {
  wake();
  clearTimeout(retry);
  source?.close();
  source = null;
  setLive('off');
}

/** A key handed over in the URL (#key=...&tenant=...) goes to sessionStorage, not history. */
function takeKeyFromHash() {
  if (!location.hash.startsWith('#key=')) return;
  const p = new URLSearchParams(location.hash.slice(1));
  session.set(p.get('key') ?? '', p.get('tenant') ?? '');
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  stopLive();
}

function boot() {
  takeKeyFromHash();
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = $('login-key').value.trim();
    if (!key) return;
    session.set(key, $('login-tenant').value.trim());
    void route(); // the page the URL names: a shared link opens once the key is given
  });
  $('signout').addEventListener('click', () => {
    session.clear();
    showLogin();
  });
  window.addEventListener('hashchange', () => {
    takeKeyFromHash();
    void route();
  });
  void route();
}

boot();
