// Grove console, live.js: live updates. One watch subscription for the open node and the
// expanded folders, read with fetch() and a Server-Sent Events parser over its ReadableStream,
// resumed by zxid and reconnected with backoff; its events applied to the tree and the node
// view; and the header's live indicator.

import { $, parentOf, apiUrl, headers, ApiError, notify } from './api.js';
import { tree, view, visible, updateItem, refreshFolder, loadNode, renderNode } from './tree.js';

const MAX_WATCHED_FOLDERS = 20; // the watch endpoint takes at most 20 `children` paths

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
export const live = { ctrl: null, key: '', timer: 0, retry: 0, fresh: false, unwatchable: new Set() };

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
export function scheduleWatch() {
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
