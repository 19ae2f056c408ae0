//! Request handlers, one module per domain, and the one table that routes
//! a logged-in session's requests to them.
//!
//! A handler is a function of a [`Ctx`] (who asks, on which session, and
//! the services) and the request's fields. Most return their reply; the
//! few that must order the reply before events they cause (contacts, sends,
//! presence) take the [`ReplyTo`] and answer themselves.
//!
//! [`route`] is the table: for every request kind it names the handler and
//! whether the request is [`Order::Serial`] (the session reads no further
//! frame until it is done) or [`Order::Concurrent`] (it runs alongside
//! whatever comes next). That choice is the ordering rule of the protocol
//! reference (docs/PROTOCOL.md, "Requests, replies and ordering").

pub(crate) mod accounts;
pub(crate) mod contacts;
pub(crate) mod files;
pub(crate) mod messages;
pub(crate) mod presence;
pub(crate) mod rooms;

use actix::Addr;
use futures_util::future::{FutureExt, LocalBoxFuture};
use std::future::Future;
use std::sync::Arc;

use crate::actors::user::UserActor;
use crate::actors::Core;
use crate::error::ProtoError;
use crate::ids::{SessionId, UserId};
use crate::protocol::{ClientFrame, Reply, RequestId, ServerFrame};
use crate::reply::ReplyTo;
use crate::transport::PeerInfo;

/// Who is asking, on which session, and the services to answer with.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The hub's services.
    pub svc: Core,
    /// The logged-in user.
    pub user: UserId,
    /// The device the session logged in as.
    pub device: String,
    /// Hash of the token this session holds (issued at its login).
    pub token_hash: Arc<str>,
    /// The asking session.
    pub session: SessionId,
    /// The user's actor (sessions, contact book, presence).
    pub user_addr: Addr<UserActor>,
    /// The connection's peer, for throttling.
    pub peer: PeerInfo,
}

/// How a request is scheduled on its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Handled to the end before the next frame of the connection is read.
    Serial,
    /// Runs alongside the requests that follow it.
    Concurrent,
}

/// What the session does once a request is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// Nothing: keep going.
    Continue,
    /// Close the connection (after `logout`).
    Close,
}

/// A routed request: its order and the work still to do to answer it
/// (`None`: it was answered, or handed to an actor, on the spot).
pub(crate) struct Route {
    pub order: Order,
    pub work: Option<LocalBoxFuture<'static, After>>,
}

impl Route {
    /// Nothing left to do.
    pub(crate) fn done() -> Route {
        Route {
            order: Order::Concurrent,
            work: None,
        }
    }

    /// Serial work that answers by itself.
    pub(crate) fn serial<F: Future<Output = ()> + 'static>(f: F) -> Route {
        handled(Order::Serial, f)
    }
}

/// A request answered by the reply its handler returns.
fn answer<F>(order: Order, reply: ReplyTo, f: F) -> Route
where
    F: Future<Output = Result<Reply, ProtoError>> + 'static,
{
    let work = f.map(move |r| {
        reply.send(r);
        After::Continue
    });
    Route {
        order,
        work: Some(work.boxed_local()),
    }
}

/// A request whose handler answers by itself (it takes the `ReplyTo`).
fn handled<F: Future<Output = ()> + 'static>(order: Order, f: F) -> Route {
    Route {
        order,
        work: Some(f.map(|()| After::Continue).boxed_local()),
    }
}

/// Routes one request of a logged-in session.
///
/// Serial, and why:
/// - account, contact and presence requests: each reads and changes state
///   the next may depend on (accept, then send; block, then anything), and
///   the protocol promises they take effect in order;
/// - room changes (create, join, leave, invite, topic, kick, unban): a
///   client that joins and then sends expects the send to see the join;
/// - file uploads (begin, chunk, status, end): chunks must land in offset
///   order;
/// - `msg.send`, `typing` and `presence.set` are handed to the user or
///   conversation actor on the spot, in the order received (a send with an
///   attachment first looks the file up, serially); those actors keep each
///   sender's messages in order and answer once the message is stored.
///
/// Concurrent, and why: reads that change nothing (`history`, `convs`,
/// `room.list`, `room.members`, `room.invites`, `file.read`, `file.url`)
/// and `msg.ack` (cursors only move forward, so acks commute); they may be
/// slow and must not hold up the sends behind them.
#[rustfmt::skip] // a table: one row per request kind
pub(crate) fn route(me: Ctx, frame: ClientFrame, reply: ReplyTo) -> Route {
    use ClientFrame as F;
    use Order::{Concurrent, Serial};
    use contacts::Op;
    match frame {
        F::Ping {} => at_once(reply, |id| ServerFrame::Pong { id }),
        F::Login { password, token, device, .. } => refuse(reply, accounts::relogin(&password, &token, &device)),
        F::Register { username, password } => answer(Serial, reply, async move { accounts::register(&me.svc, &me.peer, &username, &password).await }),
        F::Logout {} => Route { order: Serial, work: Some(accounts::logout(me, reply).boxed_local()) },
        F::Devices {} => answer(Serial, reply, async move { accounts::devices(&me).await }),
        F::DeviceRevoke { device } => handled(Serial, async move { accounts::revoke_device(&me, &device, reply).await }),
        F::PasswordChange { old, new } => answer(Serial, reply, async move { accounts::change_password(&me, &old, &new).await }),
        F::ContactAdd { user } => handled(Serial, contacts::apply(me, Op::Add, user, reply)),
        F::ContactAccept { user } => handled(Serial, contacts::apply(me, Op::Accept, user, reply)),
        F::ContactDecline { user } => handled(Serial, contacts::apply(me, Op::Decline, user, reply)),
        F::ContactRemove { user } => handled(Serial, contacts::apply(me, Op::Remove, user, reply)),
        F::ContactBlock { user } => handled(Serial, contacts::apply(me, Op::Block, user, reply)),
        F::ContactUnblock { user } => handled(Serial, contacts::apply(me, Op::Unblock, user, reply)),
        F::ContactBlocks {} => answer(Serial, reply, async move { contacts::blocks(&me).await }),
        F::ContactList {} => answer(Serial, reply, async move { contacts::list(&me).await }),
        F::PresenceSet { status, note } => { presence::set(me, status, note, reply); Route::done() }
        F::MsgSend { to, room, body, client_id, attachment } => messages::send(me, messages::SendRequest { to, room, body: body.unwrap_or_default(), client_id, attachment }, reply),
        F::Typing { to, room } => { messages::typing(me, to, room, reply); Route::done() }
        F::MsgAck { conv, seq, read } => handled(Concurrent, messages::ack(me, conv, seq, read.unwrap_or(false), reply)),
        F::History { conv, before, limit } => answer(Concurrent, reply, async move { messages::history(&me, &conv, before, limit).await }),
        F::Convs {} => answer(Concurrent, reply, async move { messages::convs(&me).await }),
        F::RoomCreate { name, topic, public } => answer(Serial, reply, async move { rooms::create(&me, &name, topic, public).await }),
        F::RoomJoin { name } => answer(Serial, reply, async move { rooms::join(&me, &name).await }),
        F::RoomLeave { name } => answer(Serial, reply, async move { rooms::leave(&me, &name).await }),
        F::RoomInvite { name, user } => answer(Serial, reply, async move { rooms::invite(&me, &name, &user).await }),
        F::RoomTopic { name, topic } => answer(Serial, reply, async move { rooms::topic(&me, &name, topic).await }),
        F::RoomKick { name, user } => answer(Serial, reply, async move { rooms::kick(&me, &name, &user).await }),
        F::RoomUnban { name, user } => answer(Serial, reply, async move { rooms::unban(&me, &name, &user).await }),
        F::RoomList { q } => answer(Concurrent, reply, async move { rooms::list(&me, q).await }),
        F::RoomInvites {} => answer(Concurrent, reply, async move { rooms::invites(&me).await }),
        F::RoomMembers { name } => answer(Concurrent, reply, async move { rooms::members(&me, &name).await }),
        F::FileBegin { name, mime, size } => answer(Serial, reply, async move { files::begin(&me, name, mime, size).await }),
        F::FileChunk { file, offset, data } => answer(Serial, reply, async move { files::chunk(&me, &file, offset, &data).await }),
        F::FileStatus { file } => answer(Serial, reply, async move { files::status(&me, &file).await }),
        F::FileEnd { file } => answer(Serial, reply, async move { files::end(&me, &file).await }),
        F::FileRead { file, offset, len } => answer(Concurrent, reply, async move { files::read(&me, &file, offset.unwrap_or(0), len).await }),
        F::FileUrl { file } => answer(Concurrent, reply, async move { files::url(&me, &file).await }),
    }
}

/// A request answered on the spot with a frame of its own (`pong`).
fn at_once(reply: ReplyTo, f: impl FnOnce(Option<RequestId>) -> ServerFrame) -> Route {
    reply.frame(f);
    Route::done()
}

/// A request refused on the spot.
fn refuse(reply: ReplyTo, e: ProtoError) -> Route {
    reply.err(e);
    Route::done()
}
