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
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use crate::protocol::ids::now_millis;
use crate::protocol::{decode, BadFrame, Encoded, Request};

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
    /// Normal end: logout, device revoked, server shutdown.
    Normal,
    /// A client frame was over `limits.max_frame` (WebSocket close 1009).
    TooLarge,
    /// The client did not read fast enough; queued frames were dropped.
    TooSlow,
    /// Nothing received for `limits.idle_timeout_secs`.
    Idle,
    /// Too many consecutive malformed frames.
    Protocol,
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
}

impl OutboundRx {
    /// The next thing to write; `None` when the session is gone and
    /// everything was written. After a hard close ([`CloseReason::TooSlow`])
    /// queued frames are skipped.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        if let Some(r) = self.kill.reason() {
            return Some(Outgoing::Close(r));
        }
        tokio::select! {
            biased;
            _ = self.kill.notify.notified() => self.kill.reason().map(Outgoing::Close),
            m = self.rx.recv() => m,
        }
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
        if let Some(r) = self.kill.reason() {
            return Some(Outgoing::Close(r));
        }
        self.rx.try_recv().ok()
    }
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
}

impl Outbox {
    /// A bounded queue of `capacity` frames and its receiving half.
    pub(crate) fn channel(capacity: usize) -> (Outbox, OutboundRx) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let kill = Arc::new(Kill::default());
        (
            Outbox {
                tx,
                kill: kill.clone(),
            },
            OutboundRx { rx, kill },
        )
    }

    /// Queues a frame without waiting. A full queue means the client is not
    /// reading: the connection is closed and `false` returned.
    pub fn push(&self, frame: Encoded) -> bool {
        match self.tx.try_send(Outgoing::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill(CloseReason::TooSlow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a frame, waiting for room: only for the login replay, which is
    /// written as fast as the connection drains.
    pub async fn push_wait(&self, frame: Encoded) -> bool {
        self.tx.send(Outgoing::Frame(frame)).await.is_ok()
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
