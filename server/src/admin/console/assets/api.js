// Grove console, api.js: the HTTP layer (the fetch wrapper, its error objects, the credentials
// kept in sessionStorage and sent as Basic auth) and the small helpers every module shares:
// building DOM elements, node paths and #links, bytes as base64, text and hex, the notices.

// ================================================================ basics

// URLs relative to this module rather than to the document, so the page also works behind a
// proxy that mounts it under another prefix.
const API = new URL('api/', import.meta.url);
const AUTH_KEY = 'grove.console.auth';

// What the modules share of the page's state: whether the server takes changes (app.js sets it
// from api/info) and the open tab.
export const state = { readOnly: false, tab: 'tab-tree' };

export const $ = (id) => document.getElementById(id);
export const attempt = (f, fallback = null) => { try { return f(); } catch { return fallback; } };

/** A DOM element: h('td', {class: 'num', text: '3'}, ...children). */
export function h(tag, props = {}, ...kids) {
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
export const present = (kids) => kids.flat().filter((kid) => kid != null && kid !== false && kid !== '');
export const fill = (el, ...kids) => el.replaceChildren(...present(kids));

/** An SVG element (createElement would make an HTML element that draws nothing). */
export function svg(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export const table = (cols, rows, cls = 'table compact') => h('div', { class: 'table-wrap' }, h('table', { class: cls },
  h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))), h('tbody', {}, rows)));

export const parentOf = (p) => (p === '/' ? null : p.slice(0, p.lastIndexOf('/')) || '/');
export const nameOf = (p) => (p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1));
export const join = (parent, name) => (parent === '/' ? `/${name}` : `${parent}/${name}`);
export const isUnder = (p, root) => p === root || root === '/' || p.startsWith(`${root}/`);
export function* ancestors(path) {
  for (let p = parentOf(path); p; p = parentOf(p)) yield p;
}
// A link to a node is #/a/b. Names may hold '#', '%' or '?', so each one is encoded.
export const toHash = (p) => `#${p.split('/').map(encodeURIComponent).join('/')}`;
export function fromHash() {
  const p = attempt(() => decodeURIComponent(location.hash.slice(1)), '');
  return p.startsWith('/') ? p : null;
}

// ================================================================ bytes

export const fromB64 = (b64) => Uint8Array.from(atob(b64 || ''), (c) => c.charCodeAt(0));
export function toB64(bytes) {
  let bin = ''; // in slices: fromCharCode(...a) overflows the stack on large arrays
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The bytes as text, or null when they are not UTF-8 (binary data). */
export const asText = (bytes) => attempt(() => utf8.decode(bytes));
export const hexPairs = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

/** A `hexdump -C` view (offset, 16 bytes, ASCII), bounded: data can be megabytes. */
export function hexDump(bytes, limit = 64 * 1024) {
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

export function parseHex(text) {
  const clean = text.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(clean)) throw new Error('Hex data must be pairs of hex digits (00-ff).');
  return Uint8Array.from(clean.match(/../g) || [], (x) => parseInt(x, 16));
}

/** Data as shown: JSON pretty-printed when it parses, other text as it is; text null for
 *  binary data (shown as hex). */
export function showData(bytes) {
  const text = asText(bytes);
  const json = text !== null && /^\s*[[{]/.test(text) ? attempt(() => JSON.stringify(JSON.parse(text), null, 2)) : null;
  return { text: json ?? text, json: json !== null };
}

export const fmtZxid = (z) => (z == null ? '–' : `0x${Number(z).toString(16)}`);
export const fmtTime = (ms) => (ms ? new Date(Number(ms)).toLocaleString(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
}) : '–');

// ================================================================ API

export class ApiError extends Error {
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

/** Keeps the credentials the requests carry from now on (null: none, anonymous); app.js then
 *  reads every view again. */
export function setCredentials(next) {
  auth = next;
  if (next) sessionStorage.setItem(AUTH_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(AUTH_KEY);
}
export const loggedIn = () => !!auth;

// The login dialog asks for them (app.js takes its answer); a view refused for the want of
// them offers its button.
export function openLogin() {
  $('login-form').reset();
  $('login-dialog').showModal();
}
export const loginButton = () =>
  h('button', { type: 'button', class: 'btn btn-small', text: 'Log in', onclick: openLogin });

export function headers(change) {
  const out = {};
  if (auth) out.Authorization = `Basic ${toB64(new TextEncoder().encode(`${auth.user}:${auth.password}`))}`;
  // Every non-GET call says JSON, body or not: the server refuses others, which is what
  // keeps cross-site forms out.
  if (change) out['Content-Type'] = 'application/json';
  return out;
}

export function apiUrl(path, query = {}) {
  const url = new URL(path, API);
  for (const [k, v] of Object.entries(query)) {
    for (const one of [].concat(v)) if (one != null) url.searchParams.append(k, String(one));
  }
  return url;
}

export async function api(path, { method = 'GET', query, body } = {}) {
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
export function notify(message, { kind = 'error', code = null } = {}) {
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
export const fail = (e) => notify(e.message, { code: e.code });
