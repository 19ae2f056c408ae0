//! The transport boundary: how bytes become sessions.
//!
//! A transport accepts a connection, calls [`crate::Hub::connect`] and gets
//! a [`Connection`]: an [`Inbound`] to hand it every client frame's raw bytes
//! and an [`OutboundRx`] to take the [`Encoded`] server frames to write. The
//! transport never looks inside a frame; framing (lines, WebSocket messages),
//! the frame size limit and writing are all it does.
//!
//! Back-pressure both ways:
//! - [`Inbound::frame`] waits while the session has `limits.max_in_flight`
//!   requests in progress, so a client that floods requests is simply not
//!   read from.
//! - The outbound queue is bounded (`limits.outbound_queue`). Live events
//!   are never awaited: when the queue is full the connection is closed
//!   (the client is too slow) and its messages stay stored for replay.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use actix::{Message, Recipient};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::protocol::ids::now_millis;
use crate::protocol::{decode, BadFrame, Encoded, Request, ServerFrame};

/// A decoded client frame, for the session, with the in-flight permit it
/// holds until it is answered.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Incoming {
    /// The request, or why it could not be decoded.
    pub decoded: Result<Request, BadFrame>,
    /// One of the connection's `limits.max_in_flight` permits.
    pub permit: OwnedSemaphorePermit,
}

/// Something the transport saw that is not a frame, for the session.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) enum TransportEvent {
    /// A frame over the size limit: reply `too_large`, then close.
    TooLarge,
    /// A non-text frame: reply `bad_request`.
    NotText,
    /// The transport is stopping: close with `shutdown`.
    Stopping,
    /// The connection is gone.
    Closed,
}

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// Remote address, when the transport has one; used for throttling.
    pub addr: Option<SocketAddr>,
    /// Short transport name for logs (`tcp`, `ws`, ...).
    pub transport: &'static str,
}

impl PeerInfo {
    /// The key failed logins and registrations are counted under.
    pub fn throttle_key(&self) -> String {
        match self.addr {
            Some(a) => a.ip().to_string(),
            None => format!("{}:local", self.transport),
        }
    }
}

/// Why the server closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// After `logout`: its `ok` was the last frame.
    Normal,
    /// The server is shutting down.
    Shutdown,
    /// A client frame was over `limits.max_frame` (WebSocket close 1009);
    /// its `too_large` error was the last frame.
    TooLarge,
    /// The client did not read fast enough; queued frames were dropped.
    TooSlow,
    /// Nothing received for `limits.idle_timeout_secs`.
    Idle,
    /// Not logged in within `limits.login_timeout_secs`.
    LoginTimeout,
    /// Too many consecutive malformed frames.
    Protocol,
    /// Kept sending past the request rate limit.
    RateLimited,
    /// Over a connection cap, overall or per peer address.
    ServerFull,
    /// The device's token was revoked.
    DeviceRevoked,
    /// The account's password was changed on another session.
    PasswordChanged,
    /// The account was suspended; its `account_suspended` error was the
    /// last frame.
    Suspended,
}

impl CloseReason {
    /// The `reason` of the `closing` frame sent before closing, also the
    /// WebSocket close frame's reason text; `None` where another frame
    /// (`ok`, `error`) already said why.
    pub fn text(self) -> Option<&'static str> {
        Some(match self {
            CloseReason::Normal | CloseReason::TooLarge | CloseReason::Suspended => return None,
            CloseReason::Shutdown => "shutdown",
            CloseReason::TooSlow => "too_slow",
            CloseReason::Idle => "idle_timeout",
            CloseReason::LoginTimeout => "login_timeout",
            CloseReason::Protocol => "too_many_errors",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::ServerFull => "server_full",
            CloseReason::DeviceRevoked => "device_revoked",
            CloseReason::PasswordChanged => "password_changed",
        })
    }
}

/// What a transport receives to write.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// One server frame.
    Frame(Encoded),
    /// Write everything before this, then close the connection.
    Close(CloseReason),
}

/// A new connection's two halves.
#[derive(Debug)]
pub struct Connection {
    /// Feed client frames here.
    pub inbound: Inbound,
    /// Take server frames from here.
    pub outbound: OutboundRx,
}

/// The session's closed; the transport should stop reading and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session closed")]
pub struct SessionClosed;

/// The inbound half: raw client frames go in here.
///
/// Dropping it tells the session the connection is gone.
#[derive(Debug)]
pub struct Inbound {
    pub(crate) frames: Recipient<Incoming>,
    pub(crate) events: Recipient<TransportEvent>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) max_frame: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) activity: Arc<AtomicI64>,
}

impl Inbound {
    /// Longest client frame the transport must accept, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Hands over one client frame (without terminator). Waits while the
    /// session has too many requests in progress. Decoding happens here, on
    /// the transport's task, not on the session's actor.
    pub async fn frame(&self, raw: &[u8]) -> Result<(), SessionClosed> {
        self.touch();
        if raw.len() > self.max_frame {
            self.too_large();
            return Err(SessionClosed);
        }
        let permit: OwnedSemaphorePermit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SessionClosed)?;
        if !self.frames.connected() {
            return Err(SessionClosed);
        }
        // The permit bounds how many of these sit in the mailbox.
        let decoded = decode(raw);
        self.frames.do_send(Incoming { decoded, permit });
        Ok(())
    }

    /// The client sent a frame over [`Inbound::max_frame`]: the session
    /// replies `too_large` and closes.
    pub fn too_large(&self) {
        self.touch();
        self.events.do_send(TransportEvent::TooLarge);
    }

    /// The client sent something that is not a text frame (a WebSocket
    /// binary message): the session replies `bad_request`.
    pub fn not_text(&self) {
        self.touch();
        self.events.do_send(TransportEvent::NotText);
    }

    /// The transport is stopping (its listener's shutdown fired): the
    /// session answers what it already read, sends `closing` `shutdown` and
    /// ends the outbound queue. Keep this `Inbound` until the queue has
    /// ended; dropping it first ends the session without a word.
    pub fn stopping(&self) {
        self.events.do_send(TransportEvent::Stopping);
    }

    /// Waits until every request handed over so far has been answered, e.g.
    /// after the client half-closed its connection, so the replies it is
    /// still waiting for get written before the session ends.
    pub async fn drain(&self) {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        if let Ok(p) = self.permits.acquire_many(all).await {
            drop(p);
        }
    }

    /// The client showed it is alive without sending a frame (a WebSocket
    /// ping): resets the idle timer.
    pub fn touch(&self) {
        self.activity.store(now_millis(), Ordering::Relaxed);
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        self.events.do_send(TransportEvent::Closed);
    }
}

/// The outbound half a transport drains.
#[derive(Debug)]
pub struct OutboundRx {
    rx: mpsc::Receiver<Outgoing>,
    kill: Arc<Kill>,
    bytes: Arc<Semaphore>,
    max: usize,
    /// A `closing` frame was handed out; the close comes next.
    closing: Option<CloseReason>,
    /// A kill was seen (and its `closing` frame handed out).
    kill_seen: bool,
}

impl OutboundRx {
    /// The next thing to write; `None` when the session is gone and
    /// everything was written. Before [`Outgoing::Close`] comes the
    /// `closing` frame that says why (when the reason has one). After a
    /// hard close ([`CloseReason::TooSlow`], idle) queued frames are
    /// skipped.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        if let Some(r) = self.closing.take() {
            return Some(Outgoing::Close(r));
        }
        if let Some(r) = self.kill.reason() {
            return Some(self.on_kill(r));
        }
        let next = tokio::select! {
            biased;
            _ = self.kill.notify.notified() => return self.kill.reason().map(|r| self.on_kill(r)),
            m = self.rx.recv() => m,
        };
        next.map(|m| self.handed_out(m))
    }

    /// Resolves once the session was closed hard ([`CloseReason::TooSlow`],
    /// idle): race every write against it, so a write blocked on a client
    /// that stopped reading ends when the server gives up on that client.
    pub async fn killed(&self) -> CloseReason {
        loop {
            let notified = self.kill.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.kill.reason() {
                return r;
            }
            notified.await;
        }
    }

    /// The next item if one is ready, for coalescing writes.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        if let Some(r) = self.closing.take() {
            return Some(Outgoing::Close(r));
        }
        if let Some(r) = self.kill.reason() {
            return Some(self.on_kill(r));
        }
        let m = self.rx.try_recv().ok()?;
        Some(self.handed_out(m))
    }

    /// A frame leaves the queue: its bytes no longer count against the
    /// budget. A close first hands out its `closing` frame.
    fn handed_out(&mut self, m: Outgoing) -> Outgoing {
        match m {
            Outgoing::Frame(f) => {
                self.bytes.add_permits(charge(f.len(), self.max));
                Outgoing::Frame(f)
            }
            Outgoing::Close(r) => self.close_with(r),
        }
    }

    /// A hard close: its `closing` frame once, then the close.
    fn on_kill(&mut self, r: CloseReason) -> Outgoing {
        if std::mem::replace(&mut self.kill_seen, true) {
            Outgoing::Close(r)
        } else {
            self.close_with(r)
        }
    }

    fn close_with(&mut self, r: CloseReason) -> Outgoing {
        match r.text() {
            Some(reason) => {
                self.closing = Some(r);
                Outgoing::Frame(ServerFrame::Closing { reason }.encode())
            }
            None => Outgoing::Close(r),
        }
    }
}

/// What a frame costs against a byte budget of `max`: its length, at most
/// the whole budget (a frame larger than the budget needs an empty queue).
fn charge(len: usize, max: usize) -> usize {
    len.clamp(1, max)
}

/// The byte budget of one queue: `limits.outbound_bytes`, at least 1 and
/// at most what one semaphore call can take.
fn budget(max_bytes: usize) -> usize {
    max_bytes.clamp(1, u32::MAX as usize)
}

#[derive(Debug, Default)]
struct Kill {
    killed: AtomicBool,
    reason: std::sync::Mutex<Option<CloseReason>>,
    notify: Notify,
}

impl Kill {
    fn reason(&self) -> Option<CloseReason> {
        if self.killed.load(Ordering::Acquire) {
            self.reason.lock().ok().and_then(|r| *r)
        } else {
            None
        }
    }
}

/// The sending side of a session's outbound queue; cloned into whoever
/// produces frames for that session (its user actor, conversation actors).
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    kill: Arc<Kill>,
    /// Bytes the queue may still take (`limits.outbound_bytes` when empty).
    bytes: Arc<Semaphore>,
    /// The whole budget.
    max: usize,
}

impl Outbox {
    /// A queue bounded to `capacity` frames and `max_bytes` bytes (replies
    /// included), and its receiving half.
    pub(crate) fn channel(capacity: usize, max_bytes: usize) -> (Outbox, OutboundRx) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let kill = Arc::new(Kill::default());
        let max = budget(max_bytes);
        let bytes = Arc::new(Semaphore::new(max));
        (
            Outbox {
                tx,
                kill: kill.clone(),
                bytes: bytes.clone(),
                max,
            },
            OutboundRx {
                rx,
                kill,
                bytes,
                max,
                closing: None,
                kill_seen: false,
            },
        )
    }

    /// Queues a frame without waiting. A full queue (in frames or bytes)
    /// means the client is not reading: the connection is closed
    /// (`too_slow`) and `false` returned; its messages stay stored for
    /// replay.
    pub fn push(&self, frame: Encoded) -> bool {
        let n = charge(frame.len(), self.max) as u32;
        match self.bytes.try_acquire_many(n) {
            Ok(p) => p.forget(),
            Err(TryAcquireError::NoPermits) => {
                self.kill(CloseReason::TooSlow);
                return false;
            }
            Err(TryAcquireError::Closed) => return false,
        }
        match self.tx.try_send(Outgoing::Frame(frame)) {
            Ok(()) => {
                crate::telemetry::frame_out();
                true
            }
            Err(e) => {
                self.bytes.add_permits(n as usize);
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.kill(CloseReason::TooSlow);
                }
                false
            }
        }
    }

    /// Queues a frame, waiting for room (in frames and bytes): only for the
    /// login replay, which is written as fast as the connection drains.
    pub async fn push_wait(&self, frame: Encoded) -> bool {
        let n = charge(frame.len(), self.max) as u32;
        match self.bytes.acquire_many(n).await {
            Ok(p) => p.forget(),
            Err(_) => return false,
        }
        if self.tx.send(Outgoing::Frame(frame)).await.is_ok() {
            crate::telemetry::frame_out();
            true
        } else {
            self.bytes.add_permits(n as usize);
            false
        }
    }

    /// Closes after the frames already queued are written.
    pub fn close(&self, reason: CloseReason) {
        if self.tx.try_send(Outgoing::Close(reason)).is_err() {
            self.kill(reason);
        }
    }

    /// Closes now, dropping queued frames.
    pub fn kill(&self, reason: CloseReason) {
        if let Ok(mut r) = self.kill.reason.lock() {
            if r.is_none() && reason == CloseReason::TooSlow {
                crate::telemetry::slow_consumer();
            }
            r.get_or_insert(reason);
        }
        self.kill.killed.store(true, Ordering::Release);
        // Wake a waiting `recv` or `killed`, and leave a permit for the next.
        self.kill.notify.notify_waiters();
        self.kill.notify.notify_one();
    }

    /// Whether the transport has gone away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.kill.killed.load(Ordering::Acquire)
    }
}
