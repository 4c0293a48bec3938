// Grove console: the page groved serves at /ui on its admin port. This is its entry point: it
// starts the page, runs the header (server, mode, login) and the tabs, follows #/path links,
// and wires the modules together.
//
// Plain ES modules, no framework and no build step, so that they are embedded in the binary as
// they are and anyone can read and change them. They speak the console API under api/ (see
// server/src/admin/console). Three views share the page: the node tree with a node's details
// (tree.js, kept current by live.js), coordination and the cluster (status.js); api.js holds the
// HTTP layer and what they all share. Everything shown is set as text (textContent, never
// innerHTML): node names and data are anyone's input.

import { $, api, fail, state, fromHash, setCredentials, loggedIn, openLogin } from './api.js';
import { view, reveal, selectNode, openRoot, refreshAll, setScheduleWatch } from './tree.js';
import { live, scheduleWatch } from './live.js';
import { pollTab, pollCoordination, drawChart } from './status.js';

// ================================================================ wiring

// Live updates follow the tree's views (see tree.js).
setScheduleWatch(scheduleWatch);

// ================================================================ header: mode, identity

async function loadInfo() {
  const info = await api('info');
  state.readOnly = info.mode === 'read-only';
  document.body.dataset.mode = info.mode;
  $('server-id').textContent = `server ${info.server_id}`;
  $('server-version').textContent = info.version ? ` · v${info.version}` : '';
  for (const id of ['mode-badge', 'mode-reason']) $(id).hidden = !state.readOnly;
  $('mode-badge').title = $('mode-reason').textContent = info.read_only_reason || '';
  // CSS hides the change controls when read-only; disabled as well, they are also out of
  // reach of the keyboard and of anything that ignores styles.
  for (const el of document.querySelectorAll('[data-change]')) el.disabled = state.readOnly;
  // Users are the digest identities ("digest:alice:<hash>" reads "alice"); world:anyone and
  // ip:... alone are anonymous.
  const users = (info.identity || []).filter((id) => /^(digest|x509|super):/.test(id));
  $('identity').textContent = users.map((id) => id.replace(/^digest:([^:]*).*$/, '$1')).join(', ') || 'anonymous';
  $('identity').title = `Your requests carry: ${(info.identity || []).join(', ')}`;
  $('identity').classList.toggle('anonymous', !users.length);
  $('login-button').hidden = loggedIn();
  $('logout-button').hidden = !loggedIn();
}

function setAuth(next) {
  setCredentials(next);
  // What may be read depends on who asks: every view is read again under the new identity.
  live.unwatchable.clear();
  loadInfo().catch(fail);
  refreshAll();
  if (state.tab === 'tab-coord') pollCoordination(true);
}

$('login-form').addEventListener('submit', () => {
  setAuth({ user: $('login-user').value, password: $('login-password').value });
});
$('login-button').addEventListener('click', openLogin);
$('logout-button').addEventListener('click', () => setAuth(null));

// ================================================================ tabs

const tabs = [...document.querySelectorAll('[role=tab]')];

function selectTab(tab, focus = false) {
  for (const t of tabs) {
    t.setAttribute('aria-selected', String(t === tab));
    t.tabIndex = t === tab ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = t !== tab;
  }
  if (focus) tab.focus();
  state.tab = tab.id;
  pollTab(tab.id);
}

for (const t of tabs) t.addEventListener('click', () => selectTab(t));
document.querySelector('[role=tablist]').addEventListener('keydown', (e) => {
  const i = tabs.indexOf(document.activeElement);
  const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (i < 0 || to === undefined) return;
  e.preventDefault();
  selectTab(tabs[(to + tabs.length) % tabs.length], true);
});

// ================================================================ dialogs

// Every dialog's Cancel (Escape closes them natively).
for (const b of document.querySelectorAll('dialog [data-close]')) {
  b.addEventListener('click', () => b.closest('dialog').close());
}

// ================================================================ start

window.addEventListener('hashchange', async () => {
  const path = fromHash();
  if (path && path !== view.path) await reveal(path).then(() => selectNode(path));
});

async function start() {
  await loadInfo().catch(fail);
  await openRoot();
  const path = fromHash() || '/';
  await reveal(path);
  await selectNode(path);
  new ResizeObserver(() => drawChart()).observe($('rate-chart'));
  document.body.dataset.ready = 'true'; // for the browser tests: the page has started
}

start();
