//! `SessionActor`: one per connection.
//!
//! Owns the connection's auth state (new -> authenticated -> closing), the
//! idle timer and the streak of malformed frames. It receives decoded
//! frames from the transport ([`crate::transport::Inbound`]) and routes
//! each to its handler. Requests that change account or contact state run
//! one at a time, in order (`ctx.wait`); message sends are pipelined through
//! the user and conversation actors, which keep their order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::directory::Ticket;
use crate::error::ProtoError;
use crate::hub::{Hub, SERVER_NAME};
use crate::ids::{ConvId, SessionId, UserId};
use crate::protocol::{BadFrame, ClientFrame, Reply, Request, ServerFrame, PROTOCOL_VERSION};
use crate::reply::ReplyTo;
use crate::transport::{CloseReason, Outbox, PeerInfo};
use crate::user::{Attach, Detach, Synced, UserActor};
use crate::{accounts, contacts, files, messages, rooms};

/// How long a closing session waits for replies still in progress.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// Consecutive malformed frames after which the connection is closed.
const MAX_BAD_STREAK: u32 = 16;

/// A decoded client frame, with the in-flight permit it holds until replied.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Incoming {
    pub decoded: Result<Request, BadFrame>,
    pub permit: OwnedSemaphorePermit,
}

/// Something the transport saw that is not a frame.
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

/// The server is shutting down: close cleanly.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

/// Close this session, after an optional final frame (revoked device,
/// suspended account, changed password).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub(crate) struct Kick {
    pub frame: Option<ServerFrame>,
}

/// Who a logged-in session is, handed to request handlers.
#[derive(Clone)]
pub(crate) struct Me {
    pub hub: Hub,
    pub user: UserId,
    pub device: String,
    pub session: SessionId,
    pub user_addr: Addr<UserActor>,
}

enum State {
    New,
    /// Logging in; frames wait (the login runs under `ctx.wait`).
    Authed {
        me: Me,
        _ticket: Ticket,
    },
    Closing,
}

/// One connection.
pub struct SessionActor {
    hub: Hub,
    id: SessionId,
    peer: PeerInfo,
    outbox: Outbox,
    activity: Arc<AtomicI64>,
    permits: Arc<Semaphore>,
    state: State,
    bad_streak: u32,
}

impl SessionActor {
    pub(crate) fn new(
        hub: Hub,
        id: SessionId,
        peer: PeerInfo,
        outbox: Outbox,
        activity: Arc<AtomicI64>,
        permits: Arc<Semaphore>,
    ) -> SessionActor {
        SessionActor {
            hub,
            id,
            peer,
            outbox,
            activity,
            permits,
            state: State::New,
            bad_streak: 0,
        }
    }

    /// Closes cleanly: the session leaves its user at once, but the
    /// connection closes only once every request already read has its reply
    /// queued (at most a few seconds), so a reply pipelined before a
    /// `logout` is not lost.
    fn close(&mut self, reason: CloseReason, ctx: &mut Context<Self>) {
        self.detach();
        let permits = self.permits.clone();
        let outbox = self.outbox.clone();
        let all = u32::try_from(self.hub.config().limits.max_in_flight.max(1)).unwrap_or(u32::MAX);
        let drain = async move {
            let _ = tokio::time::timeout(CLOSE_DRAIN, permits.acquire_many(all)).await;
            permits.close();
            outbox.close(reason);
        };
        ctx.spawn(drain.into_actor(self));
    }

    /// Closes after what is queued, without waiting for requests in
    /// progress: for a connection whose framing broke (too large, garbage).
    fn close_now(&mut self, reason: CloseReason) {
        self.state_closing();
        self.outbox.close(reason);
    }

    /// Leaves the user actor; further requests get `unauthenticated`.
    fn detach(&mut self) {
        if let State::Authed { me, .. } = std::mem::replace(&mut self.state, State::Closing) {
            me.user_addr.do_send(Detach { session: self.id });
        }
    }

    fn state_closing(&mut self) {
        self.detach();
        // The connection is gone: read nothing more.
        self.permits.close();
    }

    fn handle_new(&mut self, frame: ClientFrame, reply: ReplyTo, ctx: &mut Context<Self>) {
        let hub = self.hub.clone();
        let peer = self.peer.clone();
        match frame {
            ClientFrame::Ping {} => reply.frame(|id| ServerFrame::Pong { id }),
            ClientFrame::Register { username, password } => {
                let f = async move { accounts::register(&hub, &peer, &username, &password).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::Login {
                username,
                password,
                token,
                device,
            } => {
                let f = async move {
                    accounts::login(&hub, &peer, &username, password, token, device).await
                };
                ctx.wait(f.into_actor(self).then(move |r, act, ctx| {
                    match r {
                        Ok(ok) => act.attach(ok, reply, ctx),
                        Err(e) => reply.err(e),
                    }
                    fut::ready(())
                }));
            }
            _ => reply.err(ProtoError::unauthenticated("log in first")),
        }
    }

    /// Joins the user's actor, then sends `ok`, `roster`, the replay and
    /// `synced`, all before any other frame is read.
    fn attach(&mut self, ok: accounts::LoginOk, reply: ReplyTo, ctx: &mut Context<Self>) {
        let hub = self.hub.clone();
        let user = ok.user.clone();
        let Some(lease) = hub
            .inner
            .users
            .get_or_start(&user, || UserActor::new(hub.clone(), user.clone()).start())
        else {
            reply.err(ProtoError::internal("user directory unavailable"));
            return;
        };
        let attach = Attach {
            session: self.id,
            device: ok.device.clone(),
            outbox: self.outbox.clone(),
            addr: ctx.address(),
        };
        let session = self.id;
        let outbox = self.outbox.clone();
        let addr = lease.addr.clone();
        let f = async move {
            let roster = addr
                .send(attach)
                .await
                .map_err(|_| ProtoError::internal("user actor unavailable"))??;
            Ok::<_, ProtoError>((roster, lease))
        };
        ctx.wait(f.into_actor(self).then(move |r, act, _| {
            let (roster, lease) = match r {
                Ok(x) => x,
                Err(e) => {
                    reply.err(e);
                    return fut::ready(()).boxed_local();
                }
            };
            reply.ok(Reply::LoggedIn {
                user: ok.user.clone(),
                session,
                token: ok.token.clone(),
            });
            outbox.push(ServerFrame::Roster { contacts: roster }.encode());
            let me = Me {
                hub: act.hub.clone(),
                user: ok.user.clone(),
                device: ok.device.clone(),
                session,
                user_addr: lease.addr.clone(),
            };
            act.state = State::Authed {
                me: me.clone(),
                _ticket: lease.ticket,
            };
            let replay = async move {
                let replayed = messages::replay(&me, &outbox).await;
                // `synced`, then what was held meanwhile, written as the
                // connection drains; only then are frames read again, so no
                // reply overtakes them.
                if outbox.push_wait(ServerFrame::Synced {}.encode()).await {
                    while let Ok(Some(held)) = me
                        .user_addr
                        .send(Synced {
                            session,
                            replayed: replayed.clone(),
                        })
                        .await
                    {
                        for f in held {
                            if !outbox.push_wait(f).await {
                                return;
                            }
                        }
                    }
                }
            };
            replay.into_actor(act).boxed_local()
        }));
    }

    fn contact(
        &mut self,
        me: Me,
        op: contacts::Op,
        user: String,
        reply: ReplyTo,
        ctx: &mut Context<Self>,
    ) {
        ctx.wait(async move { contacts::apply(&me, op, &user, reply).await }.into_actor(self));
    }

    fn handle_authed(&mut self, frame: ClientFrame, reply: ReplyTo, ctx: &mut Context<Self>) {
        let State::Authed { me, .. } = &self.state else {
            return;
        };
        let me = me.clone();
        match frame {
            ClientFrame::Ping {} => reply.frame(|id| ServerFrame::Pong { id }),
            ClientFrame::Login {
                password,
                token,
                device,
                ..
            } => reply.err(
                accounts::check_login_fields(&password, &token, &device)
                    .err()
                    .unwrap_or_else(|| ProtoError::conflict("already logged in")),
            ),
            ClientFrame::Register { username, password } => {
                let peer = self.peer.clone();
                let f =
                    async move { accounts::register(&me.hub, &peer, &username, &password).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::Logout {} => {
                let f = async move { accounts::logout(&me).await };
                ctx.wait(f.into_actor(self).map(|r, act, ctx| {
                    let ok = r.is_ok();
                    reply.send(r);
                    if ok {
                        act.close(CloseReason::Normal, ctx);
                    }
                }));
            }
            ClientFrame::Devices {} => {
                let f = async move { accounts::devices(&me).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::DeviceRevoke { device } => {
                let f = async move { accounts::revoke_device(&me, &device, reply).await };
                ctx.wait(f.into_actor(self));
            }
            ClientFrame::PasswordChange { old, new } => {
                let f = async move { accounts::change_password(&me, &old, &new).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::ContactAdd { user } => {
                self.contact(me, contacts::Op::Add, user, reply, ctx)
            }
            ClientFrame::ContactAccept { user } => {
                self.contact(me, contacts::Op::Accept, user, reply, ctx)
            }
            ClientFrame::ContactDecline { user } => {
                self.contact(me, contacts::Op::Decline, user, reply, ctx)
            }
            ClientFrame::ContactRemove { user } => {
                self.contact(me, contacts::Op::Remove, user, reply, ctx)
            }
            ClientFrame::ContactBlock { user } => {
                self.contact(me, contacts::Op::Block, user, reply, ctx)
            }
            ClientFrame::ContactUnblock { user } => {
                self.contact(me, contacts::Op::Unblock, user, reply, ctx)
            }
            ClientFrame::ContactBlocks {} => {
                let f = async move { contacts::blocks(&me).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::ContactList {} => {
                let f = async move { contacts::list(&me).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::PresenceSet { status, note } => {
                messages::presence_set(&me, status, note, reply)
            }
            ClientFrame::MsgSend {
                to,
                room,
                body,
                client_id,
                attachment,
            } => {
                let body = body.unwrap_or_default();
                if let Err(e) =
                    messages::check_send(&me, &to, &room, &body, &client_id, attachment.is_some())
                {
                    return reply.err(e);
                }
                let Some(file) = attachment else {
                    return messages::send(&me, to, room, body, client_id, None, reply);
                };
                // Find the file first, in order with this session's other
                // requests; then send as usual.
                let hub = me.hub.clone();
                let user = me.user.clone();
                let f = async move { files::readable(&hub, &user, &file).await };
                ctx.wait(f.into_actor(self).map(move |r, _, _| {
                    match r.map(|f| crate::files::AttachmentMeta::of(&f)) {
                        Ok(Some(meta)) => {
                            messages::send(&me, to, room, body, client_id, Some(meta), reply)
                        }
                        Ok(None) => reply.err(ProtoError::not_found("no such file")),
                        Err(e) => reply.err(e),
                    }
                }));
            }
            ClientFrame::FileBegin { name, mime, size } => {
                let f = async move { files::begin(&me, name, mime, size).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::FileChunk { file, offset, data } => {
                let f = async move { files::chunk(&me, &file, offset, &data).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::FileStatus { file } => {
                let f = async move { files::status(&me, &file).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::FileEnd { file } => {
                let f = async move { files::end(&me, &file).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::FileRead { file, offset, len } => {
                let f = async move { files::read(&me, &file, offset.unwrap_or(0), len).await };
                ctx.spawn(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::FileUrl { file } => {
                let f = async move { files::url(&me, &file).await };
                ctx.spawn(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::Typing { to, room } => messages::typing(&me, to, room, reply),
            ClientFrame::MsgAck { conv, seq, read } => {
                ctx.spawn(
                    messages::ack(me, conv, seq, read.unwrap_or(false), reply).into_actor(self),
                );
            }
            ClientFrame::History {
                conv,
                before,
                limit,
            } => {
                ctx.spawn(
                    async move { reply.send(messages::history(&me, &conv, before, limit).await) }
                        .into_actor(self),
                );
            }
            ClientFrame::RoomCreate {
                name,
                topic,
                public,
            } => {
                let f = async move { rooms::create(&me, &name, topic, public).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::RoomList { q } => {
                ctx.spawn(async move { reply.send(rooms::list(&me, q).await) }.into_actor(self));
            }
            ClientFrame::RoomJoin { name } => {
                let f = async move { rooms::join(&me, &name).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::RoomLeave { name } => {
                let f = async move { rooms::leave(&me, &name).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::RoomInvite { name, user } => {
                let f = async move { rooms::invite(&me, &name, &user).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::RoomInvites {} => {
                ctx.spawn(async move { reply.send(rooms::invites(&me).await) }.into_actor(self));
            }
            ClientFrame::RoomMembers { name } => {
                ctx.spawn(
                    async move { reply.send(rooms::members(&me, &name).await) }.into_actor(self),
                );
            }
            ClientFrame::RoomTopic { name, topic } => {
                let f = async move { rooms::topic(&me, &name, topic).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::RoomKick { name, user } => {
                let f = async move { rooms::kick(&me, &name, &user).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::RoomUnban { name, user } => {
                let f = async move { rooms::unban(&me, &name, &user).await };
                ctx.wait(f.into_actor(self).map(|r, _, _| reply.send(r)));
            }
            ClientFrame::Convs {} => {
                ctx.spawn(async move { reply.send(messages::convs(&me).await) }.into_actor(self));
            }
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.outbox.push(
            ServerFrame::Hello {
                protocol: PROTOCOL_VERSION,
                server: SERVER_NAME.to_owned(),
            }
            .encode(),
        );
        let idle_ms = (self.hub.config().limits.idle_timeout_secs.max(1) * 1000) as i64;
        let tick = Duration::from_millis((idle_ms as u64 / 10).clamp(50, 5000));
        ctx.run_interval(tick, move |act, ctx| {
            let last = act.activity.load(Ordering::Relaxed);
            if crate::ids::now_millis() - last >= idle_ms {
                tracing::debug!(session = %act.id, "idle timeout");
                // Idle: nothing of what is queued is worth waiting for.
                act.state_closing();
                act.outbox.kill(CloseReason::Idle);
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.state_closing();
        self.hub.session_ended(self.id);
    }
}

impl Handler<Incoming> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        let req = match msg.decoded {
            Ok(r) => r,
            Err(bad) => {
                ReplyTo::new(self.outbox.clone(), bad.id, Some(msg.permit))
                    .err(ProtoError::bad_request(bad.message));
                self.bad_streak += 1;
                if self.bad_streak >= MAX_BAD_STREAK {
                    self.close_now(CloseReason::Protocol);
                }
                return;
            }
        };
        self.bad_streak = 0;
        let reply = ReplyTo::new(self.outbox.clone(), req.id.clone(), Some(msg.permit));
        match &self.state {
            State::New => self.handle_new(req.frame, reply, ctx),
            State::Authed { .. } => self.handle_authed(req.frame, reply, ctx),
            State::Closing => reply.err(ProtoError::unauthenticated("session is closing")),
        }
    }
}

impl Handler<TransportEvent> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: TransportEvent, ctx: &mut Context<Self>) {
        match msg {
            TransportEvent::TooLarge => {
                let limit = self.hub.config().limits.max_frame;
                self.outbox.push(
                    ServerFrame::error(
                        None,
                        ProtoError::too_large(format!("frame over {limit} bytes")),
                    )
                    .encode(),
                );
                self.close_now(CloseReason::TooLarge);
            }
            TransportEvent::NotText => {
                self.outbox.push(
                    ServerFrame::error(
                        None,
                        ProtoError::bad_request("only text frames are accepted"),
                    )
                    .encode(),
                );
            }
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
        self.close(CloseReason::Normal, ctx);
    }
}

impl Handler<Kick> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Kick, ctx: &mut Context<Self>) {
        if let Some(f) = msg.frame {
            self.outbox.push(f.encode());
        }
        self.close(CloseReason::Normal, ctx);
    }
}

/// Highest seq replayed per conversation, so live copies already sent are
/// not sent again after `synced`.
pub(crate) type Replayed = HashMap<ConvId, u64>;
