// Small DOM helpers. Everything is built with DOM APIs: text always goes in as
// text nodes, never as HTML, and no inline style attribute is ever written
// (the page's Content-Security-Policy forbids them).

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * h('button', {class: 'x', onclick: fn, 'aria-label': 'Send'}, 'Send')
 * - `class` accepts a string or an array (falsy entries are skipped);
 * - `on<event>` attributes become event listeners;
 * - `dataset` is an object copied to data-* attributes;
 * - value, checked, disabled, hidden, selected, htmlFor are set as properties;
 * - `false`, `null` and `undefined` attributes are skipped; `true` sets "".
 * Children may be nodes, strings, numbers, arrays, or falsy (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'htmlFor', 'multiple', 'indeterminate']);

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, val] of Object.entries(attrs)) {
    if (val === undefined || val === null || val === false && !PROPS.has(key)) continue;
    if (key === 'style') throw new Error('inline styles are not allowed');
    if (key === 'class') {
      el.className = Array.isArray(val) ? val.filter(Boolean).join(' ') : val;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, val);
    } else if (key.startsWith('on') && typeof val === 'function') {
      el.addEventListener(key.slice(2), val);
    } else if (PROPS.has(key)) {
      el[key] = val;
    } else {
      el.setAttribute(key, val === true ? '' : String(val));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === '') continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Set text only when it changed (avoids needless layout and live-region noise). */
export function setText(el, text) {
  text = String(text ?? '');
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else {
    value = value === true ? '' : String(value);
    if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }
}

/**
 * Keyed list update that keeps existing nodes (and so keyboard focus and
 * media playback) in place: `items` in the wanted order, `keyOf(item)` a
 * unique string, `create(item)` builds a node, `update(node, item)` refreshes
 * it. Nodes are remembered on the parent.
 */
export function reconcile(parent, items, keyOf, create, update) {
  const old = parent._keyed || new Map();
  const next = new Map();
  let cursor = parent.firstChild;
  for (const item of items) {
    const key = keyOf(item);
    let node = old.get(key);
    if (!node) node = create(item);
    if (update) update(node, item);
    next.set(key, node);
    if (node === cursor) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(node, cursor);
    }
  }
  for (const [key, node] of old) {
    if (!next.has(key) && node.parentNode === parent) node.remove();
  }
  parent._keyed = next;
}

// ---- icons -----------------------------------------------------------------
// 24×24 stroke icons drawn from path data (our own, deliberately simple).
const ICONS = {
  send: ['M4 12l16-8-6 16-3-7z', 'M11 13l9-9'],
  attach: ['M20 11.5l-8.3 8.3a5 5 0 01-7-7l8.5-8.5a3.3 3.3 0 014.7 4.7l-8.5 8.5a1.7 1.7 0 01-2.4-2.4l7.8-7.8'],
  back: ['M15 5l-7 7 7 7'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  users: ['M9 11a4 4 0 100-8 4 4 0 000 8z', 'M2 21v-1a6 6 0 0112 0v1', 'M16 3.5a4 4 0 010 7', 'M18 14.5a6 6 0 014 5.5v1'],
  hash: ['M5 9h15', 'M4 15h15', 'M10 3L8 21', 'M16 3l-2 18'],
  settings: ['M12 15a3 3 0 100-6 3 3 0 000 6z', 'M19.4 15a1.7 1.7 0 00.3 1.8l.1.1a2 2 0 11-2.8 2.8l-.1-.1a1.7 1.7 0 00-1.8-.3 1.7 1.7 0 00-1 1.5V21a2 2 0 11-4 0v-.1a1.7 1.7 0 00-1.1-1.5 1.7 1.7 0 00-1.8.3l-.1.1a2 2 0 11-2.8-2.8l.1-.1a1.7 1.7 0 00.3-1.8 1.7 1.7 0 00-1.5-1H3a2 2 0 110-4h.1a1.7 1.7 0 001.5-1.1 1.7 1.7 0 00-.3-1.8l-.1-.1a2 2 0 112.8-2.8l.1.1a1.7 1.7 0 001.8.3H9a1.7 1.7 0 001-1.5V3a2 2 0 114 0v.1a1.7 1.7 0 001 1.5 1.7 1.7 0 001.8-.3l.1-.1a2 2 0 112.8 2.8l-.1.1a1.7 1.7 0 00-.3 1.8V9a1.7 1.7 0 001.5 1H21a2 2 0 110 4h-.1a1.7 1.7 0 00-1.5 1z'],
  moon: ['M21 12.8A9 9 0 1111.2 3a7 7 0 009.8 9.8z'],
  sun: ['M12 17a5 5 0 100-10 5 5 0 000 10z', 'M12 1v2', 'M12 21v2', 'M4.2 4.2l1.4 1.4', 'M18.4 18.4l1.4 1.4', 'M1 12h2', 'M21 12h2', 'M4.2 19.8l1.4-1.4', 'M18.4 5.6l1.4-1.4'],
  logout: ['M9 21H5a2 2 0 01-2-2V5a2 2 0 012-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  userMinus: ['M16 21v-2a4 4 0 00-4-4H6a4 4 0 00-4 4v2', 'M9 11a4 4 0 100-8 4 4 0 000 8z', 'M16 11h6'],
  block: ['M12 22a10 10 0 100-20 10 10 0 000 20z', 'M4.9 4.9l14.2 14.2'],
  leave: ['M14 4h4a2 2 0 012 2v12a2 2 0 01-2 2h-4', 'M9 8l-4 4 4 4', 'M5 12h11'],
  userPlus: ['M16 21v-2a4 4 0 00-4-4H6a4 4 0 00-4 4v2', 'M9 11a4 4 0 100-8 4 4 0 000 8z', 'M19 8v6', 'M22 11h-6'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  checks: ['M2 12.5l4.5 4.5L16 7.5', 'M12 16.5l.5.5L22 7.5'],
  clock: ['M12 21a9 9 0 100-18 9 9 0 000 18z', 'M12 7v5l3 2'],
  alert: ['M12 21a9 9 0 100-18 9 9 0 000 18z', 'M12 8v5', 'M12 16.5v.5'],
  file: ['M14 3H7a2 2 0 00-2 2v14a2 2 0 002 2h10a2 2 0 002-2V8z', 'M14 3v5h5'],
  download: ['M12 4v11', 'M7 10l5 5 5-5', 'M5 20h14'],
  search: ['M11 18a7 7 0 100-14 7 7 0 000 14z', 'M20 20l-4-4'],
  plus: ['M12 5v14', 'M5 12h14'],
  chat: ['M21 12a8 8 0 01-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1121 12z'],
  bell: ['M18 8a6 6 0 10-12 0c0 7-3 9-3 9h18s-3-2-3-9', 'M13.7 21a2 2 0 01-3.4 0'],
};

export function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', cls ? `icon ${cls}` : 'icon');
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

// ---- avatars ---------------------------------------------------------------
export function initials(name) {
  const parts = String(name).split(/[._\-\s]+/).filter(Boolean);
  if (parts.length >= 2) return (parts[0][0] + parts[1][0]).toUpperCase();
  return String(name).slice(0, 1).toUpperCase() || '?';
}

function hue(name) {
  let x = 0;
  for (const ch of String(name)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 8;
}

/** A round avatar with initials; `presence` adds a status dot. */
export function avatar(name, { presence, room = false, size = '' } = {}) {
  const el = h('span', { class: ['avatar', `av-${hue(name)}`, room && 'avatar-room', size && `avatar-${size}`], 'aria-hidden': 'true' },
    room ? '#' : initials(name));
  if (presence !== undefined) el.append(h('span', { class: `dot dot-${presence || 'offline'}` }));
  return el;
}

export function setPresenceDot(avatarEl, presence) {
  const dot = avatarEl.querySelector('.dot');
  if (dot) dot.className = `dot dot-${presence || 'offline'}`;
}

/** A labelled field: <label><span>Label</span><input></label> is avoided in
 * favour of explicit for/id so getByLabel finds exactly the control. */
let fieldSeq = 0;
export function field(label, input, { hint, hideLabel = false } = {}) {
  const id = input.id || `f${++fieldSeq}`;
  input.id = id;
  const lab = h('label', { class: hideLabel ? 'visually-hidden' : 'field-label', htmlFor: id }, label);
  return h('div', { class: 'field' }, lab, input, hint && h('p', { class: 'field-hint' }, hint));
}

/** Clear a field after an asynchronous success, unless the user typed something new meanwhile. */
export function clearIfUnchanged(input, submitted) {
  if (input.value === submitted) input.value = '';
}

/**
 * What a mounted screen registered (store subscriptions, timers, document
 * listeners), so it can all be undone when the screen goes away.
 */
export function createScope() {
  const disposers = [];
  return {
    subscribe(store, fn) { disposers.push(store.subscribe(fn)); },
    interval(fn, ms) {
      const id = setInterval(fn, ms);
      disposers.push(() => clearInterval(id));
    },
    listen(target, type, fn) {
      target.addEventListener(type, fn);
      disposers.push(() => target.removeEventListener(type, fn));
    },
    dispose() {
      while (disposers.length) disposers.pop()();
    },
  };
}
