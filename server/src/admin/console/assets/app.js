// Grove console: the page groved serves at /ui on its admin port.
//
// A plain ES module, no framework and no build step, so that it is embedded in the binary as
// it is and anyone can read and change it. It speaks the console API under api/ (see
// server/src/admin/console). Three views share the page: the node tree with a node's details,
// coordination (locks, elections, sessions) and the cluster. Everything shown is set as text
// (textContent, never innerHTML): node names and data are anyone's input.

// ================================================================ basics

// URLs relative to this module rather than to the document, so the page also works behind a
// proxy that mounts it under another prefix.
const API = new URL('api/', import.meta.url);
const METRICS = new URL('../metrics', import.meta.url);
const AUTH_KEY = 'grove.console.auth';
const PAGE_SIZE = 100; // children per page (the server's default)
const MAX_WATCHED_FOLDERS = 20; // the watch endpoint takes at most 20 `children` paths
const POLL_MS = 2000;
const CHART_WINDOW_MS = 120_000;

const $ = (id) => document.getElementById(id);
const attempt = (f, fallback = null) => { try { return f(); } catch { return fallback; } };

/** A DOM element: h('td', {class: 'num', text: '3'}, ...children). */
function h(tag, props = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...present(kids));
  return el;
}

/** Replaces an element's content, skipping the absent parts (null, false, ''). */
const present = (kids) => kids.flat().filter((kid) => kid != null && kid !== false && kid !== '');
const fill = (el, ...kids) => el.replaceChildren(...present(kids));

/** An SVG element (createElement would make an HTML element that draws nothing). */
function svg(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

const parentOf = (p) => (p === '/' ? null : p.slice(0, p.lastIndexOf('/')) || '/');
const nameOf = (p) => (p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1));
const join = (parent, name) => (parent === '/' ? `/${name}` : `${parent}/${name}`);
const isUnder = (p, root) => p === root || root === '/' || p.startsWith(`${root}/`);
function* ancestors(path) {
  for (let p = parentOf(path); p; p = parentOf(p)) yield p;
}
// A link to a node is #/a/b. Names may hold '#', '%' or '?', so each one is encoded.
const toHash = (p) => `#${p.split('/').map(encodeURIComponent).join('/')}`;
function fromHash() {
  const p = attempt(() => decodeURIComponent(location.hash.slice(1)), '');
  return p.startsWith('/') ? p : null;
}

// ================================================================ bytes

const fromB64 = (b64) => Uint8Array.from(atob(b64 || ''), (c) => c.charCodeAt(0));
function toB64(bytes) {
  let bin = ''; // in slices: fromCharCode(...a) overflows the stack on large arrays
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The bytes as text, or null when they are not UTF-8 (binary data). */
const asText = (bytes) => attempt(() => utf8.decode(bytes));
const hexPairs = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

/** A `hexdump -C` view (offset, 16 bytes, ASCII), bounded: data can be megabytes. */
function hexDump(bytes, limit = 64 * 1024) {
  const lines = [];
  const n = Math.min(bytes.length, limit);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hexPairs(row).padEnd(47)}  |${ascii}|`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes not shown`);
  return lines.join('\n');
}

function parseHex(text) {
  const clean = text.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(clean)) throw new Error('Hex data must be pairs of hex digits (00-ff).');
  return Uint8Array.from(clean.match(/../g) || [], (x) => parseInt(x, 16));
}

/** Data as shown: JSON pretty-printed when it parses, other text as it is; text null for
 *  binary data (shown as hex). */
function showData(bytes) {
  const text = asText(bytes);
  const json = text !== null && /^\s*[[{]/.test(text) ? attempt(() => JSON.stringify(JSON.parse(text), null, 2)) : null;
  return { text: json ?? text, json: json !== null };
}

const fmtZxid = (z) => (z == null ? '–' : `0x${Number(z).toString(16)}`);
const fmtTime = (ms) => (ms ? new Date(Number(ms)).toLocaleString(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
}) : '–');

// ================================================================ API

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || (status ? `HTTP_${status}` : 'UNAVAILABLE');
    this.body = body || {};
  }
}

// Credentials live in sessionStorage: as long as the tab, never in other tabs, a cookie jar
// or on disk the way localStorage would keep them.
let auth = attempt(() => JSON.parse(sessionStorage.getItem(AUTH_KEY)));

function headers(change) {
  const out = {};
  if (auth) out.Authorization = `Basic ${toB64(new TextEncoder().encode(`${auth.user}:${auth.password}`))}`;
  // Every non-GET call says JSON, body or not: the server refuses others, which is what
  // keeps cross-site forms out.
  if (change) out['Content-Type'] = 'application/json';
  return out;
}

function apiUrl(path, query = {}) {
  const url = new URL(path, API);
  for (const [k, v] of Object.entries(query)) {
    for (const one of [].concat(v)) if (one != null) url.searchParams.append(k, String(one));
  }
  return url;
}

async function api(path, { method = 'GET', query, body } = {}) {
  let res;
  try {
    const init = { method, headers: headers(method !== 'GET'), cache: 'no-store' };
    if (body !== undefined) init.body = JSON.stringify(body);
    res = await fetch(apiUrl(path, query), init);
  } catch (e) {
    throw new ApiError(0, { error: `cannot reach the server (${e.message})`, code: 'UNAVAILABLE' });
  }
  const text = await res.text();
  const json = attempt(() => (text ? JSON.parse(text) : null)); // a proxy's error page is not JSON
  if (!res.ok) throw new ApiError(res.status, json || { error: text.trim().slice(0, 200) || res.statusText });
  return json;
}

// ================================================================ notices

/** A message in the live region: errors stay until dismissed, others go after 5 s. */
function notify(message, { kind = 'error', code = null } = {}) {
  const box = $('notices');
  const item = h('div', { class: `notice notice-${kind}`, 'data-testid': `notice-${kind}`, 'data-code': code },
    code ? h('strong', { class: 'code', text: code }) : null, h('span', { text: message }),
    h('button', { type: 'button', class: 'icon-btn',
      'aria-label': 'Dismiss', text: '×', onclick: () => item.remove() }),
  );
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => item.remove(), 5000);
}
const fail = (e) => notify(e.message, { code: e.code });

// ================================================================ header: mode, identity

const state = { readOnly: false, tab: 'tab-tree' };

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
  $('login-button').hidden = !!auth;
  $('logout-button').hidden = !auth;
}

function setAuth(next) {
  auth = next;
  if (next) sessionStorage.setItem(AUTH_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(AUTH_KEY);
  // What may be read depends on who asks: every view is read again under the new identity.
  live.unwatchable.clear();
  loadInfo().catch(fail);
  refreshAll();
  if (state.tab === 'tab-coord') pollCoordination(true);
}

function openLogin() {
  $('login-form').reset();
  $('login-dialog').showModal();
}
const loginButton = () => h('button', { type: 'button', class: 'btn btn-small', text: 'Log in', onclick: openLogin });

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
  // Only the open tab polls: a console left open costs the server one watch stream.
  clearInterval(coord.timer);
  clearInterval(cluster.timer);
  if (tab.id === 'tab-coord') {
    pollCoordination(true);
    coord.timer = setInterval(pollCoordination, POLL_MS);
  } else if (tab.id === 'tab-cluster') {
    cluster.prev = null; // no rate across the time the tab was closed: a gap, not an average
    pollCluster();
    cluster.timer = setInterval(pollCluster, POLL_MS);
  }
}

for (const t of tabs) t.addEventListener('click', () => selectTab(t));
document.querySelector('[role=tablist]').addEventListener('keydown', (e) => {
  const i = tabs.indexOf(document.activeElement);
  const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (i < 0 || to === undefined) return;
  e.preventDefault();
  selectTab(tabs[(to + tabs.length) % tabs.length], true);
});

// ================================================================ tree

// One record per node shown in the tree, by path. Once its children are loaded a record is
// also a view that live updates keep current: `zxid` says up to which zxid its listing is
// known current, so replayed watch events it already reflects are ignored.
const tree = new Map();
const treeEl = $('tree');
let expandSeq = 0;

function makeItem(path, level) {
  const rec = { path, level, expanded: false, loaded: false, items: [], next: '', zxid: 0, numChildren: null };
  rec.count = h('span', { class: 'count', 'data-testid': 'child-count' });
  const row = h('div', { class: 'row' }, h('span', { class: 'twisty', 'aria-hidden': 'true', 'data-testid': 'twisty' }),
    h('span', { class: 'name', text: nameOf(path) }), rec.count);
  rec.group = h('ul', { role: 'group' });
  rec.li = h('li', {
    role: 'treeitem', 'aria-level': level, 'aria-selected': String(path === view.path), 'aria-expanded': 'false',
    'aria-label': nameOf(path), tabindex: -1, 'data-path': path,
  }, row, rec.group);
  rec.li.style.setProperty('--level', String(level - 1)); // indentation (CSSOM: the CSP allows it)
  tree.set(path, rec);
  return rec;
}

/** Child count and kind, from a listing or a stat read at `zxid` (a replayed event can be
 *  older than what the item shows: then it is ignored). */
function updateItem(rec, numChildren, zxid, ephemeral = rec.ephemeral) {
  if (zxid < (rec.countZxid || 0)) return;
  Object.assign(rec, { numChildren, ephemeral, countZxid: zxid });
  rec.count.textContent = numChildren > 0 ? String(numChildren) : '';
  rec.li.classList.toggle('ephemeral', !!ephemeral);
  // A node without children is a leaf: no aria-expanded, no twisty. If the user had it open it
  // stays watched, so children created later still show.
  if (numChildren > 0 || rec.path === '/') rec.li.setAttribute('aria-expanded', String(rec.expanded));
  else rec.li.removeAttribute('aria-expanded');
  const label = [nameOf(rec.path), numChildren > 0 && `${numChildren} children`, ephemeral && 'ephemeral'];
  rec.li.setAttribute('aria-label', present(label).join(', '));
}

const expandable = (rec) => rec.li.hasAttribute('aria-expanded');
const visible = (rec) => [...ancestors(rec.path)].every((p) => tree.get(p)?.expanded);

/** Forgets a node and everything under it (deleted, or gone from a reloaded listing). */
function dropSubtree(path) {
  const rec = tree.get(path);
  const parent = tree.get(parentOf(path));
  if (rec && parent) parent.items = parent.items.filter((c) => c !== rec);
  rec?.li.remove();
  for (const p of [...tree.keys()]) if (isUnder(p, path)) tree.delete(p);
}

/** Puts a listing into a folder, reusing the records (and so the open subfolders) of the
 *  names still there. `append`: a further page after those shown. */
function setChildren(rec, children, next, append, zxid) {
  const focused = document.activeElement;
  const items = append ? rec.items.slice() : [];
  for (const c of children) {
    const path = join(rec.path, c.name);
    const child = tree.get(path) || makeItem(path, rec.level + 1);
    updateItem(child, c.num_children, zxid, c.ephemeral);
    items.push(child);
  }
  if (!append) for (const old of rec.items) if (!items.includes(old)) dropSubtree(old.path);
  Object.assign(rec, { items, next: next || '', loaded: true });
  items.forEach((c, i) => {
    c.li.setAttribute('aria-posinset', String(i + 1));
    c.li.setAttribute('aria-setsize', String(Math.max(rec.numChildren ?? 0, items.length)));
  });
  const more = rec.next && h('li', { role: 'none', class: 'more' }, h('button', {
    type: 'button', class: 'btn btn-small btn-quiet', 'data-testid': 'load-more', onclick: () => loadMore(rec),
    text: `Load more (${items.length} of ${rec.numChildren ?? '?'} shown)`,
  }));
  rec.group.replaceChildren(...items.map((c) => c.li), ...(more ? [more] : []));
  // Taking an element out and putting it back blurs it: focus goes back to it, or to this
  // folder if it is gone.
  if (focused?.getAttribute('role') === 'treeitem' && document.activeElement !== focused) {
    (focused.isConnected ? focused : rec.li).focus({ preventScroll: true });
  }
  if (!treeEl.querySelector('[role=treeitem][tabindex="0"]')) rec.li.tabIndex = 0;
}

/** Reads a folder's listing again (as many children as it shows). Calls made while one runs
 *  are folded into one more run after it; all of them resolve when it is done. */
function refreshFolder(rec) {
  if (rec.loading) {
    rec.again = true;
    return rec.loading;
  }
  rec.li.setAttribute('aria-busy', 'true');
  rec.loading = (async () => {
    do {
      rec.again = false;
      const limit = Math.min(Math.max(PAGE_SIZE, rec.items.length), 1000);
      const r = await api('children', { query: { path: rec.path, limit } });
      if (tree.get(rec.path) !== rec) return; // dropped meanwhile
      rec.zxid = Math.max(rec.zxid, r.zxid);
      updateItem(rec, r.stat?.num_children ?? r.children.length, r.zxid);
      setChildren(rec, r.children, r.next_page_token, false, r.zxid);
    } while (rec.again);
  })().catch((e) => {
    rec.loaded = false;
    notify(`Listing ${rec.path}: ${e.message}`, { code: e.code });
  }).finally(() => {
    rec.loading = null;
    rec.li.removeAttribute('aria-busy');
    scheduleWatch();
  });
  return rec.loading;
}

async function loadMore(rec) {
  try {
    const r = await api('children', { query: { path: rec.path, limit: PAGE_SIZE, page_token: rec.next } });
    setChildren(rec, r.children, r.next_page_token, true, r.zxid);
  } catch (e) {
    fail(e);
  }
}

async function setExpanded(rec, open) {
  if (open && !expandable(rec)) return;
  rec.expanded = open;
  if (expandable(rec)) rec.li.setAttribute('aria-expanded', String(open));
  if (open) rec.expandedAt = ++expandSeq;
  if (open && !rec.loaded) await refreshFolder(rec);
  scheduleWatch();
}

/** Opens the folders down to `path` (a link to a node). */
async function reveal(path) {
  for (const p of [...ancestors(path)].reverse()) {
    const rec = tree.get(p);
    if (!rec) return; // beyond the pages loaded: the node view opens all the same
    if (!rec.expanded) await setExpanded(rec, true);
  }
}

function focusItem(li) {
  if (!li) return;
  for (const other of treeEl.querySelectorAll('[role=treeitem][tabindex="0"]')) other.tabIndex = -1;
  li.tabIndex = 0; // roving tabindex: the tree is one tab stop
  li.focus();
}

// Items in collapsed folders are display:none, so they have no offsetParent.
const visibleItems = () => [...treeEl.querySelectorAll('[role=treeitem]')].filter((li) => li.offsetParent !== null);

// The keyboard of the WAI-ARIA tree view pattern (single selection).
treeEl.addEventListener('keydown', (e) => {
  const li = e.target.closest('[role=treeitem]');
  const rec = li && tree.get(li.dataset.path);
  if (!rec || e.altKey || e.ctrlKey || e.metaKey) return;
  const items = visibleItems();
  const i = items.indexOf(li);
  switch (e.key) {
    case 'ArrowDown': focusItem(items[i + 1]); break;
    case 'ArrowUp': focusItem(items[i - 1]); break;
    case 'Home': focusItem(items[0]); break;
    case 'End': focusItem(items[items.length - 1]); break;
    case 'ArrowRight':
      if (expandable(rec) && !rec.expanded) setExpanded(rec, true);
      else if (rec.expanded && rec.items.length) focusItem(rec.items[0].li);
      break;
    case 'ArrowLeft':
      if (expandable(rec) && rec.expanded) setExpanded(rec, false);
      else focusItem(tree.get(parentOf(rec.path))?.li);
      break;
    case 'Enter': // opens the node; a folder also opens (or, already selected, toggles)
      if (expandable(rec) && (view.path === rec.path || !rec.expanded)) setExpanded(rec, !rec.expanded);
      selectNode(rec.path);
      break;
    case ' ': selectNode(rec.path); break;
    default: { // type-ahead: the next visible item whose name starts with that character
      if (e.key.length !== 1 || !/\S/.test(e.key)) return;
      const order = items.slice(i + 1).concat(items.slice(0, i + 1));
      focusItem(order.find((x) => nameOf(x.dataset.path).toLowerCase().startsWith(e.key.toLowerCase())));
    }
  }
  e.preventDefault();
});

treeEl.addEventListener('click', (e) => {
  const rec = !e.target.closest('.more') && tree.get(e.target.closest('[role=treeitem]')?.dataset.path);
  if (!rec) return;
  focusItem(rec.li);
  if (e.target.closest('.twisty')) setExpanded(rec, !rec.expanded);
  else selectNode(rec.path);
});
treeEl.addEventListener('dblclick', (e) => {
  const rec = !e.target.closest('.twisty, .more') && tree.get(e.target.closest('[role=treeitem]')?.dataset.path);
  if (rec) setExpanded(rec, !rec.expanded);
});

// ================================================================ node view

// The open node. `zxid`: the view is current up to that zxid. While `editing`, the editor's
// text is the user's: remote changes never replace it.
const view = { path: null, node: null, zxid: 0, error: null, hex: false, editing: false, base: null, gone: false };
let viewSeq = 0;
const nodeEl = $('node');

async function selectNode(path) {
  if (path === view.path) return;
  if (view.editing && editorDirty() && !(await confirmDialog({
    title: 'Discard your edit?', message: `Your unsaved edit of ${view.path} will be lost.`, ok: 'Discard',
  }))) return;
  // The old content stays until the answer (no flicker), but it is no longer the node's:
  // nothing may act on it or count its zxid.
  Object.assign(view, { path, node: null, error: null, zxid: 0, gone: false });
  closeEditor();
  for (const li of treeEl.querySelectorAll('[aria-selected="true"]')) li.setAttribute('aria-selected', 'false');
  tree.get(path)?.li.setAttribute('aria-selected', 'true');
  history.replaceState(null, '', toHash(path));
  await loadNode(path);
}

async function loadNode(path) {
  const seq = ++viewSeq; // answers for an older selection are dropped
  nodeEl.dataset.state = 'loading';
  try {
    const node = await api('node', { query: { path } });
    if (seq !== viewSeq) return;
    Object.assign(view, { node, zxid: node.zxid, error: null, gone: false });
    const rec = tree.get(path);
    if (rec) updateItem(rec, node.stat.num_children, node.zxid, node.stat.ephemeral_owner !== '0x0');
  } catch (e) {
    if (seq !== viewSeq) return;
    Object.assign(view, { node: null, zxid: 0, error: e, gone: false });
  }
  renderNode();
  scheduleWatch();
}

const PERMS = { c: 'create', d: 'delete', r: 'read', w: 'write', a: 'admin' };
const table = (cols, rows, cls = 'table compact') => h('div', { class: 'table-wrap' }, h('table', { class: cls },
  h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))), h('tbody', {}, rows)));

function renderNode() {
  const { node, error, path } = view;
  $('node-empty').hidden = !!path;
  $('node-body').hidden = !path;
  $('node-path').textContent = path || '';
  const status = error ? 'error' : node ? 'loaded' : 'empty'; // for the tests, too
  Object.assign(nodeEl.dataset, { path: path || '', state: status, version: node?.stat.version ?? '' });

  $('node-error').hidden = !error;
  if (error) {
    const hint = { 401: 'Log in as a user allowed to read it.', 403: 'Your identity may not read it.' }[error.status];
    fill($('node-error'), h('strong', { class: 'code', text: error.code }), h('span', { text: ` ${error.message} ` }),
      hint && h('span', { class: 'hint', text: hint }),
      error.status === 401 && loginButton(),
    );
  }
  for (const id of ['data-card', 'stat', 'acl', 'quota']) $(id).closest('.card').hidden = !node;
  $('node-gone').hidden = !view.gone;
  $('node-mode').hidden = !node;
  const changeable = !!node && !state.readOnly && !view.gone;
  $('edit-button').disabled = !changeable || view.editing;
  $('create-button').disabled = !changeable || node.stat.ephemeral_owner !== '0x0'; // no children for ephemerals
  $('delete-button').disabled = $('delete-recursive-button').disabled = !changeable || path === '/';
  $('delete-recursive-button').hidden = !node?.stat.num_children;
  if (!node) return;

  const st = node.stat;
  $('node-mode').textContent = st.mode.replace('_', ' ');
  const bytes = fromB64(node.data);
  const shown = showData(bytes);
  const hex = view.hex || shown.text === null;
  $('view-text').setAttribute('aria-pressed', String(!hex));
  $('view-hex').setAttribute('aria-pressed', String(hex));
  $('view-text').disabled = shown.text === null;
  const pre = $('node-data');
  pre.textContent = !bytes.length ? '(no data)' : hex ? hexDump(bytes) : shown.text;
  pre.classList.toggle('empty-data', !bytes.length);
  pre.hidden = $('data-view').hidden = view.editing;
  const info = [`${bytes.length} bytes`, shown.json && 'JSON', shown.text === null && 'binary'];
  $('data-info').textContent = present(info).join(' · ');

  // ZooKeeper's names (index.html); zxids in hex as zkCli shows them, with the decimal.
  for (const dd of $('stat').querySelectorAll('dd')) {
    const k = dd.dataset.stat;
    const v = st[k];
    dd.dataset.value = v ?? '';
    dd.title = k.endsWith('time') && v ? new Date(Number(v)).toISOString() : '';
    if (k.endsWith('zxid')) dd.replaceChildren(fmtZxid(v), h('span', { class: 'muted', text: ` (${v})` }));
    else if (k.endsWith('time')) dd.textContent = fmtTime(v);
    else if (k === 'ttl_ms') dd.textContent = st.mode.startsWith('ttl') ? `${v} ms` : '–';
    else dd.textContent = String(v ?? '–');
  }

  const aclRow = (a) => h('tr', {}, h('td', { text: a.scheme }), h('td', { class: 'mono', text: a.id }),
    h('td', { class: 'mono', title: [...a.perms].map((p) => PERMS[p] || p).join(', '), text: a.perms }));
  $('acl').replaceChildren(node.acl
    ? table(['Scheme', 'Id', 'Permissions'], node.acl.map(aclRow))
    : h('p', { class: 'muted', text: 'Not readable with your identity.' }));

  const q = node.quota;
  const meter = (label, used, max) => h('div', { class: 'meter-row' }, h('span', { text: label }),
    max ? h('meter', { min: 0, max, value: used, high: max * 0.9, 'aria-label': `${label} used` }) : h('span'),
    h('span', { class: 'mono', text: max ? `${used} / ${max}` : `${used}, no limit` }));
  $('quota').replaceChildren(q
    ? h('div', { class: 'quota' },
      h('p', { class: 'muted', text: q.root === path ? 'Set on this node.' : `Set on ${q.root}.` }),
      meter('Nodes', q.nodes, q.max_nodes), meter('Bytes', q.bytes, q.max_bytes))
    : h('p', { class: 'muted', text: 'No quota applies.' }));
}

$('view-text').addEventListener('click', () => { view.hex = false; renderNode(); });
$('view-hex').addEventListener('click', () => { view.hex = true; renderNode(); });

// ================================================================ editing and conflicts

function openEditor() {
  if (!view.node) return;
  const bytes = fromB64(view.node.data);
  const text = asText(bytes);
  Object.assign(view, { editing: true, base: view.node.stat.version, original: view.node.data });
  $('editor-hex').checked = text === null; // binary data is edited as hex rather than mangled
  $('editor-text').value = text ?? hexPairs(bytes);
  $('editor-base').textContent = `based on version ${view.base}`;
  $('editor').hidden = false;
  renderNode();
  $('editor-text').focus();
}

function closeEditor() {
  Object.assign(view, { editing: false, base: null });
  for (const id of ['editor', 'remote-change', 'conflict']) $(id).hidden = true;
}

function editorBytes() {
  const text = $('editor-text').value;
  return $('editor-hex').checked ? parseHex(text) : new TextEncoder().encode(text);
}
const editorDirty = () => attempt(() => toB64(editorBytes()) !== view.original, true);

/** Saves the editor's bytes. `version` is the one the edit is based on, so that a change made
 *  meanwhile is refused (409) and shown, never overwritten; -1 only when the user says so. */
async function save(version) {
  const bytes = attempt(editorBytes);
  if (!bytes) return notify('Hex data must be pairs of hex digits (00-ff).', { code: 'BAD_ARGUMENTS' });
  const path = view.path;
  $('save-button').disabled = true;
  try {
    const r = await api('node', { method: 'PUT', body: { path, data: toB64(bytes), version } });
    if (view.path !== path) return;
    closeEditor();
    view.node = { ...view.node, data: toB64(bytes), stat: r.stat, zxid: r.zxid };
    view.zxid = Math.max(view.zxid, r.zxid);
    renderNode();
    notify(`Saved ${path} (version ${r.stat.version}).`, { kind: 'ok' });
  } catch (e) {
    if (e.code === 'BAD_VERSION' && e.body.current) showConflict(e.body.current, bytes);
    else fail(e);
  } finally {
    $('save-button').disabled = state.readOnly;
  }
}

function showConflict(current, mine) {
  const text = (b) => showData(b).text ?? hexDump(b);
  $('conflict-base').textContent = String(view.base);
  $('conflict-current').textContent = String(current.stat.version);
  $('conflict-mine').textContent = text(mine);
  $('conflict-theirs').textContent = text(fromB64(current.data));
  $('conflict-text').textContent = `${current.path} was changed on the server at ${fmtTime(current.stat.mtime)}. `
    + "Nothing was overwritten: reload to take the server's version, or overwrite it with yours.";
  $('remote-change').hidden = true;
  $('conflict').hidden = false;
  $('conflict-title').focus();
}

$('edit-button').addEventListener('click', openEditor);
$('cancel-edit').addEventListener('click', () => { closeEditor(); renderNode(); });
$('editor').addEventListener('submit', (e) => { e.preventDefault(); save(view.base); });
$('conflict-reload').addEventListener('click', () => { closeEditor(); loadNode(view.path); });
$('conflict-overwrite').addEventListener('click', () => { $('conflict').hidden = true; save(-1); });
window.addEventListener('beforeunload', (e) => { if (view.editing && editorDirty()) e.preventDefault(); });

// ================================================================ create and delete

/** A confirmation in the modal <dialog>; true when confirmed. */
function confirmDialog({ title, message, ok = 'Delete' }) {
  const dlg = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-message').textContent = message;
  $('confirm-ok').textContent = ok;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

async function deleteNode(recursive) {
  const path = view.path;
  if (!path || path === '/') return;
  if (!(await confirmDialog(recursive
    ? { title: 'Delete subtree?', message: `Delete ${path} and every node below it? This cannot be undone.`,
      ok: 'Delete subtree' }
    : { title: 'Delete node?', message: `Delete ${path}?` }))) return;
  try {
    // A plain delete names the version shown: a node changed meanwhile is not deleted.
    const version = recursive ? -1 : view.node?.stat.version ?? -1;
    const r = await api('node', { method: 'DELETE', query: { path, version, recursive } }).catch((e) => {
      const hint = {
        NOT_EMPTY: 'Delete subtree deletes it with everything below.',
        BAD_VERSION: 'It changed since it was shown: look again first.',
      }[e.code];
      throw Object.assign(e, { message: hint ? `${e.message}. ${hint}` : e.message });
    });
    notify(`Deleted ${path}${r.deleted > 1 ? ` and ${r.deleted - 1} nodes below it` : ''}.`, { kind: 'ok' });
    const parent = tree.get(parentOf(path));
    dropSubtree(path);
    closeEditor();
    await selectNode(parentOf(path));
    if (parent) {
      focusItem(parent.li);
      refreshFolder(parent);
    }
  } catch (e) {
    fail(e);
  }
}

$('delete-button').addEventListener('click', () => deleteNode(false));
$('delete-recursive-button').addEventListener('click', () => deleteNode(true));

$('create-button').addEventListener('click', () => {
  $('create-form').reset();
  $('create-error').hidden = $('create-ttl').disabled = true;
  $('create-path').value = join(view.path, '');
  $('create-dialog').showModal();
  $('create-path').focus();
});
$('create-mode').addEventListener('change', () => {
  $('create-ttl').disabled = !$('create-mode').value.startsWith('ttl');
});

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault(); // the dialog stays open until the server said yes
  const mode = $('create-mode').value;
  const body = {
    path: $('create-path').value.trim(),
    data: toB64(new TextEncoder().encode($('create-data').value)),
    mode,
    ttl_ms: mode.startsWith('ttl') ? Number($('create-ttl').value) : 0,
    make_parents: $('create-parents').checked,
  };
  try {
    const r = await api('node', { method: 'POST', body });
    $('create-dialog').close();
    notify(`Created ${r.path}.`, { kind: 'ok' });
    const parent = tree.get(parentOf(r.path));
    if (parent) {
      await refreshFolder(parent); // first: a leaf until now, the parent becomes a folder
      await setExpanded(parent, true);
    }
    await selectNode(r.path);
    focusItem(tree.get(r.path)?.li);
  } catch (err) {
    $('create-error').replaceChildren(h('strong', { class: 'code', text: err.code }), ` ${err.message}`);
    $('create-error').hidden = false;
  }
});

// Every dialog's Cancel (Escape closes them natively).
for (const b of document.querySelectorAll('dialog [data-close]')) {
  b.addEventListener('click', () => b.closest('dialog').close());
}

// ================================================================ live updates

// ONE watch subscription per page covers the open node (NODE) and the expanded folders
// (CHILDREN). It is read with fetch(), since EventSource cannot send the Authorization header.
// Each view (the node view, each folder) knows the zxid it is current up to: the one it was
// read at. Whenever the set of paths changes, or the stream breaks, a new subscription starts
// from the oldest of those, plus one: the server replays what came since, so nothing is
// missed, and events a view already reflects (zxid <= its own) are ignored. A view's zxid
// moves only when it is read again: events come in zxid order for each watch, but not across
// watches (a replay can bring a folder's zxid 13 before the node's 12), so one watch's events
// say nothing about another's.
const live = { ctrl: null, key: '', timer: 0, retry: 0, fresh: false, unwatchable: new Set() };

function watchSet() {
  // The node is watched once read (or known missing: its creation will show), not when it
  // cannot be read at all.
  const readable = view.node || view.error?.code === 'NO_NODE';
  const node = view.path && readable && !live.unwatchable.has(view.path) ? view.path : null;
  const children = [...tree.values()]
    .filter((r) => r.expanded && r.loaded && visible(r) && !live.unwatchable.has(r.path))
    .sort((a, b) => (b.expandedAt || 0) - (a.expandedAt || 0)) // the most recently opened, if too many
    .slice(0, MAX_WATCHED_FOLDERS).map((r) => r.path).sort();
  return { node, children };
}

/** The watched views that know their zxid: the folders, and the node view while it still
 *  shows the node watched (the selection can move on before a new subscription starts). */
function watchedViews(set) {
  const out = set.children.map((p) => tree.get(p)).filter(Boolean);
  if (set.node && view.path === set.node && view.zxid) out.push(view);
  return out;
}

// Changes come in bursts (opening a link expands several folders): one new subscription.
function scheduleWatch() {
  clearTimeout(live.timer);
  live.timer = setTimeout(() => subscribe(false), 60);
}

function setLive(s, detail = '') {
  $('live').dataset.state = s;
  const words = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', idle: 'Idle' };
  $('live-text').textContent = words[s];
  $('live').title = detail || { live: 'Changes on the server show here as they happen' }[s] || '';
}

function subscribe(force) {
  const set = watchSet();
  const key = JSON.stringify(set);
  if (!force && key === live.key && live.ctrl) return;
  live.key = key;
  live.ctrl?.abort();
  live.ctrl = null;
  if (!set.node && !set.children.length) return setLive('idle');
  live.ctrl = new AbortController();
  stream(live.ctrl, set);
}

async function stream(ctrl, set) {
  const known = watchedViews(set);
  const fresh = live.fresh || !known.length;
  const start = fresh ? undefined : Math.min(...known.map((v) => v.zxid)) + 1;
  // Moving to a new subscription while live is seamless: the indicator keeps saying so.
  if (live.retry) setLive('reconnecting');
  else if ($('live').dataset.state !== 'live') setLive('connecting');
  // A connection gone silent (no keepalive for 3 × 15 s) is given up and opened again.
  let watchdog = 0;
  const kick = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => ctrl.abort(), 45_000);
  };
  try {
    kick();
    const url = apiUrl('watch', { node: set.node ?? undefined, children: set.children, start_zxid: start });
    const res = await fetch(url, { headers: headers(false), signal: ctrl.signal, cache: 'no-store' });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    await readEvents(res.body, kick, (type, data) => {
      if (live.ctrl === ctrl) onWatchMessage(type, JSON.parse(data), set, fresh);
    });
    throw new Error('the stream ended');
  } catch (e) {
    if (live.ctrl !== ctrl) return; // replaced by a newer subscription: nothing went wrong
    if (e.code === 'COMPACTED') live.fresh = true;
    const delay = Math.min(10, 2 ** live.retry++) * 1000; // 1 s, 2 s, 4 s, 8 s, then 10 s
    setLive('reconnecting', `${e.message}; trying again in ${delay / 1000} s`);
    setTimeout(() => live.ctrl === ctrl && subscribe(true), delay);
  } finally {
    clearTimeout(watchdog);
  }
}

/** Server-Sent Events framing (the EventSource parsing rules) over a response body. */
async function readEvents(body, onBytes, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let cr = false; // a chunk ended in CR: the LF of that CRLF may open the next one
  let event = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onBytes();
    let text = (cr ? '\r' : '') + value;
    cr = text.endsWith('\r');
    if (cr) text = text.slice(0, -1);
    const lines = (buf + text.replace(/\r\n?/g, '\n')).split('\n');
    buf = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) onEvent(event || 'message', data.join('\n'));
        event = '';
        data = [];
      } else if (!line.startsWith(':')) { // ": keepalive" comments only feed the watchdog
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = v;
        else if (field === 'data') data.push(v);
      }
    }
  }
}

function onWatchMessage(type, msg, set, fresh) {
  if (type === 'ready') {
    live.retry = 0;
    live.fresh = false;
    setLive('live');
    // With start_zxid the replay follows `ready`, so views learn nothing from it. Without,
    // nothing is replayed: views older than msg.zxid may have missed changes, and are read
    // again.
    if (!fresh) return;
    for (const v of watchedViews(set)) if (v !== view && v.zxid < msg.zxid) refreshFolder(v);
    if (set.node === view.path && !view.editing && view.zxid < msg.zxid) loadNode(view.path);
  } else if (type === 'change') {
    onChange(msg, set);
  } else if (type === 'canceled') {
    // A watch ended. Without read access it would end again at once: that path is no longer
    // watched. Otherwise (history compacted, consumer too slow) start over without
    // start_zxid; `ready` then reads the views again.
    if (msg.code === 'NO_AUTH') live.unwatchable.add(msg.path);
    else live.fresh = true;
    // History compacted is routine (views idle through many writes): it is only a re-read.
    if (msg.code !== 'COMPACTED') {
      notify(`Live updates of ${msg.path} restarted: ${msg.reason || msg.code}`, { kind: 'info', code: msg.code });
    }
    subscribe(true);
  }
}

function onChange(msg, set) {
  const z = msg.zxid;
  const folders = new Set();
  let nodeEvent = null;
  for (const ev of msg.events) {
    const here = tree.get(ev.path);
    const parent = tree.get(parentOf(ev.path));
    if (ev.type === 'NODE_CHILDREN_CHANGED' && here?.loaded && z > here.zxid) folders.add(here);
    if (/NODE_(CREATED|DELETED)/.test(ev.type) && parent?.loaded && z > parent.zxid) folders.add(parent);
    if (here && ev.stat && ev.type !== 'NODE_DELETED') updateItem(here, ev.stat.num_children, z);
    if (ev.path === view.path && set.node === view.path && z > view.zxid) nodeEvent = ev;
  }
  if (nodeEvent) onNodeEvent(nodeEvent);
  for (const f of folders) refreshFolder(f);
}

function onNodeEvent(ev) {
  if (ev.type === 'NODE_DELETED') {
    view.gone = true;
    $('remote-change').hidden = true;
    renderNode();
  } else if (ev.type === 'NODE_CHILDREN_CHANGED') {
    if (ev.stat && view.node && !view.editing) {
      view.node = { ...view.node, stat: ev.stat };
      renderNode();
    }
  } else if (view.editing) {
    // The user's edit is kept; saving it will show both versions (409) rather than overwrite.
    $('remote-change').textContent = `Changed on the server${ev.stat ? ` (now version ${ev.stat.version})` : ''} `
      + 'since you started editing. Your edit is kept; saving it will show both versions.';
    $('remote-change').hidden = false;
  } else {
    loadNode(view.path);
  }
}

function refreshAll() {
  for (const rec of tree.values()) if (rec.expanded) refreshFolder(rec);
  if (view.path && !view.editing) loadNode(view.path);
  scheduleWatch();
}
$('tree-refresh').addEventListener('click', refreshAll);

// ================================================================ coordination

const coord = { timer: 0, busy: false, last: '' };

async function pollCoordination(force = false) {
  if (coord.busy || (document.hidden && !force)) return;
  coord.busy = true;
  try {
    const [locks, sessions] = await Promise.allSettled([api('locks'), api('sessions')]);
    // Drawn again only when something changed, so a text selection or scroll survives.
    const key = JSON.stringify([locks, sessions].map((r) => r.value ?? r.reason?.message));
    if (force || key !== coord.last) {
      coord.last = key;
      renderLocks(locks);
      renderSessions(sessions);
    }
    $('coord-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } finally {
    coord.busy = false;
  }
}

const decoded = (b64) => {
  const bytes = fromB64(b64);
  return bytes.length ? asText(bytes) ?? `0x${hexPairs(bytes).replace(/ /g, '')}` : '';
};

/** Holders first, then waiters in line order (as the server sends them). `data` is what the
 *  contender stored (kazoo-style clients put their identifier there; a leader its value). */
function entriesTable(lock) {
  let waiting = 0;
  const kinds = lock.kind === 'read_write'; // the only kind whose entries differ in kind
  const cols = ['State', kinds && 'Kind', 'Fencing token', 'Session', 'Owner', 'Data', 'Holds', 'Node'];
  const td = (field, text, cls) => h('td', { class: cls, 'data-field': field, text });
  const row = (e) => h('tr', { 'data-testid': 'lock-entry', 'data-granted': String(e.granted) },
    h('td', {}, h('span', {
      class: `badge ${e.granted ? 'badge-ok' : 'badge-quiet'}`, 'data-field': 'state',
      text: e.granted ? 'holder' : `waiting #${++waiting}`,
    })),
    kinds && td('kind', e.kind),
    td('token', e.granted ? e.token : '–', 'mono'),
    td('session', e.session_id, 'mono'),
    td('owner', e.owner || '–', 'mono small'),
    td('data', decoded(e.data) || '–'),
    td('holds', e.holds),
    h('td', { class: 'mono small', 'data-field': 'node', title: e.node, text: nameOf(e.node) }));
  return table(present(cols), lock.entries.map(row));
}

function renderLocks(result) {
  if (result.status === 'rejected') {
    for (const id of ['locks', 'elections']) {
      $(id).replaceChildren(h('p', { class: 'banner banner-error', text: result.reason.message }));
    }
    return;
  }
  const { locks, truncated } = result.value;
  const none = (text) => h('p', { class: 'muted', text });
  const plain = locks.filter((l) => !l.election).map((l) => {
    const taken = l.entries.filter((e) => e.granted).length;
    return h('article', { class: 'lock', 'data-lock-path': l.path },
      h('h3', {}, h('span', { class: 'mono', text: l.path }),
        h('span', { class: 'badge', text: l.kind.replace('_', '/') }),
        l.kind === 'semaphore' && h('span', { class: 'muted', text: `${taken} of ${l.max_leases} leases taken` })),
      entriesTable(l));
  });
  fill($('locks'), plain.length ? plain : none('No locks are held or waited for.'),
    truncated && none('There are more than are listed here.'));
  // An election is a mutex whose holder leads; its node's data is the leader's value.
  const elections = locks.filter((l) => l.election).map((l) => {
    const leader = l.entries.find((e) => e.granted);
    const muted = (text) => h('span', { class: 'muted', text });
    return h('article', { class: 'lock', 'data-election-path': l.path },
      h('h3', {}, h('span', { class: 'mono', text: l.path })),
      h('p', { class: 'leader', 'data-testid': 'election-leader' }, leader
        ? [muted('Leader '), h('strong', { class: 'mono', 'data-field': 'leader', text: leader.session_id }),
          muted(' with value '), h('code', { 'data-field': 'value', text: decoded(leader.data) || '(none)' }),
          muted(` · fencing token ${leader.token}`)]
        : muted('No leader right now.')),
      entriesTable(l));
  });
  fill($('elections'), elections.length ? elections : none('No elections are running.'));
}

function renderSessions(result) {
  const box = $('sessions');
  const e = result.reason;
  if (e?.status === 401 || e?.status === 403) {
    box.replaceChildren(h('div', { class: 'banner banner-info', 'data-testid': 'sessions-denied' },
      h('p', {}, h('strong', { text: 'Listing sessions needs ADMIN on /. ' }),
        'Log in as a user with ADMIN on / (or as the super user).'),
      h('p', { class: 'muted small', text: `The server said: ${e.message}` }),
      e.status === 401 && loginButton()));
  } else if (e) {
    box.replaceChildren(h('p', { class: 'banner banner-error', text: e.message }));
  } else {
    const row = (s) => h('tr', { 'data-session-id': s.id },
      h('td', { class: 'mono', text: s.id }), h('td', { text: `${s.timeout_ms / 1000} s` }),
      h('td', { text: s.ephemerals }));
    const list = result.value.sessions;
    box.replaceChildren(list.length
      ? table(['Session', 'Timeout', 'Ephemeral nodes'], list.map(row))
      : h('p', { class: 'muted', text: 'No open sessions.' }));
  }
}

$('coord-refresh').addEventListener('click', () => pollCoordination(true));

// ================================================================ cluster

// The request methods counted as writes and reads in the rate chart (api.md).
const WRITES = new Set(['Create', 'Delete', 'Set', 'Multi', 'SetAcl', 'Acquire', 'Release', 'Campaign', 'Proclaim',
  'Resign', 'SetQuota', 'DeleteQuota']);
const READS = new Set(['Get', 'Exists', 'GetChildren', 'GetAcl', 'Describe', 'Leader', 'GetQuota', 'ListQuotas',
  'CountDescendants', 'GetEphemerals', 'Sync']);
const cluster = { timer: 0, busy: false, prev: null, rates: [] };

/** The request counters of the Prometheus text, summed over codes: {writes, reads}. */
function countRequests(text) {
  const sum = { writes: 0, reads: 0 };
  for (const m of text.matchAll(/^grove_requests_total\{([^}]*)\}\s+(\S+)/gm)) {
    const method = /method="([^"]*)"/.exec(m[1])?.[1];
    if (WRITES.has(method)) sum.writes += Number(m[2]);
    else if (READS.has(method)) sum.reads += Number(m[2]);
  }
  return sum;
}

async function pollCluster() {
  if (cluster.busy || document.hidden) return;
  cluster.busy = true;
  try {
    const metrics = fetch(METRICS, { cache: 'no-store' })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`/metrics: HTTP ${r.status}`))));
    const [c, m] = await Promise.allSettled([api('cluster'), metrics]);
    if (c.status === 'fulfilled') renderCluster(c.value);
    else $('cluster-summary').replaceChildren(h('p', { class: 'banner banner-error', text: c.reason.message }));
    if (m.status === 'fulfilled') addSample(countRequests(m.value));
  } finally {
    cluster.busy = false;
  }
}

const roleOf = (m) => (m.is_leader ? 'leader' : m.role === 'observer' ? 'observer' : 'follower');

function renderCluster(c) {
  const health = c.ready && c.quorum ? 'healthy' : c.failure || (c.ready ? 'no quorum' : 'not ready');
  const badge = (text, ok, testid) =>
    h('span', { class: `badge ${ok ? 'badge-ok' : 'badge-warn'}`, 'data-testid': testid, text });
  const items = [
    ['Mode', badge(c.mode, ['leader', 'standalone', 'follower', 'observer'].includes(c.mode), 'cluster-mode')],
    ['Health', badge(health, health === 'healthy', 'cluster-health')],
    ['Server', c.server_id], ['Leader', c.leader_id || 'none'], ['Term', c.term],
    ['Zxid', `${c.zxid} (${fmtZxid(c.zxid)})`], ['Commit / applied', `${c.commit_index} / ${c.applied_index}`],
    ['Nodes', c.node_count], ['Sessions', c.session_count], ['Watches', c.watch_count], ['Version', c.version || '–'],
  ];
  $('cluster-summary').replaceChildren(...items.map(([k, v]) =>
    h('div', {}, h('dt', { text: k }), h('dd', {}, v instanceof Node ? v : String(v)))));
  $('members').tBodies[0].replaceChildren(...(c.members || []).map((m) => {
    const self = m.id === c.server_id;
    // Lag is known on the leader only; more than a few entries behind counts as lagging.
    const mHealth = self ? health : m.lag == null ? 'unknown' : m.lag <= 10 ? 'healthy' : 'lagging';
    const tone = { healthy: 'ok', unknown: 'unknown' }[mHealth] || 'bad';
    return h('tr', { 'data-member-id': m.id, class: self ? 'self' : null },
      h('td', {}, String(m.id), self && h('span', { class: 'badge badge-quiet', text: 'this server' })),
      h('td', {}, h('span', {
        class: `badge ${m.is_leader ? 'badge-ok' : ''}`, 'data-field': 'role', text: roleOf(m),
      })),
      h('td', { class: 'mono small', text: m.client_address || '–' }),
      h('td', { class: 'mono small', text: m.peer_address || '–' }),
      h('td', { class: 'num', text: m.matched_index ?? '–' }),
      h('td', { class: 'num', 'data-field': 'lag', text: m.lag ?? '–',
        title: m.lag == null ? 'Known on the leader only' : null }),
      h('td', { 'data-field': 'health' }, h('span', { class: `health health-${tone}`, text: mHealth })));
  }));
}

function addSample({ writes, reads }) {
  const t = performance.now();
  const prev = cluster.prev;
  cluster.prev = { t, writes, reads };
  // A counter that went down means the server restarted: no rate across that.
  if (!prev || writes < prev.writes || reads < prev.reads) return;
  const secs = (t - prev.t) / 1000;
  cluster.rates.push({ t, writes: (writes - prev.writes) / secs, reads: (reads - prev.reads) / secs });
  while (cluster.rates[0].t < t - CHART_WINDOW_MS) cluster.rates.shift();
  drawChart();
}

/** 1, 2 or 5 times a power of ten, at least v: the top of the chart's scale. */
const niceMax = (v) => [1, 2, 5, 10].map((k) => k * 10 ** Math.floor(Math.log10(Math.max(v, 1)))).find((x) => x >= v);

function drawChart() {
  const chart = $('rate-chart');
  // Drawn at its real width (a stretched viewBox would stretch the text too).
  const [W, H, L, R, T, B] = [Math.max(chart.clientWidth, 300), 200, 44, 10, 10, 24];
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const rates = cluster.rates;
  const last = rates[rates.length - 1];
  const now = last ? last.t : performance.now();
  const top = niceMax(Math.max(1, ...rates.flatMap((r) => [r.writes, r.reads])));
  const x = (t) => L + (1 - (now - t) / CHART_WINDOW_MS) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const label = (text, attrs) => Object.assign(svg('text', { class: 'axis', ...attrs }), { textContent: text });
  const parts = [chart.querySelector('title')];
  for (const v of [0, top / 2, top]) {
    parts.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    parts.push(label(String(+v.toFixed(1)), { x: L - 8, y: y(v) + 4, 'text-anchor': 'end' }));
  }
  for (const [s, anchor] of [[120, 'start'], [60, 'middle'], [0, 'end']]) {
    parts.push(label(s ? `${s} s ago` : 'now', { x: x(now - s * 1000), y: H - 6, 'text-anchor': anchor }));
  }
  for (const key of ['reads', 'writes']) {
    const points = rates.map((r) => `${x(r.t).toFixed(1)},${y(r[key]).toFixed(1)}`).join(' ');
    parts.push(svg('polyline', { class: `line line-${key}`, 'data-testid': `line-${key}`, points }));
    if (last) parts.push(svg('circle', { class: `dot dot-${key}`, cx: x(last.t), cy: y(last[key]), r: 3.5 }));
  }
  chart.replaceChildren(...parts);
  chart.dataset.samples = String(rates.length);
  chart.dataset.maxWrites = String(Math.max(0, ...rates.map((r) => r.writes)));
  $('rate-writes').textContent = last ? `${last.writes.toFixed(1)}/s` : '–';
  $('rate-reads').textContent = last ? `${last.reads.toFixed(1)}/s` : '–';
}

// ================================================================ start

window.addEventListener('hashchange', async () => {
  const path = fromHash();
  if (path && path !== view.path) await reveal(path).then(() => selectNode(path));
});

async function start() {
  await loadInfo().catch(fail);
  const root = makeItem('/', 1);
  root.li.tabIndex = 0;
  treeEl.append(root.li);
  await setExpanded(root, true);
  const path = fromHash() || '/';
  await reveal(path);
  await selectNode(path);
  new ResizeObserver(() => drawChart()).observe($('rate-chart'));
  document.body.dataset.ready = 'true'; // for the browser tests: the page has started
}

start();
