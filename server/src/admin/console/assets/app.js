// Grove console: the page served by groved at /ui on its admin port.
//
// Plain ES module, no framework and no build step, so that it can be embedded in the binary
// as it is and read by anyone who has to change it. The HTTP contract it speaks is the
// console API under api/ (see the Rust side, server/src/admin/console). Three views share
// one page: the node tree with a node's details, coordination (locks, elections,
// sessions), and the cluster. Everything shown comes from the server as text (textContent,
// never innerHTML): node names and data are anyone's input.

// ---------------------------------------------------------------- basics

// URLs relative to this module rather than to the document, so the page keeps working
// behind a proxy that mounts it under another prefix.
const API = new URL('api/', import.meta.url);
const METRICS = new URL('../metrics', import.meta.url);
const AUTH_KEY = 'grove.console.auth';
const PAGE_SIZE = 100; // children per page, the server's default
const MAX_WATCHED_FOLDERS = 20; // the watch endpoint takes at most 20 `children` paths
const POLL_MS = 2000;
const CHART_WINDOW_MS = 120_000;

const $ = (id) => document.getElementById(id);

/** A DOM element: h('td', {class: 'num', text: '3'}, child...). */
function h(tag, props = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...kids.flat().filter((kid) => kid != null && kid !== false));
  return el;
}

/** An SVG element (createElement would make an HTML one that draws nothing). */
function svg(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

const parentOf = (p) => (p === '/' ? null : p.slice(0, p.lastIndexOf('/')) || '/');
const nameOf = (p) => (p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1));
const join = (parent, name) => (parent === '/' ? `/${name}` : `${parent}/${name}`);
const isUnder = (p, root) => p === root || root === '/' || p.startsWith(`${root}/`);
// Node names may hold '#', '%' or '?': the hash (#/a/b, a link to a node) encodes each name.
const toHash = (p) => `#${p.split('/').map(encodeURIComponent).join('/')}`;
const fromHash = () => {
  try {
    const p = decodeURIComponent(location.hash.slice(1));
    return p.startsWith('/') ? p : null;
  } catch {
    return null;
  }
};

// ---------------------------------------------------------------- bytes

function fromB64(b64) {
  const bin = atob(b64 || '');
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toB64(bytes) {
  let bin = '';
  // In slices: String.fromCharCode(...a) overflows the stack on large arrays.
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** The bytes as text, or null when they are not valid UTF-8 (binary data). */
function asText(bytes) {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/** A hexdump -C style view (offset, 16 bytes, ASCII), bounded: data can be megabytes. */
function hexDump(bytes, limit = 64 * 1024) {
  const lines = [];
  const n = Math.min(bytes.length, limit);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes not shown`);
  return lines.join('\n');
}

const hexPairs = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');

function parseHex(text) {
  const clean = text.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(clean)) throw new Error('Hex data must be pairs of hex digits (00-ff).');
  return Uint8Array.from(clean.match(/../g) || [], (x) => parseInt(x, 16));
}

/** How data is shown as text: JSON pretty-printed when it parses, else as it is. */
function showData(bytes) {
  const text = asText(bytes);
  if (text === null) return { text: null, json: false };
  try {
    const trimmed = text.trim();
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) return { text: JSON.stringify(JSON.parse(trimmed), null, 2), json: true };
  } catch {
    /* not JSON: shown as text */
  }
  return { text, json: false };
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || (status ? `HTTP_${status}` : 'UNAVAILABLE');
    this.body = body || {};
  }
}

// Credentials live in sessionStorage: they last as long as the tab and never reach other
// tabs, a cookie jar or the disk the way localStorage would.
let auth = (() => {
  try {
    return JSON.parse(sessionStorage.getItem(AUTH_KEY) || 'null');
  } catch {
    return null;
  }
})();

function headers(json) {
  const out = {};
  if (auth) out.Authorization = `Basic ${toB64(new TextEncoder().encode(`${auth.user}:${auth.password}`))}`;
  // Every non-GET call says JSON: the server refuses others (cross-site forms can't send it).
  if (json) out['Content-Type'] = 'application/json';
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
    res = await fetch(apiUrl(path, query), {
      method,
      headers: headers(method !== 'GET'),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, { error: `cannot reach the server (${e.message})`, code: 'UNAVAILABLE' });
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* a non-JSON answer (a proxy's error page): its text is the message */
  }
  if (!res.ok) throw new ApiError(res.status, json || { error: text.trim().slice(0, 200) || res.statusText });
  return json;
}

// ---------------------------------------------------------------- notices

/** Shows a message in the live region; errors stay until dismissed, others fade. */
function notify(message, { kind = 'error', code = null } = {}) {
  const box = $('notices');
  const item = h('div', { class: `notice notice-${kind}`, 'data-testid': `notice-${kind}`, 'data-code': code },
    code ? h('strong', { class: 'code', text: code }) : null,
    h('span', { text: message }),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss', text: '×', onclick: () => item.remove() }));
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => item.remove(), 5000);
}

const fail = (e) => notify(e.message, { code: e.code });

// ---------------------------------------------------------------- header: info, auth

const state = { info: null, readOnly: false, tab: 'tab-tree' };

async function loadInfo() {
  const info = await api('info');
  state.info = info;
  state.readOnly = info.mode === 'read-only';
  document.body.dataset.mode = info.mode;
  $('server-id').textContent = `server ${info.server_id}${info.version ? ` · v${info.version}` : ''}`;
  $('mode-badge').hidden = !state.readOnly;
  $('mode-badge').title = info.read_only_reason || '';
  $('mode-reason').hidden = !state.readOnly;
  $('mode-reason').textContent = info.read_only_reason || '';
  // CSS hides the change controls in read-only mode; disabling them as well keeps them out
  // of reach of the keyboard and of anything that ignores styles.
  for (const el of document.querySelectorAll('[data-change]')) el.disabled = state.readOnly;
  const ids = (info.identity || []).filter((id) => id !== 'world:anyone');
  // "digest:alice:<hash>" reads better as "alice".
  $('identity').textContent = ids.length ? ids.map((id) => id.replace(/^digest:([^:]*):.*$/, '$1')).join(', ') : 'anonymous';
  $('identity').title = `Your requests carry: ${(info.identity || []).join(', ')}`;
  $('login-button').hidden = !!auth;
  $('logout-button').hidden = !auth;
}

function setAuth(next) {
  auth = next;
  if (next) sessionStorage.setItem(AUTH_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(AUTH_KEY);
  // What may be read depends on who asks: reload every view under the new identity.
  live.unwatchable.clear();
  loadInfo().catch(fail);
  refreshAll();
  if (state.tab === 'tab-coord') pollCoordination();
}

function openLogin() {
  $('login-form').reset();
  $('login-dialog').showModal();
}

// ---------------------------------------------------------------- tabs

const tabs = [...document.querySelectorAll('[role=tab]')];

function selectTab(tab, focus = false) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
  state.tab = tab.id;
  // Only the open tab polls: a console left open costs the server one stream, no more.
  coord.timer = clearInterval(coord.timer);
  cluster.timer = clearInterval(cluster.timer);
  if (tab.id === 'tab-coord') {
    pollCoordination();
    coord.timer = setInterval(pollCoordination, POLL_MS);
  } else if (tab.id === 'tab-cluster') {
    pollCluster();
    cluster.timer = setInterval(pollCluster, POLL_MS);
  }
}

// ---------------------------------------------------------------- tree

// One record per node shown in the tree, by path. A record is also a "folder" view once its
// children are loaded: `zxid` says up to which zxid that list is known to be current, so
// replayed watch events it already reflects are ignored.
const tree = new Map();
const treeEl = $('tree');
let expandSeq = 0;

function makeItem(path, level) {
  const rec = { path, level, expanded: false, loaded: false, items: [], next: '', zxid: 0, numChildren: null, expandedAt: 0 };
  rec.count = h('span', { class: 'count', 'data-testid': 'child-count' });
  rec.name = h('span', { class: 'name', text: nameOf(path) });
  rec.row = h('div', { class: 'row' }, h('span', { class: 'twisty', 'aria-hidden': 'true', 'data-testid': 'twisty' }), rec.name, rec.count);
  rec.group = h('ul', { role: 'group' });
  rec.li = h('li', { role: 'treeitem', 'aria-level': level, 'aria-selected': String(path === view.path), 'aria-expanded': 'false', tabindex: -1, 'data-path': path }, rec.row, rec.group);
  rec.li.style.setProperty('--level', String(level - 1)); // CSSOM: allowed by the CSP
  rec.li.setAttribute('aria-label', nameOf(path));
  tree.set(path, rec);
  return rec;
}

/** Child counts and kind, from a children listing or a stat. */
function updateItem(rec, numChildren, ephemeral = rec.ephemeral) {
  rec.numChildren = numChildren;
  rec.ephemeral = ephemeral;
  rec.count.textContent = numChildren > 0 ? String(numChildren) : '';
  rec.count.title = numChildren > 0 ? `${numChildren} children` : '';
  rec.li.classList.toggle('ephemeral', !!ephemeral);
  // A node without children is a leaf: no aria-expanded, no twisty (it stays watched if the
  // user had it open, so children created later still show).
  if (numChildren > 0 || rec.path === '/') rec.li.setAttribute('aria-expanded', String(rec.expanded));
  else rec.li.removeAttribute('aria-expanded');
  rec.li.setAttribute('aria-label', `${nameOf(rec.path)}${numChildren > 0 ? `, ${numChildren} children` : ''}${ephemeral ? ', ephemeral' : ''}`);
}

const expandable = (rec) => rec.li.hasAttribute('aria-expanded');
const visible = (rec) => [...ancestors(rec.path)].every((p) => tree.get(p)?.expanded);

function* ancestors(path) {
  for (let p = parentOf(path); p; p = parentOf(p)) yield p;
}

/** Forgets a node and everything under it (deleted, or gone from a reloaded listing). */
function dropSubtree(path) {
  const rec = tree.get(path);
  const parent = tree.get(parentOf(path));
  if (rec && parent) parent.items = parent.items.filter((c) => c !== rec);
  rec?.li.remove();
  for (const p of [...tree.keys()]) if (isUnder(p, path)) tree.delete(p);
}

/** Puts a listing into a folder, reusing the records (and their open subfolders) of the
 *  names still there. `append`: a further page after the ones shown. */
function setChildren(rec, children, next, append) {
  const focused = document.activeElement;
  const seen = new Set();
  const items = append ? rec.items.slice() : [];
  for (const c of children) {
    const path = join(rec.path, c.name);
    seen.add(path);
    const child = tree.get(path) || makeItem(path, rec.level + 1);
    updateItem(child, c.num_children, c.ephemeral);
    items.push(child);
  }
  if (!append) for (const old of rec.items) if (!seen.has(old.path)) dropSubtree(old.path);
  rec.items = items;
  rec.next = next || '';
  rec.loaded = true;
  items.forEach((c, i) => {
    c.li.setAttribute('aria-posinset', String(i + 1));
    c.li.setAttribute('aria-setsize', String(Math.max(rec.numChildren ?? 0, items.length)));
  });
  const more = rec.next
    ? h('li', { role: 'none', class: 'more' }, h('button', {
      type: 'button', class: 'btn btn-small btn-quiet', 'data-testid': 'load-more',
      text: `Load more (${items.length} of ${rec.numChildren ?? '?'} shown)`, onclick: () => loadMore(rec),
    }))
    : null;
  rec.group.replaceChildren(...items.map((c) => c.li), ...(more ? [more] : []));
  // Moving an element out of the DOM and back blurs it: give focus back, or to this folder
  // if the focused item is gone.
  if (focused?.getAttribute?.('role') === 'treeitem' && document.activeElement !== focused) {
    (focused.isConnected ? focused : rec.li).focus({ preventScroll: true });
  }
  if (!treeEl.querySelector('[tabindex="0"]')) rec.li.tabIndex = 0;
}

/** Reloads a folder's listing (as many children as it shows now). Calls that arrive while
 *  one is running are folded into one more run after it. */
async function refreshFolder(rec) {
  if (rec.loading) {
    rec.again = true;
    return;
  }
  rec.loading = true;
  rec.li.setAttribute('aria-busy', 'true');
  try {
    do {
      rec.again = false;
      const limit = Math.min(Math.max(PAGE_SIZE, rec.items.length), 1000);
      const r = await api('children', { query: { path: rec.path, limit } });
      if (tree.get(rec.path) !== rec) return; // dropped meanwhile
      rec.zxid = Math.max(rec.zxid, r.zxid);
      updateItem(rec, r.stat?.num_children ?? r.children.length);
      setChildren(rec, r.children, r.next_page_token, false);
    } while (rec.again);
  } catch (e) {
    rec.loaded = false;
    notify(`Listing ${rec.path}: ${e.message}`, { code: e.code });
  } finally {
    rec.loading = false;
    rec.li.removeAttribute('aria-busy');
    scheduleWatch();
  }
}

async function loadMore(rec) {
  try {
    const r = await api('children', { query: { path: rec.path, limit: PAGE_SIZE, page_token: rec.next } });
    setChildren(rec, r.children, r.next_page_token, true);
  } catch (e) {
    fail(e);
  }
}

async function setExpanded(rec, open) {
  if (open && !expandable(rec)) return;
  rec.expanded = open;
  if (expandable(rec)) rec.li.setAttribute('aria-expanded', String(open));
  if (open) {
    rec.expandedAt = ++expandSeq;
    if (!rec.loaded) await refreshFolder(rec);
  }
  scheduleWatch();
}

function focusItem(li) {
  if (!li) return;
  for (const other of treeEl.querySelectorAll('[role=treeitem][tabindex="0"]')) other.tabIndex = -1;
  li.tabIndex = 0;
  li.focus();
}

// Items hidden in collapsed folders are display:none, so they have no offsetParent.
const visibleItems = () => [...treeEl.querySelectorAll('[role=treeitem]')].filter((li) => li.offsetParent !== null);

// Keyboard navigation as in the WAI-ARIA tree view pattern (single selection).
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
    case 'Enter':
      // Opens the node; on a folder also expands it (or, when already open, toggles it).
      if (expandable(rec) && (view.path === rec.path || !rec.expanded)) setExpanded(rec, !rec.expanded);
      selectNode(rec.path);
      break;
    case ' ': selectNode(rec.path); break;
    default: {
      // Type-ahead: the next visible item whose name starts with the typed character.
      if (e.key.length !== 1 || !/\S/.test(e.key)) return;
      const k = e.key.toLowerCase();
      const order = items.slice(i + 1).concat(items.slice(0, i + 1));
      focusItem(order.find((x) => nameOf(x.dataset.path).toLowerCase().startsWith(k)));
    }
  }
  e.preventDefault();
});

treeEl.addEventListener('click', (e) => {
  const li = e.target.closest('[role=treeitem]');
  if (!li || e.target.closest('.more')) return;
  const rec = tree.get(li.dataset.path);
  if (!rec) return;
  focusItem(li);
  if (e.target.closest('.twisty')) setExpanded(rec, !rec.expanded);
  else selectNode(rec.path);
});

treeEl.addEventListener('dblclick', (e) => {
  const rec = tree.get(e.target.closest('[role=treeitem]')?.dataset.path);
  if (rec && !e.target.closest('.twisty, .more')) setExpanded(rec, !rec.expanded);
});

/** Opens the folders down to `path` (for a link to a node: #/a/b). */
async function reveal(path) {
  for (const p of [...ancestors(path)].reverse()) {
    const rec = tree.get(p);
    if (!rec) return; // beyond the pages loaded: the node view still opens
    if (!rec.expanded) await setExpanded(rec, true);
  }
}

// ---------------------------------------------------------------- node view

// The open node. `zxid`: the node as shown is current up to that zxid. While `editing`, the
// editor's text is the user's and is never replaced by remote changes.
const view = { path: null, node: null, zxid: 0, error: null, hex: false, editing: false, base: null, gone: false, seq: 0 };
const nodeEl = $('node');

async function selectNode(path) {
  if (path === view.path) return;
  if (view.editing && editorDirty() && !(await confirmDialog({
    title: 'Discard your edit?', message: `Your unsaved edit of ${view.path} will be lost.`, ok: 'Discard',
  }))) return;
  // Until the answer comes the old content stays (no flicker), but it is no longer the
  // node's: nothing may act on it or count its zxid.
  Object.assign(view, { path, node: null, error: null, zxid: 0, gone: false });
  closeEditor();
  for (const li of treeEl.querySelectorAll('[aria-selected="true"]')) li.setAttribute('aria-selected', 'false');
  tree.get(path)?.li.setAttribute('aria-selected', 'true');
  history.replaceState(null, '', toHash(path));
  await loadNode(path);
}

async function loadNode(path) {
  const seq = ++view.seq; // answers to an older selection are dropped
  nodeEl.dataset.state = 'loading';
  nodeEl.setAttribute('aria-busy', 'true');
  try {
    const node = await api('node', { query: { path } });
    if (seq !== view.seq) return;
    Object.assign(view, { node, zxid: node.zxid, error: null, gone: false });
    const rec = tree.get(path);
    if (rec) updateItem(rec, node.stat.num_children, node.stat.ephemeral_owner !== '0x0');
  } catch (e) {
    if (seq !== view.seq) return;
    Object.assign(view, { node: null, zxid: 0, error: e, gone: false });
  }
  nodeEl.removeAttribute('aria-busy');
  renderNode();
  scheduleWatch();
}

function fmtZxid(z) {
  return z == null ? '–' : `0x${Number(z).toString(16)}`;
}

function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(Number(ms));
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const PERMS = { c: 'create', d: 'delete', r: 'read', w: 'write', a: 'admin' };

function renderNode() {
  const { node, error } = view;
  $('node-empty').hidden = !!view.path;
  $('node-body').hidden = !view.path;
  $('node-path').textContent = view.path || '';
  nodeEl.dataset.path = view.path || '';
  nodeEl.dataset.state = error ? 'error' : node ? 'loaded' : 'empty';
  nodeEl.dataset.version = node ? String(node.stat.version) : '';

  const err = $('node-error');
  err.hidden = !error;
  if (error) {
    const hint = error.status === 401 ? 'Log in as a user allowed to read it.'
      : error.status === 403 ? 'Your identity may not read it.' : '';
    err.replaceChildren(h('strong', { class: 'code', text: error.code }), h('span', { text: ` ${error.message} ` }),
      hint ? h('span', { class: 'hint', text: hint }) : null,
      error.status === 401 ? h('button', { type: 'button', class: 'btn btn-small', text: 'Log in', onclick: openLogin }) : null);
  }
  for (const id of ['data-card', 'stat', 'acl', 'quota']) $(id).closest('.card').hidden = !node;
  $('node-gone').hidden = !view.gone;
  $('node-mode').hidden = !node;

  const changeable = !!node && !state.readOnly && !view.gone;
  $('edit-button').disabled = !changeable || view.editing;
  $('create-button').disabled = !changeable || node?.stat.ephemeral_owner !== '0x0';
  $('delete-button').disabled = !changeable || view.path === '/';
  $('delete-recursive-button').disabled = !changeable || view.path === '/';
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
  pre.textContent = hex ? hexDump(bytes) : shown.text;
  pre.classList.toggle('empty-data', bytes.length === 0);
  if (bytes.length === 0) pre.textContent = '(no data)';
  $('data-info').textContent = `${bytes.length} bytes${shown.json ? ' · JSON' : ''}${shown.text === null ? ' · binary' : ''}`;
  pre.hidden = view.editing;

  for (const dd of $('stat').querySelectorAll('dd')) {
    const k = dd.dataset.stat;
    const v = st[k];
    dd.dataset.value = v ?? '';
    if (k.endsWith('zxid')) {
      dd.textContent = fmtZxid(v);
      dd.append(h('span', { class: 'muted', text: ` (${v})` }));
    } else if (k.endsWith('time')) {
      dd.textContent = fmtTime(v);
      dd.title = v ? new Date(Number(v)).toISOString() : '';
    } else if (k === 'ttl_ms') dd.textContent = st.mode.startsWith('ttl') ? `${v} ms` : '–';
    else dd.textContent = String(v ?? '–');
  }

  $('acl').replaceChildren(node.acl
    ? h('table', { class: 'table compact' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Scheme' }), h('th', { scope: 'col', text: 'Id' }), h('th', { scope: 'col', text: 'Permissions' }))),
      h('tbody', {}, node.acl.map((a) => h('tr', {},
        h('td', { text: a.scheme }), h('td', { class: 'mono', text: a.id }),
        h('td', { class: 'mono', title: [...a.perms].map((p) => PERMS[p] || p).join(', '), text: a.perms })))))
    : h('p', { class: 'muted', text: 'Not readable with your identity.' }));

  const q = node.quota;
  $('quota').replaceChildren(q
    ? h('div', { class: 'quota' },
      h('p', { class: 'muted', text: q.root === view.path ? 'Set on this node.' : `Set on ${q.root}.` }),
      meter('Nodes', q.nodes, q.max_nodes), meter('Bytes', q.bytes, q.max_bytes))
    : h('p', { class: 'muted', text: 'No quota applies.' }));
}

function meter(label, used, max) {
  return h('div', { class: 'meter-row' },
    h('span', { text: label }),
    max ? h('meter', { min: 0, max, value: used, high: max * 0.9, 'aria-label': `${label} used` }) : null,
    h('span', { class: 'mono', text: max ? `${used} / ${max}` : `${used} (no limit)` }));
}

$('view-text').addEventListener('click', () => { view.hex = false; renderNode(); });
$('view-hex').addEventListener('click', () => { view.hex = true; renderNode(); });

// ---------------------------------------------------------------- editing and conflicts

function openEditor() {
  if (!view.node) return;
  const bytes = fromB64(view.node.data);
  const text = asText(bytes);
  Object.assign(view, { editing: true, base: view.node.stat.version, original: view.node.data });
  $('editor-hex').checked = text === null; // binary data is edited as hex, not mangled
  $('editor-text').value = text ?? hexPairs(bytes);
  $('editor-base').textContent = `based on version ${view.base}`;
  $('editor').hidden = false;
  $('remote-change').hidden = true;
  renderNode();
  $('editor-text').focus();
}

function closeEditor() {
  Object.assign(view, { editing: false, base: null });
  $('editor').hidden = true;
  $('remote-change').hidden = true;
  $('conflict').hidden = true;
}

function editorBytes() {
  const text = $('editor-text').value;
  return $('editor-hex').checked ? parseHex(text) : new TextEncoder().encode(text);
}

function editorDirty() {
  try {
    return toB64(editorBytes()) !== view.original;
  } catch {
    return true;
  }
}

/** Saves the editor's bytes. `version`: the one the edit is based on, so a concurrent change
 *  is refused (409) and shown rather than overwritten; -1 only when the user chose that. */
async function save(version) {
  let bytes;
  try {
    bytes = editorBytes();
  } catch (e) {
    notify(e.message, { code: 'BAD_ARGUMENTS' });
    return;
  }
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
  const theirs = fromB64(current.data);
  const text = (b) => showData(b).text ?? hexDump(b);
  $('conflict-base').textContent = String(view.base);
  $('conflict-current').textContent = String(current.stat.version);
  $('conflict-mine').textContent = text(mine);
  $('conflict-theirs').textContent = text(theirs);
  $('conflict-text').textContent = `Someone changed ${current.path} (modified ${fmtTime(current.stat.mtime)}). Nothing was overwritten. Reload to take the server's version, or overwrite it with yours.`;
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

// ---------------------------------------------------------------- create and delete

/** A confirmation in a modal <dialog>; resolves true when confirmed. */
function confirmDialog({ title, message, ok = 'Delete' }) {
  const dlg = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-message').textContent = message;
  $('confirm-ok').textContent = ok;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true }));
}

async function deleteNode(recursive) {
  const path = view.path;
  if (!path || path === '/') return;
  const ok = await confirmDialog(recursive
    ? { title: 'Delete subtree?', message: `Delete ${path} and every node below it? This cannot be undone.`, ok: 'Delete subtree' }
    : { title: 'Delete node?', message: `Delete ${path}?`, ok: 'Delete' });
  if (!ok) return;
  try {
    // A plain delete names the version shown, so a node changed meanwhile is not deleted.
    const version = recursive ? -1 : view.node?.stat.version ?? -1;
    const r = await api('node', { method: 'DELETE', query: { path, version, recursive } });
    notify(`Deleted ${path}${r.deleted > 1 ? ` and ${r.deleted - 1} nodes below it` : ''}.`, { kind: 'ok' });
    const parent = tree.get(parentOf(path));
    dropSubtree(path);
    view.path = null; // so that selecting the parent is not a no-op
    await selectNode(parentOf(path));
    if (parent) {
      refreshFolder(parent);
      focusItem(parent.li);
    }
  } catch (e) {
    fail(e);
  }
}

$('delete-button').addEventListener('click', () => deleteNode(false));
$('delete-recursive-button').addEventListener('click', () => deleteNode(true));

$('create-button').addEventListener('click', () => {
  $('create-form').reset();
  $('create-error').hidden = true;
  $('create-ttl').disabled = true;
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
      await setExpanded(parent, true);
      await refreshFolder(parent);
    }
    await selectNode(r.path);
    tree.get(r.path)?.li.focus();
  } catch (err) {
    $('create-error').replaceChildren(h('strong', { class: 'code', text: err.code }), ` ${err.message}`);
    $('create-error').hidden = false;
  }
});

// Every dialog's "Cancel"; Escape closes them natively.
for (const b of document.querySelectorAll('dialog [data-close]')) b.addEventListener('click', () => b.closest('dialog').close());

$('login-form').addEventListener('submit', () => {
  setAuth({ user: $('login-user').value, password: $('login-password').value });
});
$('login-button').addEventListener('click', openLogin);
$('logout-button').addEventListener('click', () => setAuth(null));

// ---------------------------------------------------------------- live updates

// ONE watch subscription per page covers the open node (NODE) and the expanded folders
// shown (CHILDREN). It is read with fetch() rather than EventSource, which cannot send the
// Authorization header. Whenever the set of paths changes, or the stream breaks, a new one
// is opened from the oldest zxid up to which any watched view is known current, plus one:
// the server replays what happened since, so nothing is missed, and events a view already
// reflects (zxid <= its own) are ignored.
const live = { ctrl: null, key: '', timer: 0, retry: 0, fresh: false, unwatchable: new Set() };

function watchSet() {
  const nodeOk = view.path && (view.node || view.error?.code === 'NO_NODE') && !live.unwatchable.has(view.path);
  const folders = [...tree.values()]
    .filter((r) => r.expanded && r.loaded && visible(r) && !live.unwatchable.has(r.path))
    .sort((a, b) => b.expandedAt - a.expandedAt) // the most recently opened, if too many
    .slice(0, MAX_WATCHED_FOLDERS)
    .map((r) => r.path)
    .sort();
  return { node: nodeOk ? view.path : null, children: folders };
}

/** The watched views, each with the zxid it is current up to: the folders' records, and
 *  the node view while it still shows the node watched (the selection may move on before
 *  this subscription is replaced). */
function watchedViews(set) {
  const out = set.children.map((p) => tree.get(p)).filter(Boolean);
  if (set.node && view.path === set.node && view.zxid) out.push(view);
  return out;
}

// Changes of selection come in bursts (reveal() opens several folders): one resubscription.
function scheduleWatch() {
  clearTimeout(live.timer);
  live.timer = setTimeout(() => subscribe(false), 60);
}

function setLive(s, detail = '') {
  const el = $('live');
  el.dataset.state = s;
  $('live-text').textContent = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', idle: 'Idle' }[s];
  el.title = detail || { live: 'Changes on the server show here as they happen', idle: 'Nothing to watch' }[s] || '';
}

function subscribe(force) {
  const set = watchSet();
  const key = JSON.stringify(set);
  if (!force && key === live.key && live.ctrl) return;
  live.key = key;
  live.ctrl?.abort();
  live.ctrl = null;
  if (!set.node && !set.children.length) return setLive('idle');
  const ctrl = new AbortController();
  live.ctrl = ctrl;
  stream(ctrl, set);
}

async function stream(ctrl, set) {
  const known = watchedViews(set);
  const fresh = live.fresh || !known.length;
  const start = fresh ? null : Math.min(...known.map((v) => v.zxid)) + 1;
  // Switching subscriptions while live is seamless: the indicator keeps saying so.
  if (live.retry) setLive('reconnecting');
  else if ($('live').dataset.state !== 'live') setLive('connecting');
  // A connection that went silent (no keepalive for 3 × 15 s) is given up and reopened.
  let watchdog = 0;
  const kick = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => ctrl.abort(), 45_000);
  };
  try {
    kick();
    const url = apiUrl('watch', { node: set.node ?? undefined, children: set.children, start_zxid: start ?? undefined });
    const res = await fetch(url, { headers: headers(false), signal: ctrl.signal, cache: 'no-store' });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    await readEvents(res.body, kick, (type, data) => {
      if (live.ctrl === ctrl) onWatchMessage(type, JSON.parse(data), set, fresh);
    });
    throw new Error('the stream ended');
  } catch (e) {
    if (live.ctrl !== ctrl) return; // replaced by a newer subscription: nothing went wrong
    if (e.code === 'COMPACTED') live.fresh = true;
    live.retry++;
    const delay = Math.min(10, 2 ** (live.retry - 1)) * 1000; // 1 s, 2 s, 4 s, 8 s, 10 s...
    setLive('reconnecting', `${e.message}; retrying in ${delay / 1000} s`);
    setTimeout(() => { if (live.ctrl === ctrl) subscribe(true); }, delay);
  } finally {
    clearTimeout(watchdog);
  }
}

/** Server-Sent Events framing over a byte stream (the EventSource parsing rules). */
async function readEvents(body, onBytes, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let cr = false; // a chunk ended in CR: its LF may open the next chunk
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
    // Events after msg.zxid follow (the replay, if any, came before). Without start_zxid
    // nothing was replayed: views older than that may have missed changes: read them again.
    for (const v of watchedViews(set)) {
      if (!fresh) v.zxid = Math.max(v.zxid, msg.zxid);
      else if (v.zxid < msg.zxid && v !== view) refreshFolder(v);
    }
    if (fresh && set.node === view.path && !view.editing && view.zxid < msg.zxid) loadNode(view.path);
  } else if (type === 'change') {
    onChange(msg, set);
  } else if (type === 'canceled') {
    // A watch ended. Without read access it would end again at once: stop watching that path.
    // Otherwise (history compacted, too slow) start over fresh; ready then reloads the views.
    if (msg.code === 'NO_AUTH') live.unwatchable.add(msg.path);
    else live.fresh = true;
    notify(`Live updates of ${msg.path} restarted: ${msg.reason || msg.code}`, { kind: 'info', code: msg.code });
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
    if ((ev.type === 'NODE_CREATED' || ev.type === 'NODE_DELETED') && parent?.loaded && z > parent.zxid) folders.add(parent);
    if (here && ev.stat && ev.type !== 'NODE_DELETED') updateItem(here, ev.stat.num_children);
    if (ev.path === view.path && set.node === view.path && z > view.zxid) nodeEvent = ev;
  }
  if (nodeEvent) onNodeEvent(nodeEvent);
  for (const v of watchedViews(set)) v.zxid = Math.max(v.zxid, z);
  for (const f of folders) refreshFolder(f);
}

function onNodeEvent(ev) {
  if (ev.type === 'NODE_DELETED') {
    view.gone = true;
    $('remote-change').hidden = true;
    renderNode();
  } else if (ev.type === 'NODE_CHILDREN_CHANGED') {
    if (view.node && ev.stat && !view.editing) {
      view.node = { ...view.node, stat: ev.stat };
      renderNode();
    }
  } else if (view.editing) {
    // Keep the user's edit; saving will show both versions (409) rather than overwrite.
    const b = $('remote-change');
    b.textContent = `Changed on the server${ev.stat ? ` (now version ${ev.stat.version})` : ''} since you started editing. Your edit is kept; saving will show both versions.`;
    b.hidden = false;
  } else {
    loadNode(view.path);
  }
}

function refreshAll() {
  for (const rec of tree.values()) if (rec.expanded) refreshFolder(rec);
  if (view.path) {
    if (!view.editing) loadNode(view.path);
  }
  scheduleWatch();
}

$('tree-refresh').addEventListener('click', refreshAll);

// ---------------------------------------------------------------- coordination

const coord = { timer: 0, busy: false, last: '' };

async function pollCoordination() {
  if (coord.busy || document.hidden) return;
  coord.busy = true;
  try {
    const [locks, sessions] = await Promise.allSettled([api('locks'), api('sessions')]);
    // Re-render only when something changed, so a selection or scroll position survives.
    const key = JSON.stringify([locks, sessions].map((r) => r.value ?? r.reason?.message));
    if (key !== coord.last) {
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

function entriesTable(lock) {
  let waiting = 0;
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table compact' },
    h('thead', {}, h('tr', {}, ['State', 'Kind', 'Fencing token', 'Session', 'Owner', 'Holds', 'Node'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, lock.entries.map((e) => h('tr', { 'data-testid': 'lock-entry', 'data-granted': String(e.granted) },
      h('td', {}, h('span', { class: `badge ${e.granted ? 'badge-ok' : 'badge-quiet'}`, 'data-field': 'state', text: e.granted ? 'holder' : `waiting #${++waiting}` })),
      h('td', { 'data-field': 'kind', text: e.kind }),
      h('td', { class: 'mono', 'data-field': 'token', text: e.granted ? e.token : '–' }),
      h('td', { class: 'mono', 'data-field': 'session', text: e.session_id }),
      h('td', { 'data-field': 'owner', text: e.owner || '–' }),
      h('td', { class: 'num', 'data-field': 'holds', text: e.holds }),
      h('td', { class: 'mono small', 'data-field': 'node', text: e.node }))))));
}

function renderLocks(result) {
  if (result.status === 'rejected') {
    const err = h('p', { class: 'banner banner-error', text: result.reason.message });
    $('locks').replaceChildren(err);
    $('elections').replaceChildren(err.cloneNode(true));
    return;
  }
  const { locks, truncated } = result.value;
  const plain = locks.filter((l) => !l.election);
  const elections = locks.filter((l) => l.election);
  const more = truncated ? h('p', { class: 'muted', text: 'More exist than are listed here.' }) : null;
  $('locks').replaceChildren(...(plain.length ? plain.map((l) => h('article', { class: 'lock', 'data-lock-path': l.path },
    h('h3', {}, h('span', { class: 'mono', text: l.path }), ' ', h('span', { class: 'badge', text: l.kind.replace('_', '/') }),
      l.kind === 'semaphore' ? h('span', { class: 'muted', text: ` ${l.entries.filter((e) => e.granted).length} of ${l.max_leases} leases` }) : null),
    entriesTable(l))) : [h('p', { class: 'muted', text: 'No locks are held or waited for.' })]), more);
  $('elections').replaceChildren(...(elections.length ? elections.map((l) => {
    const leader = l.entries.find((e) => e.granted);
    return h('article', { class: 'lock', 'data-election-path': l.path },
      h('h3', { class: 'mono', text: l.path }),
      h('p', { class: 'leader', 'data-testid': 'election-leader' }, leader
        ? [h('span', { class: 'muted', text: 'Leader ' }), h('strong', { 'data-field': 'leader', text: leader.owner || leader.session_id }),
          h('span', { class: 'muted', text: ' · value ' }), h('code', { 'data-field': 'value', text: decoded(leader.data) || '(none)' }),
          h('span', { class: 'muted', text: ` · token ${leader.token}` })]
        : h('span', { class: 'muted', text: 'No leader right now.' })),
      entriesTable(l));
  }) : [h('p', { class: 'muted', text: 'No elections are running.' })]));
}

function renderSessions(result) {
  const box = $('sessions');
  if (result.status === 'rejected') {
    const e = result.reason;
    if (e.status === 401 || e.status === 403) {
      box.replaceChildren(h('div', { class: 'banner banner-info', 'data-testid': 'sessions-denied' },
        h('p', {}, h('strong', { text: 'Listing sessions needs ADMIN on /. ' }), 'Log in as a user with ADMIN on / (or the super user).'),
        h('p', { class: 'muted small', text: `The server said: ${e.message}` }),
        e.status === 401 ? h('button', { type: 'button', class: 'btn btn-small', text: 'Log in', onclick: openLogin }) : null));
    } else box.replaceChildren(h('p', { class: 'banner banner-error', text: e.message }));
    return;
  }
  const list = result.value.sessions;
  box.replaceChildren(list.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'table compact' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Session' }), h('th', { scope: 'col', class: 'num', text: 'Timeout' }), h('th', { scope: 'col', class: 'num', text: 'Ephemeral nodes' }))),
    h('tbody', {}, list.map((s) => h('tr', { 'data-session-id': s.id },
      h('td', { class: 'mono', text: s.id }), h('td', { class: 'num', text: `${s.timeout_ms / 1000} s` }), h('td', { class: 'num', text: s.ephemerals })))))) : h('p', { class: 'muted', text: 'No open sessions.' }));
}

$('coord-refresh').addEventListener('click', () => { coord.last = ''; pollCoordination(); });

// ---------------------------------------------------------------- cluster

const WRITES = new Set(['Create', 'Delete', 'Set', 'Multi', 'SetAcl', 'Acquire', 'Release', 'Campaign', 'Proclaim', 'Resign', 'SetQuota', 'DeleteQuota']);
const READS = new Set(['Get', 'Exists', 'GetChildren', 'GetAcl', 'Describe', 'Leader', 'GetQuota', 'ListQuotas', 'CountDescendants', 'GetEphemerals', 'Sync']);
const cluster = { timer: 0, busy: false, prev: null, rates: [] };

/** Request counters summed over codes: {writes, reads} from the Prometheus text. */
function countRequests(text) {
  let writes = 0;
  let reads = 0;
  for (const m of text.matchAll(/^grove_requests_total\{([^}]*)\}\s+(\S+)/gm)) {
    const method = /method="([^"]*)"/.exec(m[1])?.[1];
    const n = Number(m[2]);
    if (WRITES.has(method)) writes += n;
    else if (READS.has(method)) reads += n;
  }
  return { writes, reads };
}

async function pollCluster() {
  if (cluster.busy || document.hidden) return;
  cluster.busy = true;
  try {
    const [c, m] = await Promise.allSettled([api('cluster'), fetch(METRICS, { cache: 'no-store' }).then((r) => (r.ok ? r.text() : Promise.reject(new Error(`/metrics: HTTP ${r.status}`))))]);
    if (c.status === 'fulfilled') renderCluster(c.value);
    else $('cluster-summary').replaceChildren(h('p', { class: 'banner banner-error', text: c.reason.message }));
    if (m.status === 'fulfilled') addSample(countRequests(m.value));
  } finally {
    cluster.busy = false;
  }
}

function roleOf(m) {
  if (m.is_leader) return 'leader';
  return m.role === 'observer' ? 'observer' : 'follower';
}

function renderCluster(c) {
  const health = c.ready && c.quorum ? 'healthy' : c.failure || (c.ready ? 'no quorum' : 'not ready');
  const items = [
    ['Mode', h('span', { class: `badge ${c.mode === 'leader' || c.mode === 'standalone' ? 'badge-ok' : ''}`, 'data-testid': 'cluster-mode', text: c.mode })],
    ['Server', String(c.server_id)], ['Leader', c.leader_id ? String(c.leader_id) : 'none'],
    ['Term', String(c.term)], ['Zxid', `${c.zxid} (${fmtZxid(c.zxid)})`],
    ['Commit / applied', `${c.commit_index} / ${c.applied_index}`],
    ['Health', h('span', { class: `badge ${health === 'healthy' ? 'badge-ok' : 'badge-warn'}`, 'data-testid': 'cluster-health', text: health })],
    ['Nodes', String(c.node_count)], ['Sessions', String(c.session_count)], ['Watches', String(c.watch_count)], ['Version', c.version || '–'],
  ];
  $('cluster-summary').replaceChildren(...items.map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', {}, v))));
  $('members').tBodies[0].replaceChildren(...(c.members || []).map((m) => {
    const self = m.id === c.server_id;
    const mHealth = self ? health : m.lag == null ? 'unknown' : m.lag <= 10 ? 'healthy' : `lagging`;
    return h('tr', { 'data-member-id': m.id, class: self ? 'self' : null },
      h('td', {}, String(m.id), self ? h('span', { class: 'badge badge-quiet', text: 'this server' }) : null),
      h('td', {}, h('span', { class: `badge ${m.is_leader ? 'badge-ok' : ''}`, 'data-field': 'role', text: roleOf(m) })),
      h('td', { class: 'mono small', text: m.client_address || '–' }),
      h('td', { class: 'mono small', text: m.peer_address || '–' }),
      h('td', { class: 'num', text: m.matched_index ?? '–' }),
      h('td', { class: 'num', 'data-field': 'lag', text: m.lag ?? '–', title: m.lag == null ? 'Known on the leader only' : null }),
      h('td', { 'data-field': 'health', text: mHealth }));
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
  while (cluster.rates.length && cluster.rates[0].t < t - CHART_WINDOW_MS) cluster.rates.shift();
  drawChart();
}

const niceMax = (v) => {
  const p = 10 ** Math.floor(Math.log10(Math.max(v, 1)));
  return [1, 2, 5, 10].map((k) => k * p).find((x) => x >= v);
};

function drawChart() {
  const chart = $('rate-chart');
  const W = 640, H = 200, L = 44, R = 8, T = 10, B = 22;
  const rates = cluster.rates;
  const now = rates.length ? rates[rates.length - 1].t : performance.now();
  const top = niceMax(Math.max(1, ...rates.flatMap((r) => [r.writes, r.reads])));
  const x = (t) => L + ((t - (now - CHART_WINDOW_MS)) / CHART_WINDOW_MS) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const parts = [chart.querySelector('title')];
  for (const v of [0, top / 2, top]) {
    parts.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const label = svg('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = v >= 10 ? String(Math.round(v)) : String(+v.toFixed(1));
    parts.push(label);
  }
  for (const [sec, anchor] of [[120, 'start'], [60, 'middle'], [0, 'end']]) {
    const label = svg('text', { class: 'axis', x: x(now - sec * 1000), y: H - 6, 'text-anchor': anchor });
    label.textContent = sec ? `${sec} s ago` : 'now';
    parts.push(label);
  }
  for (const key of ['reads', 'writes']) {
    parts.push(svg('polyline', { class: `line line-${key}`, 'data-testid': `line-${key}`, points: rates.map((r) => `${x(r.t).toFixed(1)},${y(r[key]).toFixed(1)}`).join(' ') }));
    const last = rates[rates.length - 1];
    if (last) parts.push(svg('circle', { class: `dot dot-${key}`, cx: x(last.t), cy: y(last[key]), r: 3 }));
  }
  chart.replaceChildren(...parts);
  const last = rates[rates.length - 1];
  chart.dataset.samples = String(rates.length);
  chart.dataset.maxWrites = String(Math.max(0, ...rates.map((r) => r.writes)));
  $('rate-writes').textContent = last ? `${last.writes.toFixed(1)}/s` : '–';
  $('rate-reads').textContent = last ? `${last.reads.toFixed(1)}/s` : '–';
}

// ---------------------------------------------------------------- start

document.querySelector('[role=tablist]').addEventListener('keydown', (e) => {
  const i = tabs.indexOf(document.activeElement);
  const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (i < 0 || to === undefined) return;
  e.preventDefault();
  selectTab(tabs[(to + tabs.length) % tabs.length], true);
});
for (const t of tabs) t.addEventListener('click', () => selectTab(t));

window.addEventListener('hashchange', async () => {
  const path = fromHash();
  if (path && path !== view.path) {
    await reveal(path);
    selectNode(path);
  }
});

async function start() {
  try {
    await loadInfo();
  } catch (e) {
    fail(e);
  }
  const root = makeItem('/', 1);
  root.li.tabIndex = 0;
  treeEl.append(root.li);
  await setExpanded(root, true);
  const path = fromHash() || '/';
  await reveal(path);
  await selectNode(path);
  drawChart();
  document.body.dataset.ready = 'true'; // for the browser tests: the page has started
}

start();
