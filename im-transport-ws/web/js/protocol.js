// The protocol client: one WebSocket to /ws, replies matched to requests by
// `id`, server events handed to listeners, `ping` when idle, and automatic
// reconnection with exponential back-off (1 s doubling to 30 s, with jitter).
//
// It knows nothing about logging in: after each (re)connection it emits
// `hello`, and the session layer logs in.

const PING_EVERY = 30000;     // send a ping after this long without sending
const PONG_TIMEOUT = 20000;   // give up on a connection that stays silent
const CONNECT_TIMEOUT = 15000;
const BACKOFF_MIN = 1000;
const BACKOFF_MAX = 30000;

export class ProtocolError extends Error {
  constructor(code, message, frame) {
    super(message || code);
    this.code = code;
    this.frame = frame;
  }
}

export function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/ws`;
}

export class Connection {
  constructor(url = wsUrl()) {
    this.url = url;
    this.ws = null;
    this.state = 'idle';        // idle | connecting | open | waiting | stopped
    this.nextId = 1;
    this.pending = new Map();   // id -> {resolve, reject, type}
    this.listeners = new Map(); // event -> Set<fn>
    this.attempt = 0;
    this.retryAt = 0;
    this.retryTimer = null;
    this.lastSent = 0;
    this.pingTimer = null;
    this.closingReason = null;
    this.hello = null;

    addEventListener('online', () => { if (this.state === 'waiting') this.reconnectNow(); });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.state === 'waiting' && this.attempt > 2) this.reconnectNow();
    });
  }

  // ---- events --------------------------------------------------------------
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.listeners.get(event).delete(fn);
  }

  emit(event, data) {
    for (const fn of [...(this.listeners.get(event) || [])]) {
      try { fn(data); } catch (err) { console.error(`listener for ${event} failed`, err); }
    }
  }

  setState(state) {
    this.state = state;
    this.emit('status', { state, retryAt: this.retryAt, attempt: this.attempt, reason: this.closingReason });
  }

  get isOpen() {
    return this.state === 'open';
  }

  // ---- lifecycle -----------------------------------------------------------
  /** Connect, and keep reconnecting until stop(). */
  start() {
    if (this.state === 'connecting' || this.state === 'open') return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  open() {
    this.closingReason = null;
    this.hello = null;
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error(err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    const connectTimer = setTimeout(() => { if (this.ws === ws && !this.hello) this.drop(ws); }, CONNECT_TIMEOUT);
    ws.onmessage = (ev) => { if (this.ws === ws) this.onMessage(ev.data); };
    ws.onclose = (ev) => {
      clearTimeout(connectTimer);
      if (this.ws === ws) this.onClose(ev);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  /** Close for good (logout, revoked device…): no reconnection. */
  stop() {
    clearTimeout(this.retryTimer);
    this.stopPing();
    const ws = this.ws;
    this.ws = null;
    this.failPending('disconnected');
    this.attempt = 0;
    this.setState('stopped');
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }

  /** Skip the back-off wait (the "Reconnect now" button). */
  reconnectNow() {
    if (this.state === 'open' || this.state === 'connecting') return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /** Drop the current connection and go through the back-off (e.g. a login the server could not serve). */
  reconnectLater() {
    if (this.ws) this.drop(this.ws);
  }

  /** Called by the session once logged in: the next failure starts the back-off afresh. */
  resetBackoff() {
    this.attempt = 0;
  }

  /** Abandon a socket that stopped answering without waiting for the browser's own timeout. */
  drop(ws) {
    if (this.ws !== ws) return;
    ws.onclose = null;
    try { ws.close(); } catch { /* already closing */ }
    this.onClose({ code: 4000, reason: '' });
  }

  onClose(ev) {
    this.ws = null;
    this.stopPing();
    this.failPending('disconnected');
    const info = { code: ev.code, reason: this.closingReason || ev.reason || null, wasOpen: !!this.hello };
    this.emit('close', info);
    if (this.state === 'stopped') return;
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt);
    const delay = Math.min(BACKOFF_MAX, Math.round(base * (0.8 + Math.random() * 0.4)));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
    this.setState('waiting');
  }

  failPending(code) {
    const pending = this.pending;
    this.pending = new Map();
    for (const p of pending.values()) {
      p.reject(new ProtocolError(code, 'The connection to the server was lost.'));
    }
  }

  // ---- frames --------------------------------------------------------------
  onMessage(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      console.warn('ignoring a frame that is not JSON');
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;

    const isReply = frame.type === 'ok' || frame.type === 'error' || frame.type === 'pong';
    if (isReply && frame.id !== undefined && this.pending.has(frame.id)) {
      const p = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      if (frame.type === 'error') p.reject(new ProtocolError(frame.code, frame.message, frame));
      else p.resolve(frame);
      return;
    }
    if (isReply && frame.id !== undefined) return; // a reply nobody waits for any more

    switch (frame.type) {
      case 'hello':
        this.hello = frame;
        this.lastSent = Date.now();
        this.setState('open');
        this.startPing();
        this.emit('hello', frame);
        return;
      case 'closing':
        this.closingReason = frame.reason;
        this.emit('closing', frame.reason);
        return;
      case 'pong':
        return;
      default:
        this.emit('frame', frame);
        this.emit(frame.type, frame);
    }
  }

  /** Send a request; resolves with the `ok` (or `pong`) frame, rejects with a ProtocolError. */
  request(type, fields = {}) {
    if (!this.ws || this.state !== 'open' || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ProtocolError('disconnected', 'Not connected to the server.'));
    }
    const id = this.nextId++;
    const frame = { ...fields, type, id };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, type });
      try {
        this.ws.send(JSON.stringify(frame));
        this.lastSent = Date.now();
      } catch (err) {
        this.pending.delete(id);
        reject(new ProtocolError('disconnected', String(err)));
      }
    });
  }

  // ---- keep-alive ----------------------------------------------------------
  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (this.state !== 'open' || Date.now() - this.lastSent < PING_EVERY) return;
      const ws = this.ws;
      const timer = setTimeout(() => this.drop(ws), PONG_TIMEOUT);
      this.request('ping').then(() => clearTimeout(timer), () => clearTimeout(timer));
    }, 5000);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}
