// Grove console, status.js: the Coordination tab (locks, semaphores, elections and sessions)
// and the Cluster tab (this server, the members, and the rate chart of write and read requests
// from /metrics), each polled while it is the open tab.

import {
  $, h, present, fill, svg, table, nameOf, fromB64, asText, hexPairs, fmtZxid, api, loginButton,
} from './api.js';

// Relative to this module rather than to the document, like API in api.js (a proxy's prefix).
const METRICS = new URL('../metrics', import.meta.url);
const POLL_MS = 2000;
const CHART_WINDOW_MS = 120_000;

/** Starts polling the data of tab `id` (the Tree tab has none to poll), stopping the other's. */
export function pollTab(id) {
  // Only the open tab polls: a console left open costs the server one watch stream.
  clearInterval(coord.timer);
  clearInterval(cluster.timer);
  if (id === 'tab-coord') {
    pollCoordination(true);
    coord.timer = setInterval(pollCoordination, POLL_MS);
  } else if (id === 'tab-cluster') {
    cluster.prev = null; // no rate across the time the tab was closed: a gap, not an average
    pollCluster();
    cluster.timer = setInterval(pollCluster, POLL_MS);
  }
}

// ================================================================ coordination

const coord = { timer: 0, busy: false, last: '' };

export async function pollCoordination(force = false) {
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

export function drawChart() {
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
