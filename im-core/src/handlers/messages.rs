//! Message requests: `msg.send`, `typing`, `msg.ack`, `history`, `convs`.

use crate::actors::conversation::{Submit, TypingIn};
use crate::actors::user::{SendDirect, TypingTo};
use crate::error::ProtoError;
use crate::files::{self, attachment_meta};
use crate::handlers::{Ctx, Route};
use crate::ids::{ConvId, RoomName, UserId};
use crate::protocol::AttachmentMeta;
use crate::protocol::{ConvEntry, Reply, ServerFrame};
use crate::reply::ReplyTo;
use crate::store::CursorUpdate;

/// Longest `client_id`, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Default and largest `history` page.
const HISTORY_DEFAULT: i64 = 50;
const HISTORY_MAX: i64 = 200;
/// A history page stops early past this many bytes of frames.
const HISTORY_PAGE_BYTES: usize = 1 << 20;

pub(crate) use crate::files::{msg_frame, with_metas};

/// The recipient of a `msg.send` or `typing`, validated in protocol order.
enum Target {
    User(UserId),
    Room(RoomName),
}

fn target(me: &Ctx, to: Option<String>, room: Option<String>) -> Result<Target, ProtoError> {
    match (to, room) {
        (Some(to), None) => {
            // A name that cannot exist is an unknown user.
            let u = match UserId::parse(&to) {
                Some(u) => u,
                None => return Err(ProtoError::not_found("no such user")),
            };
            if u == me.user {
                return Err(ProtoError::bad_request("cannot message yourself"));
            }
            Ok(Target::User(u))
        }
        (None, Some(room)) => RoomName::parse(&room)
            .map(Target::Room)
            .ok_or_else(|| ProtoError::not_found("no such room")),
        _ => Err(ProtoError::bad_request(
            "give exactly one of `to` and `room`",
        )),
    }
}

/// The fields of a `msg.send`.
pub(crate) struct SendRequest {
    pub to: Option<String>,
    pub room: Option<String>,
    pub body: String,
    pub client_id: Option<String>,
    /// A file id.
    pub attachment: Option<String>,
}

/// The checks of `msg.send` that need nothing but the frame: fields
/// (`bad_request`), then sizes (`too_large`).
fn check_send(me: &Ctx, r: &SendRequest) -> Result<(), ProtoError> {
    let limits = &me.svc.config.limits;
    if r.to.is_some() == r.room.is_some() {
        return Err(ProtoError::bad_request(
            "give exactly one of `to` and `room`",
        ));
    }
    if r.client_id
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CLIENT_ID_CHARS)
    {
        return Err(ProtoError::bad_request(
            "client_id is at most 64 characters",
        ));
    }
    if r.attachment.is_none() && r.body.chars().all(char::is_whitespace) {
        return Err(ProtoError::bad_request("empty message"));
    }
    if r.to.as_deref().and_then(UserId::parse).as_ref() == Some(&me.user) {
        return Err(ProtoError::bad_request("cannot message yourself"));
    }
    if r.body.len() > limits.max_body {
        return Err(ProtoError::too_large(format!(
            "body is over {} bytes",
            limits.max_body
        )));
    }
    Ok(())
}

/// `msg.send`: checks the frame, finds the attachment (a file the sender
/// may read), then hands the message to our user actor (direct: it checks
/// the permission) or to the room's actor, which stores, answers and fans
/// out.
///
/// Without an attachment the hand-off happens now, with no future to
/// schedule (the common case, kept cheap); with one, the file is looked up
/// first, in order with this session's other requests.
pub(crate) fn send(me: Ctx, r: SendRequest, reply: ReplyTo) -> Route {
    if let Err(e) = check_send(&me, &r) {
        reply.err(e);
        return Route::done();
    }
    let Some(file) = r.attachment.clone() else {
        hand_off(me, r, None, reply);
        return Route::done();
    };
    Route::serial(async move {
        match files::readable(&me.svc, &me.user, &file).await {
            Ok(f) => match attachment_meta(&f) {
                Some(meta) => hand_off(me, r, Some(meta), reply),
                None => reply.err(ProtoError::not_found("no such file")),
            },
            Err(e) => reply.err(e),
        }
    })
}

/// Gives a checked send to our user actor (direct) or the room's actor.
fn hand_off(me: Ctx, r: SendRequest, attachment: Option<AttachmentMeta>, reply: ReplyTo) {
    let target = match target(&me, r.to, r.room) {
        Ok(t) => t,
        Err(e) => return reply.err(e),
    };
    let submit = Submit {
        from: me.user.clone(),
        device: me.device.clone(),
        session: me.session,
        body: r.body,
        client_id: r.client_id,
        attachment,
        reply,
        ticket: None,
        checked: false,
    };
    match target {
        Target::User(to) => me.user_addr.do_send(SendDirect { to, submit }),
        Target::Room(room) => match me.svc.conv_actor(&ConvId::Room(room)) {
            Some(lease) => lease.addr.do_send(submit.with_ticket(lease.ticket)),
            None => submit
                .reply
                .err(ProtoError::internal("conversation directory unavailable")),
        },
    }
}

/// `typing`.
pub(crate) fn typing(me: Ctx, to: Option<String>, room: Option<String>, reply: ReplyTo) {
    match target(&me, to, room) {
        Ok(Target::User(to)) => me.user_addr.do_send(TypingTo { to, reply }),
        Ok(Target::Room(room)) => match me.svc.conv_actor(&ConvId::Room(room)) {
            Some(lease) => lease.addr.do_send(TypingIn {
                from: me.user.clone(),
                reply,
                _ticket: Some(lease.ticket),
            }),
            None => reply.err(ProtoError::internal("conversation directory unavailable")),
        },
        Err(e) => reply.err(e),
    }
}

/// Whether `me` belongs to `conv`; conversations that don't parse don't exist.
async fn member_conv(me: &Ctx, conv: &str) -> Result<ConvId, ProtoError> {
    let not_found = || ProtoError::not_found("no such conversation");
    let conv = ConvId::parse(conv).ok_or_else(not_found)?;
    match &conv {
        ConvId::Direct(a, b) if *a == me.user || *b == me.user => Ok(conv),
        ConvId::Direct(..) => Err(not_found()),
        ConvId::Room(_) => {
            let (c, u) = (conv.clone(), me.user.clone());
            if me.svc.db(move |s| s.is_member(&c, &u)).await? {
                Ok(conv)
            } else {
                Err(not_found())
            }
        }
    }
}

/// `msg.ack`: moves cursors (coalesced by the writer), then sends receipts.
pub(crate) async fn ack(me: Ctx, conv: String, seq: u64, read: bool, reply: ReplyTo) {
    let conv = match member_conv(&me, &conv).await {
        Ok(c) => c,
        Err(e) => return reply.err(e),
    };
    let update = CursorUpdate {
        user: me.user.clone(),
        device: me.device.clone(),
        conv: conv.clone(),
        delivered: seq,
        read,
    };
    match me.svc.writer.cursor(update).await {
        Ok(outcome) => {
            reply.ok(Reply::Empty);
            if let Some(seq) = outcome.read_advanced_to {
                let frame = ServerFrame::Receipt {
                    conv: conv.clone(),
                    user: me.user.clone(),
                    seq,
                    read: true,
                }
                .encode();
                // My other sessions, and the peer's, on every node.
                let to = std::iter::once(&me.user).chain(conv.peer_of(&me.user));
                me.svc.emit_to(to, &frame, Some(me.session));
            }
        }
        Err(e) => reply.err(e),
    }
}

/// `history`.
pub(crate) async fn history(
    me: &Ctx,
    conv: &str,
    before: Option<u64>,
    limit: Option<i64>,
) -> Result<Reply, ProtoError> {
    let limit = limit.unwrap_or(HISTORY_DEFAULT);
    if limit < 1 {
        return Err(ProtoError::bad_request("limit must be at least 1"));
    }
    let limit = limit.min(HISTORY_MAX) as usize;
    let conv = member_conv(me, conv).await?;
    let page = me
        .svc
        .db(move |s| with_metas(s, s.messages_before(&conv, before, limit + 1)?))
        .await?;
    let (mut page, metas) = page;
    let mut more = page.len() > limit;
    if more {
        page.remove(0);
    }
    // Keep the newest messages that fit in the byte budget.
    let mut bytes = 0;
    let mut keep = page.len();
    for (i, m) in page.iter().enumerate().rev() {
        bytes += m.body.len() + 160;
        if bytes > HISTORY_PAGE_BYTES && keep != page.len() {
            more = true;
            break;
        }
        keep = i;
    }
    let messages = page
        .split_off(keep)
        .into_iter()
        .map(|m| msg_frame(m, &metas))
        .collect();
    Ok(Reply::History { messages, more })
}

/// `convs`.
pub(crate) async fn convs(me: &Ctx) -> Result<Reply, ProtoError> {
    let (u, d) = (me.user.clone(), me.device.clone());
    let list = me
        .svc
        .db(move |store| {
            let list = store.conversations(&u, &d)?;
            let metas = files::metas(
                store,
                list.iter()
                    .filter_map(|c| c.last.as_ref()?.attachment.clone()),
            )?;
            Ok((list, metas))
        })
        .await?;
    let (list, metas) = list;
    let convs = list
        .into_iter()
        .filter(|c| !(c.conv.is_direct() && c.last_seq == 0))
        .map(|c| ConvEntry {
            conv: c.conv,
            last_seq: c.last_seq,
            read_seq: c.read_seq,
            unread: c.unread,
            last: c.last.map(|m| msg_frame(m, &metas)),
            peer_read_seq: c.peer_read_seq,
        })
        .collect();
    Ok(Reply::Convs { convs })
}
