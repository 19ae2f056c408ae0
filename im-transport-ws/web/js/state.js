// Application state and the functions that change it. Views subscribe and are
// told which topics changed, batched once per microtask:
//   'screen' 'conn' 'me' 'contacts' 'convs' 'rooms' 'invites' 'current'
//   'panel' 'members' 'blocks' 'devices' 'alert' 'typing'
//   'msgs:<conv>' (messages or pending sends of one conversation changed)
import { parseConv } from './util.js';

export class Conv {
  constructor(id, me) {
    this.id = id;
    const p = parseConv(id, me);
    this.kind = p.kind;
    this.peer = p.peer || null;
    this.room = p.room || null;
    this.messages = new Map();   // seq -> msg frame (deduplicated by seq)
    this.outbox = new Map();     // client_id -> pending send
    this.sortedCache = null;
    this.last_seq = 0;
    this.read_seq = 0;
    this.unread = 0;
    this.peer_read_seq = 0;
    this.peer_delivered_seq = 0;  // our best knowledge of what reached the peer
    this.last_ts = 0;
    this.loadedLatest = false;    // the newest history page was fetched
    this.loadingOlder = false;
    this.typing = new Map();      // user -> expiry (ms)
    this.separatorSeq = null;     // "New messages" goes before this seq
    this.acked = 0;               // highest seq this device acknowledged
    this.ackedRead = 0;           // highest seq acknowledged as read
    this.readHere = 0;            // highest seq shown to the user on this device
  }

  /** Messages in seq order (cached until the next change). */
  sorted() {
    if (!this.sortedCache) this.sortedCache = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    return this.sortedCache;
  }

  maxSeq() {
    const s = this.sorted();
    return s.length ? s[s.length - 1].seq : 0;
  }

  /** Lowest seq of the unbroken run of loaded messages that ends at the newest one. */
  lowestContiguous() {
    const s = this.sorted();
    if (!s.length) return 0;
    let i = s.length - 1;
    while (i > 0 && s[i - 1].seq === s[i].seq - 1) i--;
    return s[i].seq;
  }

  /** The messages to show: the contiguous run ending at the newest one. */
  visible() {
    const s = this.sorted();
    const low = this.lowestContiguous();
    return low ? s.filter((m) => m.seq >= low) : [];
  }

  hasOlder() {
    const low = this.lowestContiguous();
    return low > 1 || (low === 0 && this.last_seq > 0 && !this.loadedLatest);
  }

  lastMessage() {
    const s = this.sorted();
    return s.length ? s[s.length - 1] : null;
  }
}

export class Store {
  constructor() {
    this.screen = 'boot';          // boot | login | app
    this.me = null;
    this.conn = { state: 'idle', retryAt: 0, synced: false, browserOnline: navigator.onLine, reason: null };
    this.contacts = new Map();     // user -> {user, state, presence, note, last_seen}
    this.blocks = null;            // string[] once loaded
    this.convs = new Map();        // conv id -> Conv
    this.rooms = new Map();        // name -> {name, topic, public, members: Map|null}
    this.invites = new Map();      // room -> {room, from}
    this.current = null;           // open conversation id
    this.panel = null;             // null | 'rooms' | 'settings'
    this.membersOpen = matchMedia('(min-width: 1100px)').matches;
    this.myPresence = { status: 'online', note: '' };
    this.devices = null;
    this.alert = null;             // {text, at}: an error shown with role=alert
    this.toast = null;             // {text, at}: a confirmation
    this.subscribers = new Set();
    this.dirty = new Set();
    this.flushQueued = false;
  }

  // ---- change notification -------------------------------------------------
  subscribe(fn) {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  notify(...topics) {
    for (const t of topics) this.dirty.add(t);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      const topics = this.dirty;
      this.dirty = new Set();
      for (const fn of [...this.subscribers]) {
        try { fn(topics); } catch (err) { console.error('view update failed', err); }
      }
    });
  }

  set(key, value, topic = key) {
    this[key] = value;
    this.notify(topic);
  }

  /** Forget everything about the account (log out, revoked device). */
  reset() {
    this.me = null;
    this.contacts = new Map();
    this.blocks = null;
    this.convs = new Map();
    this.rooms = new Map();
    this.invites = new Map();
    this.current = null;
    this.panel = null;
    this.devices = null;
    this.myPresence = { status: 'online', note: '' };
    this.notify('me', 'contacts', 'convs', 'rooms', 'invites', 'current', 'panel', 'blocks', 'devices');
  }

  /** Errors go to the alert (role=alert); kind 'info' to a quieter toast. */
  showAlert(text, kind = 'error') {
    if (kind === 'info') {
      this.toast = text ? { text, at: Date.now() } : null;
      this.notify('toast');
      return;
    }
    this.alert = text ? { text, at: Date.now() } : null;
    this.notify('alert');
    if (text && this.toast) {
      this.toast = null; // one message at a time
      this.notify('toast');
    }
  }

  // ---- contacts and presence -----------------------------------------------
  setRoster(list) {
    this.contacts = new Map(list.map((c) => [c.user, { ...c }]));
    for (const c of list) if (c.state === 'mutual' && c.presence && c.presence !== 'offline') this.peerReachable(c.user);
    this.notify('contacts');
  }

  upsertContact(user, patch) {
    const c = this.contacts.get(user) || { user };
    Object.assign(c, patch);
    this.contacts.set(user, c);
    this.notify('contacts');
  }

  removeContact(user) {
    if (this.contacts.delete(user)) this.notify('contacts');
  }

  applyPresence(f) {
    if (f.user === this.me) {
      this.myPresence = { status: f.status === 'offline' ? this.myPresence.status : f.status, note: f.note || '' };
      this.notify('me');
      return;
    }
    const c = this.contacts.get(f.user);
    if (!c || c.state !== 'mutual') return; // presence only concerns mutual contacts
    c.presence = f.status;
    c.note = f.note || '';
    if (f.status === 'offline') {
      if (f.last_seen) c.last_seen = f.last_seen;
    } else {
      delete c.last_seen;
      this.peerReachable(f.user);
    }
    this.contacts.set(f.user, c);
    this.notify('contacts');
  }

  /** The peer is online: everything we sent in the direct conversation reached them. */
  peerReachable(user) {
    for (const conv of this.convs.values()) {
      if (conv.peer === user && conv.peer_delivered_seq < conv.last_seq) {
        conv.peer_delivered_seq = conv.last_seq;
        this.notify(`msgs:${conv.id}`);
      }
    }
  }

  isPeerOnline(user) {
    const c = this.contacts.get(user);
    return !!c && c.state === 'mutual' && !!c.presence && c.presence !== 'offline';
  }

  // ---- conversations and messages ------------------------------------------
  conv(id) {
    let conv = this.convs.get(id);
    if (!conv) {
      conv = new Conv(id, this.me);
      this.convs.set(id, conv);
      if (conv.kind === 'room' && !this.rooms.has(conv.room)) {
        this.rooms.set(conv.room, { name: conv.room, topic: null, public: null, members: null });
        this.notify('rooms');
      }
    }
    return conv;
  }

  /** Add a message frame; returns false for a duplicate (same conv and seq). */
  addMessage(m) {
    const conv = this.conv(m.conv);
    if (conv.messages.has(m.seq)) return false;
    conv.messages.set(m.seq, m);
    conv.sortedCache = null;
    if (m.seq > conv.last_seq) {
      conv.last_seq = m.seq;
      if (m.from !== this.me && m.seq > conv.read_seq) conv.unread += 1;
    }
    if (m.ts > conv.last_ts) conv.last_ts = m.ts;
    if (m.from === this.me && m.client_id && conv.outbox.has(m.client_id)) {
      conv.outbox.delete(m.client_id); // our own send, replayed or carried from another device
    }
    if (conv.kind === 'dm') {
      if (m.from === conv.peer) {
        // The peer answered: they had everything before this.
        conv.peer_delivered_seq = Math.max(conv.peer_delivered_seq, m.seq);
      } else if (this.isPeerOnline(conv.peer)) {
        conv.peer_delivered_seq = Math.max(conv.peer_delivered_seq, m.seq);
      }
    }
    if (conv.typing.delete(m.from)) this.notify('typing');
    this.notify(`msgs:${conv.id}`, 'convs');
    return true;
  }

  addMessages(list) {
    for (const m of list) this.addMessage(m);
  }

  /** Apply one entry of the `convs` reply (server truth for counters). */
  applyConvInfo(info) {
    const conv = this.conv(info.conv);
    const localRead = conv.read_seq;
    conv.last_seq = Math.max(conv.last_seq, info.last_seq || 0);
    conv.read_seq = Math.max(conv.read_seq, info.read_seq || 0);
    conv.unread = info.unread || 0;
    // We read further than the server knew when it answered (an ack in flight).
    if (localRead > (info.read_seq || 0)) conv.unread = this.countUnread(conv);
    if (info.peer_read_seq) conv.peer_read_seq = Math.max(conv.peer_read_seq, info.peer_read_seq);
    if (conv.peer && this.isPeerOnline(conv.peer)) conv.peer_delivered_seq = conv.last_seq;
    if (info.last) {
      this.addMessage(info.last);
      conv.last_ts = Math.max(conv.last_ts, info.last.ts || 0);
    }
    this.notify(`msgs:${conv.id}`, 'convs');
  }

  /** Our read cursor moved (here or on another device). */
  markRead(convId, seq) {
    const conv = this.conv(convId);
    if (seq <= conv.read_seq) return;
    conv.read_seq = seq;
    conv.unread = this.countUnread(conv);
    this.notify('convs', `msgs:${convId}`);
  }

  countUnread(conv) {
    if (conv.read_seq >= conv.last_seq) return 0;
    let n = 0;
    let loaded = 0;
    for (const m of conv.messages.values()) {
      if (m.seq > conv.read_seq && m.seq <= conv.last_seq) {
        loaded++;
        if (m.from !== this.me) n++;
      }
    }
    if (loaded === conv.last_seq - conv.read_seq) return n; // every message after the cursor is here
    // Some are not loaded: an upper bound that never goes up (a `convs` refresh corrects it).
    return Math.min(conv.unread, conv.last_seq - conv.read_seq);
  }

  applyPeerRead(convId, seq) {
    const conv = this.conv(convId);
    if (seq <= conv.peer_read_seq) return;
    conv.peer_read_seq = seq;
    conv.peer_delivered_seq = Math.max(conv.peer_delivered_seq, seq);
    this.notify(`msgs:${convId}`);
  }

  totalUnread() {
    let n = 0;
    for (const conv of this.convs.values()) {
      if (conv.kind === 'room' && !this.rooms.has(conv.room)) continue;
      n += conv.unread;
    }
    return n;
  }

  // ---- pending sends ---------------------------------------------------------
  addPending(convId, item) {
    const conv = this.conv(convId);
    conv.outbox.set(item.client_id, item);
    conv.last_ts = Math.max(conv.last_ts, item.ts);
    this.notify(`msgs:${convId}`, 'convs');
  }

  updatePending(convId, clientId, patch) {
    const conv = this.convs.get(convId);
    const item = conv && conv.outbox.get(clientId);
    if (!item) return null;
    Object.assign(item, patch);
    this.notify(`msgs:${convId}`);
    return item;
  }

  /** The server stored a pending send: it becomes a real message. */
  confirmPending(convId, clientId, ok) {
    const conv = this.conv(convId);
    const item = conv.outbox.get(clientId);
    conv.outbox.delete(clientId);
    const msg = {
      type: 'msg', conv: ok.conv || convId, seq: ok.seq, ts: ok.ts, from: this.me,
      body: item ? item.body : '', client_id: clientId,
    };
    if (item && item.attachment) msg.attachment = item.attachment;
    if (item && item.localUrl) msg.localUrl = item.localUrl;
    if (!this.addMessage(msg)) this.notify(`msgs:${convId}`);
    // Sending moves our read cursor when it stood just before the message.
    if (ok.seq === conv.read_seq + 1) conv.read_seq = ok.seq;
    conv.unread = this.countUnread(conv);
    this.notify('convs');
  }

  // ---- typing ------------------------------------------------------------------
  setTyping(convId, user, ms = 5000) {
    const conv = this.conv(convId);
    conv.typing.set(user, Date.now() + ms);
    this.notify('typing');
    setTimeout(() => {
      if ((conv.typing.get(user) || 0) <= Date.now()) {
        conv.typing.delete(user);
        this.notify('typing');
      }
    }, ms + 50);
  }

  // ---- rooms -------------------------------------------------------------------
  room(name) {
    let room = this.rooms.get(name);
    if (!room) {
      room = { name, topic: null, public: null, members: null };
      this.rooms.set(name, room);
    }
    return room;
  }

  addRoom(name, patch = {}) {
    Object.assign(this.room(name), patch);
    this.conv(`room:${name}`);
    this.notify('rooms', 'convs');
  }

  removeRoom(name) {
    this.rooms.delete(name);
    this.convs.delete(`room:${name}`);
    this.notify('rooms', 'convs');
  }

  setMembers(name, list) {
    const room = this.rooms.get(name);
    if (!room) return;
    room.members = new Map(list.map((m) => [m.user, { ...m }]));
    this.notify('members');
  }

  memberJoined(name, user) {
    const room = this.rooms.get(name);
    if (!room || !room.members) return;
    if (!room.members.has(user)) room.members.set(user, { user, role: 'member', online: true });
    else room.members.get(user).online = true;
    this.notify('members');
  }

  memberLeft(name, user) {
    const room = this.rooms.get(name);
    if (!room || !room.members) return;
    if (room.members.delete(user)) this.notify('members');
  }

  isRoomOwner(name) {
    const room = this.rooms.get(name);
    const me = room && room.members && room.members.get(this.me);
    return !!me && me.role === 'owner';
  }
}
