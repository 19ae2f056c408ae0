// Conversations: opening, history paging, optimistic sends with retry,
// uploads, typing notices and acknowledgements.
import { randomId, parseConv } from './util.js';
import { describeError } from './errors.js';
import { previewKind } from './files.js';
import { notify } from './notify.js';

const TYPING_EVERY = 3000;
const PAGE = 50;
const OFFLINE_FAIL_AFTER = 10000; // a send waiting for the connection shows "failed" after this

export class Chat {
  constructor(store, session, files) {
    this.store = store;
    this.session = session;
    this.files = files;
    this.ackTimers = new Map();
    this.lastTyping = new Map();
    this.atBottom = true; // set by the conversation view
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.store.current) this.scheduleAck(this.store.current);
    });
  }

  reset() {
    for (const t of this.ackTimers.values()) clearTimeout(t);
    this.ackTimers.clear();
    this.lastTyping.clear();
    this.files.clear();
  }

  target(convId) {
    const p = parseConv(convId, this.store.me);
    return p.kind === 'dm' ? { to: p.peer } : { room: p.room };
  }

  // ---- opening and paging --------------------------------------------------
  open(convId) {
    const store = this.store;
    const conv = store.conv(convId);
    conv.separatorSeq = conv.unread > 0 ? conv.read_seq : null;
    store.current = convId;
    store.panel = null;
    store.notify('current', 'panel', `msgs:${convId}`);
    this.loadLatest(convId);
    this.scheduleAck(convId);
    if (conv.kind === 'room') {
      this.session.actions.loadMembers(conv.room);
      this.session.actions.loadRoomTopic(conv.room);
    }
  }

  close() {
    this.store.current = null;
    this.store.notify('current');
  }

  async loadLatest(convId) {
    const conv = this.store.conv(convId);
    if (conv.loadedLatest || conv.loadingLatest) return;
    conv.loadingLatest = true;
    try {
      await this.session.whenReady();
      const r = await this.session.request('history', { conv: convId, limit: PAGE });
      this.store.addMessages(r.messages || []);
      conv.loadedLatest = true;
      this.store.notify(`msgs:${convId}`);
      this.scheduleAck(convId);
    } catch (err) {
      if (err.code !== 'disconnected' && err.code !== 'unauthenticated') console.warn('history failed', err);
    } finally {
      conv.loadingLatest = false;
    }
  }

  /** Load the page before the oldest message shown; resolves to true if more may exist. */
  async loadOlder(convId) {
    const conv = this.store.conv(convId);
    if (conv.loadingOlder || !conv.hasOlder()) return false;
    const low = conv.lowestContiguous();
    conv.loadingOlder = true;
    this.store.notify(`msgs:${convId}`);
    try {
      const req = { conv: convId, limit: PAGE };
      if (low) req.before = low;
      const r = await this.session.request('history', req);
      this.store.addMessages(r.messages || []);
      return conv.hasOlder();
    } catch (err) {
      if (err.code !== 'disconnected') this.store.showAlert(describeError(err, 'history'));
      return false;
    } finally {
      conv.loadingOlder = false;
      this.store.notify(`msgs:${convId}`);
    }
  }

  // ---- incoming ------------------------------------------------------------
  onMessage(m, live) {
    const store = this.store;
    const isNew = store.addMessage(m);
    const conv = store.conv(m.conv);
    if (!isNew) return;
    const reading = this.isReading(m.conv);
    if (reading) {
      this.markShown(m.conv); // on screen right now: never counted as unread (the ack follows)
    } else if (m.from !== store.me) {
      if (store.current === m.conv && conv.separatorSeq === null) conv.separatorSeq = m.seq - 1;
      if (live) this.notifyMessage(m);
    }
    this.scheduleAck(m.conv);
  }

  notifyMessage(m) {
    const p = parseConv(m.conv, this.store.me);
    const title = p.kind === 'dm' ? m.from : `${m.from} in ${p.room}`;
    const body = m.attachment ? `Sent a file: ${m.attachment.name}` : m.body;
    notify({ title, body, tag: m.conv, onOpen: () => this.open(m.conv) });
  }

  notifyEvent(title, body) {
    notify({ title, body, tag: title });
  }

  /** The user can see the newest messages of this conversation right now. */
  isReading(convId) {
    return this.store.screen === 'app' && this.store.current === convId && !this.store.panel
      && document.visibilityState === 'visible' && this.atBottom;
  }

  // ---- acknowledgements ----------------------------------------------------
  scheduleAck(convId) {
    if (this.ackTimers.has(convId)) return;
    this.ackTimers.set(convId, setTimeout(() => {
      this.ackTimers.delete(convId);
      this.ack(convId);
    }, 200));
  }

  /** The user has seen everything loaded in this conversation. */
  markShown(convId) {
    const conv = this.store.conv(convId);
    const max = conv.maxSeq();
    conv.readHere = Math.max(conv.readHere, max);
    this.store.markRead(convId, max);
    this.scheduleAck(convId);
  }

  /**
   * Tell the server what this device has: `read: true` up to what was shown
   * (even if the user has since looked away), and delivered up to the newest.
   */
  async ack(convId) {
    const store = this.store;
    const conv = store.convs.get(convId);
    if (!conv || !this.session.loggedIn) return;
    const max = conv.maxSeq();
    if (!max) return;
    if (this.isReading(convId)) conv.readHere = Math.max(conv.readHere, max);
    const frames = [];
    if (conv.readHere > conv.ackedRead) frames.push({ seq: conv.readHere, read: true });
    const covered = Math.max(conv.acked, frames.length ? conv.readHere : 0);
    if (max > covered) frames.push({ seq: max, read: false });
    for (const f of frames) {
      const prev = { acked: conv.acked, ackedRead: conv.ackedRead };
      conv.acked = Math.max(conv.acked, f.seq);
      if (f.read) {
        conv.ackedRead = f.seq;
        store.markRead(convId, f.seq);
      }
      this.session.request('msg.ack', { conv: convId, seq: f.seq, read: f.read }).catch(() => {
        // Sent again after the next message or the resync.
        conv.acked = Math.min(conv.acked, prev.acked);
        conv.ackedRead = Math.min(conv.ackedRead, prev.ackedRead);
      });
    }
  }

  /** The view scrolled to (or away from) the newest message. */
  setAtBottom(atBottom) {
    if (atBottom === this.atBottom) return;
    this.atBottom = atBottom;
    if (atBottom && this.store.current) this.scheduleAck(this.store.current);
  }

  // ---- typing ------------------------------------------------------------------
  typing(convId) {
    const now = Date.now();
    if (now - (this.lastTyping.get(convId) || 0) < TYPING_EVERY) return;
    this.lastTyping.set(convId, now);
    this.session.request('typing', this.target(convId)).catch(() => {});
  }

  // ---- sending -----------------------------------------------------------------
  send(convId, body) {
    const item = { client_id: `c-${randomId(12)}`, body, ts: Date.now(), status: 'pending' };
    this.lastTyping.delete(convId);
    this.store.addPending(convId, item);
    this.deliver(convId, item);
  }

  sendFile(convId, file) {
    const kind = previewKind(file.type);
    const item = {
      client_id: `c-${randomId(12)}`, body: '', ts: Date.now(), status: 'pending',
      upload: { file, name: file.name || 'file' }, progress: 0, size: file.size,
      fileName: file.name || 'file', mime: file.type || 'application/octet-stream',
      localUrl: kind !== 'file' ? URL.createObjectURL(file) : null,
    };
    this.store.addPending(convId, item);
    this.deliver(convId, item);
  }

  retry(convId, clientId) {
    const conv = this.store.convs.get(convId);
    const item = conv && conv.outbox.get(clientId);
    if (item) this.deliver(convId, item);
  }

  async deliver(convId, item) {
    if (item.sending) return;
    item.sending = true;
    item.autoRetry = false;
    clearTimeout(item.failTimer);
    const store = this.store;
    store.updatePending(convId, item.client_id, { status: 'pending', error: null });
    try {
      if (item.upload && !item.attachment) {
        item.failTimer = this.failIfOffline(convId, item);
        item.attachment = await this.files.upload(item.upload, (sent, size) => {
          clearTimeout(item.failTimer);
          store.updatePending(convId, item.client_id, { progress: size ? sent / size : 1, status: 'pending' });
          if (!this.session.loggedIn) item.failTimer = this.failIfOffline(convId, item);
        });
        clearTimeout(item.failTimer);
      }
      const frame = { ...this.target(convId), body: item.body, client_id: item.client_id };
      if (item.attachment) frame.attachment = item.attachment.file;
      const ok = await this.session.request('msg.send', frame);
      clearTimeout(item.failTimer);
      store.confirmPending(convId, item.client_id, ok);
      if (store.current === convId) this.scheduleAck(convId);
    } catch (err) {
      clearTimeout(item.failTimer);
      if (err.code === 'disconnected' || err.code === 'unauthenticated') {
        // Lost (or closing) connection: sent again, with the same client_id, after the resync.
        item.autoRetry = true;
        if (item.status !== 'failed') item.failTimer = this.failIfOffline(convId, item);
      } else {
        const text = describeError(err, item.upload && !item.attachment ? 'file.begin' : 'msg.send');
        store.updatePending(convId, item.client_id, { status: 'failed', error: text });
      }
    } finally {
      item.sending = false;
    }
  }

  failIfOffline(convId, item) {
    return setTimeout(() => {
      if (!this.session.loggedIn && item.status === 'pending') {
        this.store.updatePending(convId, item.client_id, { status: 'failed', error: 'Not sent: no connection. It will be sent when you are back online.' });
      }
    }, OFFLINE_FAIL_AFTER);
  }

  onDisconnected() {
    this.lastTyping.clear();
  }

  /** After a resync: send what is waiting (same client_id, so never twice) and re-ack. */
  onSynced() {
    for (const conv of this.store.convs.values()) {
      for (const item of conv.outbox.values()) {
        if (!item.sending && (item.autoRetry || item.status === 'pending')) this.deliver(conv.id, item);
      }
      if (conv.acked < conv.maxSeq() || conv.readHere > conv.ackedRead) this.scheduleAck(conv.id);
    }
    if (this.store.current) {
      const conv = this.store.conv(this.store.current);
      if (!conv.loadedLatest) this.loadLatest(conv.id);
      this.scheduleAck(conv.id);
    }
  }
}
