// Pure helpers: names, conversation ids, time formatting, local storage.

/** Normalise a user or room name the way the server does (NFKC, lowercase). */
export function normName(name) {
  return String(name).trim().normalize('NFKC').toLowerCase();
}

export function dmConv(a, b) {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** {kind:'dm', peer} or {kind:'room', room} for a conversation id. */
export function parseConv(conv, me) {
  if (conv.startsWith('room:')) return { kind: 'room', room: conv.slice(5) };
  const [, a, b] = conv.split(':');
  return { kind: 'dm', peer: a === me ? b : a };
}

export function randomId(len = 10) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(len));
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

// ---- time ------------------------------------------------------------------
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

function startOfDay(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function dayKey(ts) {
  return startOfDay(ts);
}

export function formatTime(ts) {
  return timeFmt.format(ts);
}

export function formatFull(ts) {
  return fullFmt.format(ts);
}

/** "Today", "Yesterday", "Monday" (this week) or "3 March 2025". */
export function formatDay(ts, now = Date.now()) {
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return weekdayFmt.format(ts);
  return dateFmt.format(ts);
}

/** Short stamp for lists: "14:02", "Yesterday", "Mon", "3 Mar". */
export function formatShort(ts, now = Date.now()) {
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / 86400000);
  if (days === 0) return timeFmt.format(ts);
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return weekdayFmt.format(ts).slice(0, 3);
  return shortDateFmt.format(ts);
}

/** "last seen just now", "last seen 5 min ago", "last seen yesterday at 09:30"… */
export function formatLastSeen(ts, now = Date.now()) {
  const diff = Math.max(0, now - ts);
  if (diff < 60000) return 'last seen just now';
  if (diff < 3600000) return `last seen ${Math.floor(diff / 60000)} min ago`;
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / 86400000);
  if (days === 0) return `last seen today at ${timeFmt.format(ts)}`;
  if (days === 1) return `last seen yesterday at ${timeFmt.format(ts)}`;
  return `last seen ${shortDateFmt.format(ts)}`;
}

export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Text that describes a contact's presence, as shown in lists and headers. */
export function presenceText(contact, now = Date.now()) {
  if (!contact) return 'offline';
  if (contact.state === 'pending_in') return 'wants to be your contact';
  if (contact.state === 'pending_out') return 'request sent';
  if (contact.state === 'none') return 'not a contact';
  const p = contact.presence || 'offline';
  if (p === 'offline') return contact.last_seen ? formatLastSeen(contact.last_seen, now) : 'offline';
  return p;
}

// ---- storage ---------------------------------------------------------------
export const storage = {
  get(key) {
    try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value === null || value === undefined) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch { /* private mode or full: the app still works for this tab */ }
  },
};

/** This browser's device name, generated once: web-<6 random chars>. */
export function deviceName() {
  let name = storage.get('im.device');
  if (typeof name !== 'string' || !name) {
    name = `web-${randomId(6)}`;
    storage.set('im.device', name);
  }
  return name;
}
