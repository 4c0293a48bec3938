// Grove console, tree.js: the Tree tab. The node tree (a WAI-ARIA tree whose folders load their
// children lazily, a page at a time, with its keyboard), the open node's view (data, stat, ACL,
// quota), editing and its version conflicts, and the create and delete dialogs.

import {
  $, attempt, h, present, fill, table, parentOf, nameOf, join, isUnder, ancestors, toHash,
  fromB64, toB64, asText, hexPairs, hexDump, parseHex, showData, fmtZxid, fmtTime,
  api, notify, fail, state, loginButton,
} from './api.js';

const PAGE_SIZE = 100; // children per page (the server's default)

// live.js keeps the views shown here current, and subscribes again whenever they may have
// changed (a folder or the node read, opened or closed). It builds on this module, so app.js
// hands its scheduleWatch in (setScheduleWatch) rather than this module importing it.
let scheduleWatch = () => {};
export const setScheduleWatch = (f) => { scheduleWatch = f; };

// ================================================================ tree

// One record per node shown in the tree, by path. Once its children are loaded a record is
// also a view that live updates keep current: `zxid` says up to which zxid its listing is
// known current, so replayed watch events it already reflects are ignored.
export const tree = new Map();
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
export function updateItem(rec, numChildren, zxid, ephemeral = rec.ephemeral) {
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
export const visible = (rec) => [...ancestors(rec.path)].every((p) => tree.get(p)?.expanded);

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
export function refreshFolder(rec) {
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
export async function reveal(path) {
  for (const p of [...ancestors(path)].reverse()) {
    const rec = tree.get(p);
    if (!rec) return; // beyond the pages loaded: the node view opens all the same
    if (!rec.expanded) await setExpanded(rec, true);
  }
}

/** Starts the tree: the root item, opened. */
export async function openRoot() {
  const root = makeItem('/', 1);
  root.li.tabIndex = 0;
  treeEl.append(root.li);
  await setExpanded(root, true);
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
export const view = {
  path: null, node: null, zxid: 0, error: null, hex: false, editing: false, base: null, gone: false,
};
let viewSeq = 0;
const nodeEl = $('node');

export async function selectNode(path) {
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

export async function loadNode(path) {
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

export function renderNode() {
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

// ================================================================ refresh

export function refreshAll() {
  for (const rec of tree.values()) if (rec.expanded) refreshFolder(rec);
  if (view.path && !view.editing) loadNode(view.path);
  scheduleWatch();
}
$('tree-refresh').addEventListener('click', refreshAll);
