//! Message requests: send, typing, presence, acknowledgements, history,
//! conversation list, and the login replay.

use crate::conversation::{Submit, TypingIn};
use crate::error::ProtoError;
use crate::files::{self, AttachmentMeta};
use crate::ids::{ConvId, RoomName, UserId};
use crate::protocol::{ConvEntry, MsgFrame, Reply, ServerFrame, Status};
use crate::reply::ReplyTo;
use crate::session::{Me, Replayed};
use crate::store::{CursorUpdate, StoredMessage};
use crate::transport::Outbox;
use crate::user::{Emit, SendDirect, SetPresence, TypingTo};

/// Longest `client_id`, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Longest presence note, in characters.
pub const MAX_NOTE_CHARS: usize = 256;
/// Default and largest `history` page.
const HISTORY_DEFAULT: i64 = 50;
const HISTORY_MAX: i64 = 200;
/// A history page stops early past this many bytes of frames.
const HISTORY_PAGE_BYTES: usize = 1 << 20;
/// Messages read from the store per replay page.
const REPLAY_PAGE: u64 = 200;

/// The wire form of a stored message.
pub(crate) fn msg_frame(m: StoredMessage, metas: &Metas) -> ServerFrame {
    let attachment = m.attachment.as_ref().and_then(|id| metas.get(id).cloned());
    ServerFrame::Msg(MsgFrame {
        conv: m.conv,
        seq: m.seq,
        from: m.from,
        body: m.body,
        ts: m.ts,
        client_id: m.client_id,
        attachment,
    })
}

/// Attachment metadata by file id.
pub(crate) type Metas = std::collections::HashMap<String, AttachmentMeta>;

/// Messages with the metadata of their attachments (on the pool).
fn with_metas(
    s: &dyn crate::store::Store,
    msgs: Vec<StoredMessage>,
) -> Result<(Vec<StoredMessage>, Metas), crate::error::StoreError> {
    let metas = files::metas(s, msgs.iter().filter_map(|m| m.attachment.clone()))?;
    Ok((msgs, metas))
}

/// The recipient of a `msg.send` or `typing`, validated in protocol order.
enum Target {
    User(UserId),
    Room(RoomName),
}

fn target(me: &Me, to: Option<String>, room: Option<String>) -> Result<Target, ProtoError> {
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

/// The checks of `msg.send` that need nothing but the frame: fields
/// (`bad_request`), then sizes (`too_large`).
pub(crate) fn check_send(
    me: &Me,
    to: &Option<String>,
    room: &Option<String>,
    body: &str,
    client_id: &Option<String>,
    has_attachment: bool,
) -> Result<(), ProtoError> {
    let limits = &me.hub.config().limits;
    if to.is_some() == room.is_some() {
        return Err(ProtoError::bad_request(
            "give exactly one of `to` and `room`",
        ));
    }
    if client_id
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CLIENT_ID_CHARS)
    {
        return Err(ProtoError::bad_request(
            "client_id is at most 64 characters",
        ));
    }
    if !has_attachment && body.chars().all(char::is_whitespace) {
        return Err(ProtoError::bad_request("empty message"));
    }
    if to.as_deref().and_then(UserId::parse).as_ref() == Some(&me.user) {
        return Err(ProtoError::bad_request("cannot message yourself"));
    }
    if body.len() > limits.max_body {
        return Err(ProtoError::too_large(format!(
            "body is over {} bytes",
            limits.max_body
        )));
    }
    Ok(())
}

/// `msg.send` after [`check_send`] (and, with an attachment, after the
/// file was found readable): permission is checked by our user actor
/// (direct) or the room's actor, which stores and fans out.
pub(crate) fn send(
    me: &Me,
    to: Option<String>,
    room: Option<String>,
    body: String,
    client_id: Option<String>,
    attachment: Option<AttachmentMeta>,
    reply: ReplyTo,
) {
    let target = match target(me, to, room) {
        Ok(t) => t,
        Err(e) => return reply.err(e),
    };
    let submit = Submit {
        from: me.user.clone(),
        device: me.device.clone(),
        session: me.session,
        body,
        client_id,
        attachment,
        reply,
        ticket: None,
        checked: false,
    };
    match target {
        Target::User(to) => me.user_addr.do_send(SendDirect { to, submit }),
        Target::Room(room) => match me.hub.conv_actor(&ConvId::Room(room)) {
            Some(lease) => lease.addr.do_send(submit.with_ticket(lease.ticket)),
            None => submit
                .reply
                .err(ProtoError::internal("conversation directory unavailable")),
        },
    }
}

/// `typing`.
pub(crate) fn typing(me: &Me, to: Option<String>, room: Option<String>, reply: ReplyTo) {
    match target(me, to, room) {
        Ok(Target::User(to)) => me.user_addr.do_send(TypingTo { to, reply }),
        Ok(Target::Room(room)) => match me.hub.conv_actor(&ConvId::Room(room)) {
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

/// `presence.set`.
pub(crate) fn presence_set(me: &Me, status: Status, note: Option<String>, reply: ReplyTo) {
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return reply.err(ProtoError::too_large("note is at most 256 characters"));
    }
    me.user_addr.do_send(SetPresence {
        status,
        note,
        session: me.session,
        reply,
    });
}

/// Whether `me` belongs to `conv`; conversations that don't parse don't exist.
async fn member_conv(me: &Me, conv: &str) -> Result<ConvId, ProtoError> {
    let not_found = || ProtoError::not_found("no such conversation");
    let conv = ConvId::parse(conv).ok_or_else(not_found)?;
    match &conv {
        ConvId::Direct(a, b) if *a == me.user || *b == me.user => Ok(conv),
        ConvId::Direct(..) => Err(not_found()),
        ConvId::Room(_) => {
            let store = me.hub.inner.store.clone();
            let (c, u) = (conv.clone(), me.user.clone());
            if me
                .hub
                .inner
                .pool
                .run(move || store.is_member(&c, &u))
                .await??
            {
                Ok(conv)
            } else {
                Err(not_found())
            }
        }
    }
}

/// `msg.ack`: moves cursors (coalesced by the writer), then sends receipts.
pub(crate) async fn ack(me: Me, conv: String, seq: u64, read: bool, reply: ReplyTo) {
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
    match me.hub.inner.writer.cursor(update).await {
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
                me.user_addr.do_send(Emit {
                    frame: frame.clone(),
                    except: Some(me.session),
                });
                if let Some(peer) = conv.peer_of(&me.user) {
                    if let Some(l) = me.hub.inner.users.get(peer) {
                        l.addr.do_send(Emit {
                            frame,
                            except: None,
                        });
                    }
                }
            }
        }
        Err(e) => reply.err(e),
    }
}

/// `history`.
pub(crate) async fn history(
    me: &Me,
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
    let store = me.hub.inner.store.clone();
    let page = me
        .hub
        .inner
        .pool
        .run(move || with_metas(&*store, store.messages_before(&conv, before, limit + 1)?))
        .await??;
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
pub(crate) async fn convs(me: &Me) -> Result<Reply, ProtoError> {
    let store = me.hub.inner.store.clone();
    let (u, d) = (me.user.clone(), me.device.clone());
    let list = me
        .hub
        .inner
        .pool
        .run(move || -> Result<_, crate::error::StoreError> {
            let list = store.conversations(&u, &d)?;
            let metas = files::metas(
                &*store,
                list.iter()
                    .filter_map(|c| c.last.as_ref()?.attachment.clone()),
            )?;
            Ok((list, metas))
        })
        .await??;
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

/// Writes the login replay for `me`'s device: every conversation with
/// messages after the device's delivered cursor, most recently active
/// first, oldest first within each, capped per conversation and in all
/// (with `gap` frames). Frames are queued as the connection drains, never
/// all at once. Returns the highest seq replayed per conversation.
pub(crate) async fn replay(me: &Me, outbox: &Outbox) -> Replayed {
    let mut replayed = Replayed::new();
    let limits = &me.hub.config().limits;
    let store = me.hub.inner.store.clone();
    let (u, d) = (me.user.clone(), me.device.clone());
    let list = match me
        .hub
        .inner
        .pool
        .run(move || store.conversations(&u, &d))
        .await
    {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "replay: could not list conversations");
            return replayed;
        }
        Err(_) => return replayed,
    };
    let mut left = limits.replay_total_max;
    for c in list {
        if c.last_seq <= c.delivered_seq {
            continue;
        }
        let pending = c.last_seq - c.delivered_seq;
        let n = pending.min(limits.replay_max).min(left);
        left -= n;
        let first = c.last_seq - n + 1;
        if n < pending
            && !outbox
                .push_wait(
                    ServerFrame::Gap {
                        conv: c.conv.clone(),
                        before: first,
                    }
                    .encode(),
                )
                .await
        {
            return replayed;
        }
        let mut after = first - 1;
        while after < c.last_seq {
            let store = me.hub.inner.store.clone();
            let conv = c.conv.clone();
            let take = REPLAY_PAGE.min(c.last_seq - after) as usize;
            let page = match me
                .hub
                .inner
                .pool
                .run(move || with_metas(&*store, store.messages_after(&conv, after, take)?))
                .await
            {
                Ok(Ok(p)) if !p.0.is_empty() => p,
                _ => break,
            };
            let (page, metas) = page;
            for m in page {
                after = m.seq;
                if !outbox.push_wait(msg_frame(m, &metas).encode()).await {
                    return replayed;
                }
            }
            replayed.insert(c.conv.clone(), after);
        }
    }
    replayed
}
