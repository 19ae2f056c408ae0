//! `SessionActor`: one per connection, and nothing but the connection's
//! state machine.
//!
//! It owns the auth state (new -> authenticated -> closing), the idle
//! timer, the streak of malformed frames, the outbound queue and the pacing
//! of the login replay ([`login`]). Every request of a logged-in session
//! goes to [`crate::handlers::route`], whose table says whether it runs
//! one at a time (`ctx.wait`: no further frame is read meanwhile) or
//! alongside the next ones (`ctx.spawn`).

mod guard;
pub(crate) mod idle;
mod login;
pub(crate) mod registry;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::Semaphore;

use crate::actors::directory::Ticket;
use crate::actors::user::{Detach, Kick};
use crate::actors::Core;
use crate::error::ProtoError;
use crate::handlers::{self, accounts, After, Ctx, Order};
use crate::ids::SessionId;
use crate::protocol::{ClientFrame, ServerFrame, PROTOCOL_VERSION, SERVER_NAME};
use crate::reply::ReplyTo;
use crate::transport::{CloseReason, Incoming, Outbox, PeerInfo, TransportEvent};
use guard::RateLimit;
use registry::Sessions;
use tracing::Instrument as _;

/// How long a closing session waits for replies still in progress.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// Consecutive malformed frames after which the connection is closed.
const MAX_BAD_STREAK: u32 = 16;

/// The server is shutting down: close cleanly.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

/// What the hub wires a new session to.
pub(crate) struct Setup {
    pub svc: Core,
    pub registry: Arc<Sessions>,
    pub id: SessionId,
    pub peer: PeerInfo,
    pub outbox: Outbox,
    /// Time of the client's last frame (ms), touched by the transport.
    pub activity: Arc<AtomicI64>,
    /// In-flight request permits; closed when the connection closes.
    pub permits: Arc<Semaphore>,
    /// Within the connection caps; else the session says `server_full`
    /// and closes.
    pub admitted: bool,
    /// `session` (id, transport, peer, and the user once logged in): the
    /// parent of everything logged for this connection.
    pub span: tracing::Span,
}

enum State {
    /// Before login: only `register`, `login` and `ping`.
    New,
    /// Logged in; the ticket keeps the user's actor from retiring.
    Authed { me: Ctx, _ticket: Ticket },
    /// Going away: every request gets `unauthenticated`.
    Closing,
}

/// One connection.
pub struct SessionActor {
    s: Setup,
    state: State,
    bad_streak: u32,
    rate: RateLimit,
    /// This session's place on the hub's idle timer; dropped with it.
    watchdog: Option<idle::IdleGuard>,
}

impl SessionActor {
    /// Starts the session on the current arbiter.
    pub(crate) fn launch(s: Setup) -> Addr<SessionActor> {
        let l = &s.svc.config.limits;
        let rate = RateLimit::new(l.frames_per_sec, l.frames_burst);
        SessionActor {
            s,
            state: State::New,
            bad_streak: 0,
            rate,
            watchdog: None,
        }
        .start()
    }

    /// Closes cleanly: the session leaves its user at once, but the
    /// connection closes only once every request already read has its reply
    /// queued (at most a few seconds), so a reply pipelined before a
    /// `logout` is not lost.
    fn close(&mut self, reason: CloseReason, ctx: &mut Context<Self>) {
        self.log_close(reason);
        self.detach();
        let permits = self.s.permits.clone();
        let outbox = self.s.outbox.clone();
        let max = self.s.svc.config.limits.max_in_flight.max(1);
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let drain = async move {
            let _ = tokio::time::timeout(CLOSE_DRAIN, permits.acquire_many(all)).await;
            permits.close();
            outbox.close(reason);
        };
        ctx.spawn(drain.into_actor(self));
    }

    /// Leaves the user actor; further requests get `unauthenticated`.
    fn detach(&mut self) {
        if let State::Authed { me, .. } = std::mem::replace(&mut self.state, State::Closing) {
            me.user_addr.do_send(Detach { session: self.s.id });
        }
    }

    fn state_closing(&mut self) {
        self.detach();
        // The connection is gone: read nothing more.
        self.s.permits.close();
    }

    /// Before login: `ping`, `register` and `login`.
    fn handle_new(&mut self, frame: ClientFrame, reply: ReplyTo, ctx: &mut Context<Self>) {
        let (svc, peer) = (self.s.svc.clone(), self.s.peer.clone());
        match frame {
            ClientFrame::Ping {} => reply.frame(|id| ServerFrame::Pong { id }),
            ClientFrame::Register { username, password } => {
                let f = async move { accounts::register(&svc, &peer, &username, &password).await }
                    .instrument(self.s.span.clone());
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::Login {
                username,
                password,
                token,
                device,
            } => {
                // Read before the credentials are: a revocation after this
                // makes the attach check the token again.
                let epoch = svc.revocation_epoch();
                let f = async move {
                    accounts::login(&svc, &peer, &username, password, token, device).await
                }
                .instrument(self.s.span.clone());
                ctx.wait(f.into_actor(self).then(move |r, act, ctx| {
                    match r {
                        Ok(ok) => act.attach(ok, epoch, reply, ctx),
                        Err(e) => reply.err(e),
                    }
                    fut::ready(())
                }));
            }
            _ => reply.err(ProtoError::unauthenticated("log in first")),
        }
    }

    /// After login: the handlers' table decides the order.
    fn handle_authed(
        &mut self,
        me: Ctx,
        frame: ClientFrame,
        reply: ReplyTo,
        ctx: &mut Context<Self>,
    ) {
        let route = handlers::route(me, frame, reply);
        let Some(work) = route.work else { return };
        let work = work.instrument(self.s.span.clone());
        let work = work.into_actor(self).map(|after, act, ctx| {
            if after == After::Close {
                act.close(CloseReason::Normal, ctx);
            }
        });
        match route.order {
            Order::Serial => ctx.wait(work),
            Order::Concurrent => {
                ctx.spawn(work);
            }
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let hello = ServerFrame::Hello {
            protocol: PROTOCOL_VERSION,
            server: SERVER_NAME.to_owned(),
        };
        self.s.outbox.push(hello.encode());
        if !self.s.admitted {
            return self.close_now(CloseReason::ServerFull);
        }
        self.login_deadline(ctx);
        self.watch_idle(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.state_closing();
        let admitted = self.s.admitted.then_some(&self.s.peer);
        self.s.registry.remove(self.s.id, admitted);
    }
}

impl Handler<Incoming> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        let kind = msg.decoded.as_ref().map_or("invalid", |r| r.frame.kind());
        crate::telemetry::frame_in(kind);
        let outbox = self.s.outbox.clone();
        if !self.rate.take() {
            let id = msg
                .decoded
                .as_ref()
                .map_or_else(|b| b.id.clone(), |r| r.id.clone());
            ReplyTo::new(outbox, id, Some(msg.permit))
                .err(ProtoError::rate_limited("too many requests, slow down"));
            if self.rate.refused >= self.s.svc.config.limits.flood_close_after.max(1) {
                self.close_now(CloseReason::RateLimited);
            }
            return;
        }
        let req = match msg.decoded {
            Ok(r) => r,
            Err(bad) => {
                ReplyTo::new(outbox, bad.id, Some(msg.permit))
                    .err(ProtoError::bad_request(bad.message));
                self.bad_streak += 1;
                if self.bad_streak >= MAX_BAD_STREAK {
                    self.close_now(CloseReason::Protocol);
                }
                return;
            }
        };
        self.bad_streak = 0;
        let reply = ReplyTo::new(outbox, req.id.clone(), Some(msg.permit));
        match &self.state {
            State::New => self.handle_new(req.frame, reply, ctx),
            State::Authed { me, .. } => self.handle_authed(me.clone(), req.frame, reply, ctx),
            State::Closing => reply.err(ProtoError::unauthenticated("session is closing")),
        }
    }
}

impl Handler<TransportEvent> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: TransportEvent, ctx: &mut Context<Self>) {
        match msg {
            TransportEvent::TooLarge => {
                let limit = self.s.svc.config.limits.max_frame;
                self.error_now(ProtoError::too_large(format!("frame over {limit} bytes")));
                self.close_now(CloseReason::TooLarge);
            }
            TransportEvent::NotText => {
                self.error_now(ProtoError::bad_request("only text frames are accepted"));
                self.bad_streak += 1;
                if self.bad_streak >= MAX_BAD_STREAK {
                    self.close_now(CloseReason::Protocol);
                }
            }
            TransportEvent::Stopping => self.close(CloseReason::Shutdown, ctx),
            TransportEvent::Closed => {
                self.state_closing();
                ctx.stop();
            }
        }
    }
}

impl Handler<Shutdown> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.close(CloseReason::Shutdown, ctx);
    }
}

impl Handler<Kick> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Kick, ctx: &mut Context<Self>) {
        if let Some(f) = msg.frame {
            self.s.outbox.push(f.encode());
        }
        self.close(msg.reason, ctx);
    }
}
