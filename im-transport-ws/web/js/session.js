// The session: logging in and out, staying logged in with the device token,
// resynchronising after each reconnect, and turning server events into state.
import { ProtocolError } from './protocol.js';
import { CLOSING_TEXT } from './errors.js';
import { deviceName, storage, parseConv } from './util.js';

const AUTH_KEY = 'im.session';
const FINAL_REASONS = new Set(['device_revoked', 'password_changed']);

export class Session {
  constructor(store, conn) {
    this.store = store;
    this.conn = conn;
    this.auth = storage.get(AUTH_KEY); // {username, token, device} or null
    if (this.auth && !(this.auth.username && this.auth.token)) this.auth = null;
    this.loggedIn = false;   // this connection is logged in
    this.synced = false;     // ... and the replay is over
    this.waiters = [];
    this.chat = null;        // set by main.js (message handling)
    this.actions = null;     // set by main.js
    this.wire();
  }

  // ---- readiness -----------------------------------------------------------
  /** Resolves once logged in and synced; rejects if the session ends. */
  whenReady() {
    if (this.loggedIn && this.synced) return Promise.resolve();
    if (!this.auth) return Promise.reject(new ProtocolError('unauthenticated', 'Not logged in.'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  settleWaiters(err) {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) (err ? w.reject(err) : w.resolve());
  }

  /** A request that needs a logged-in connection. */
  request(type, fields) {
    if (!this.loggedIn) return Promise.reject(new ProtocolError('disconnected', 'Not connected to the server.'));
    return this.conn.request(type, fields);
  }

  // ---- starting up ---------------------------------------------------------
  boot() {
    if (this.auth) {
      this.store.set('screen', 'app');
      this.conn.start(); // `hello` triggers the token login
    } else {
      this.store.set('screen', 'login');
    }
  }

  /** Connect (for the login screen) and wait for `hello`. */
  connectOnce(timeout = 10000) {
    if (this.conn.isOpen) return Promise.resolve();
    this.conn.start();
    return new Promise((resolve, reject) => {
      const done = (err) => {
        offHello();
        offClose();
        clearTimeout(timer);
        if (err) reject(err); else resolve();
      };
      const offHello = this.conn.on('hello', () => done());
      const offClose = this.conn.on('close', () => done(new ProtocolError('unreachable', 'Cannot reach the server.')));
      const timer = setTimeout(() => {
        this.conn.stop();
        done(new ProtocolError('unreachable', 'Cannot reach the server.'));
      }, timeout);
    });
  }

  /** Create an account; the user then logs in (the protocol's register does not). */
  async register(username, password) {
    await this.connectOnce();
    const ok = await this.conn.request('register', { username, password });
    return ok.user;
  }

  async passwordLogin(username, password) {
    await this.connectOnce();
    const device = deviceName();
    const ok = await this.conn.request('login', { username, password, device });
    this.auth = { username: ok.user, token: ok.token, device };
    storage.set(AUTH_KEY, this.auth);
    this.onLoggedIn(ok);
  }

  async tokenLogin() {
    const auth = this.auth;
    try {
      const ok = await this.conn.request('login', { username: auth.username, token: auth.token });
      if (this.auth !== auth) return;
      this.auth.token = ok.token;
      storage.set(AUTH_KEY, this.auth);
      this.onLoggedIn(ok);
    } catch (err) {
      if (err.code === 'invalid_credentials') this.end('expired');
      else if (err.code === 'account_suspended') this.end('account_suspended');
      else if (err.code === 'disconnected') { /* the reconnect logs in again */ }
      else this.conn.reconnectLater(); // rate_limited, unavailable, internal: back off and retry
    }
  }

  onLoggedIn(ok) {
    const store = this.store;
    if (store.me && store.me !== ok.user) store.reset();
    store.me = ok.user;
    this.loggedIn = true;
    this.synced = false;
    store.conn.synced = false;
    store.notify('me', 'conn');
    if (store.screen !== 'app') store.set('screen', 'app');
  }

  async logout() {
    try {
      await this.request('logout');
    } catch (err) {
      console.warn('logout request failed; forgetting the token locally', err);
    }
    this.end(null);
  }

  /** End the session and go back to the login screen, with an explanation. */
  end(reason) {
    this.auth = null;
    storage.set(AUTH_KEY, null);
    this.loggedIn = false;
    this.synced = false;
    this.settleWaiters(new ProtocolError('unauthenticated', 'Logged out.'));
    this.conn.stop();
    if (this.chat) this.chat.reset();
    this.store.reset();
    this.store.set('screen', 'login');
    this.store.showAlert(reason ? CLOSING_TEXT[reason] || reason : null);
  }

  // ---- connection events ---------------------------------------------------
  wire() {
    const { conn, store } = this;

    conn.on('status', (s) => {
      store.conn = { ...store.conn, state: s.state, retryAt: s.retryAt, reason: s.reason || store.conn.reason };
      store.notify('conn');
    });

    conn.on('hello', () => {
      store.conn.reason = null;
      store.notify('conn');
      if (this.auth && !this.loggedIn) this.tokenLogin();
    });

    conn.on('closing', (reason) => {
      store.conn.reason = reason;
      store.notify('conn');
      if (FINAL_REASONS.has(reason) && this.auth) this.end(reason);
    });

    conn.on('close', (info) => {
      const wasLoggedIn = this.loggedIn;
      this.loggedIn = false;
      this.synced = false;
      store.conn.synced = false;
      if (info.reason) store.conn.reason = info.reason;
      store.notify('conn');
      if (!this.auth) {
        conn.stop(); // on the login screen: connect again on the next attempt only
        return;
      }
      if (FINAL_REASONS.has(info.reason)) this.end(info.reason);
      else if (wasLoggedIn && this.chat) this.chat.onDisconnected();
    });

    addEventListener('online', () => { store.conn.browserOnline = true; store.notify('conn'); });
    addEventListener('offline', () => { store.conn.browserOnline = false; store.notify('conn'); });

    // Server events.
    conn.on('error', (f) => {
      if (f.code === 'account_suspended') this.end('account_suspended');
      else if (f.message) console.warn('server error', f.code, f.message);
    });
    conn.on('roster', (f) => store.setRoster(f.contacts || []));
    conn.on('gap', () => { /* history paging fills what the replay skipped */ });
    conn.on('msg', (f) => this.chat && this.chat.onMessage(f, this.synced));
    conn.on('synced', () => this.onSynced());
    conn.on('typing', (f) => { if (f.user !== store.me) store.setTyping(f.conv, f.user); });
    conn.on('receipt', (f) => {
      if (f.user === store.me) { if (f.read) store.markRead(f.conv, f.seq); }
      else if (f.read) store.applyPeerRead(f.conv, f.seq);
    });
    conn.on('presence', (f) => store.applyPresence(f));
    conn.on('contact.request', (f) => {
      store.upsertContact(f.from, { state: 'pending_in' });
      this.chat && this.chat.notifyEvent(`${f.from} wants to be your contact`, 'Open the app to accept or decline.');
    });
    conn.on('contact.added', (f) => store.upsertContact(f.user, { state: 'mutual', presence: store.contacts.get(f.user)?.presence || 'offline' }));
    conn.on('contact.removed', (f) => store.removeContact(f.user));
    conn.on('room.joined', (f) => {
      if (f.user !== store.me) { store.memberJoined(f.room, f.user); return; }
      store.addRoom(f.room); // joined here or on another device
      if (store.invites.delete(f.room)) store.notify('invites');
    });
    conn.on('room.left', (f) => {
      if (f.user !== store.me) { store.memberLeft(f.room, f.user); return; }
      if (store.current === `room:${f.room}`) {
        store.current = null;
        store.notify('current');
      }
      if (f.kicked && store.rooms.has(f.room)) store.showAlert(`You were removed from ${f.room}.`);
      store.removeRoom(f.room);
    });
    conn.on('room.invited', (f) => {
      store.invites.set(f.room, { room: f.room, from: f.from });
      store.notify('invites');
      this.chat && this.chat.notifyEvent(`${f.from} invited you to ${f.room}`, 'Open the app to join.');
    });
    conn.on('room.topic', (f) => {
      const room = store.rooms.get(f.room);
      if (!room) return;
      room.topic = f.topic;
      store.notify('rooms', 'members');
    });
  }

  async onSynced() {
    const store = this.store;
    this.synced = true;
    this.conn.resetBackoff(); // a connection that got this far was a good one
    store.conn.synced = true;
    store.conn.reason = null;
    store.notify('conn');
    this.settleWaiters(null);
    // After every (re)connect: counters, invitations, rooms, then anything unsent.
    await this.actions.refreshConvs();
    this.actions.loadInvites();
    this.actions.loadRoomTopics();
    this.actions.restorePresence();
    if (this.chat) this.chat.onSynced();
    const cur = store.current && parseConv(store.current, store.me);
    if (cur && cur.kind === 'room') this.actions.loadMembers(cur.room);
    this.actions.loadBlocks();
    if (store.panel === 'settings') this.actions.loadDevices();
  }
}
