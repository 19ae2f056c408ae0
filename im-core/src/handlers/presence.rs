//! `presence.set`: the user's actor keeps the status and tells the
//! user's other sessions and mutual contacts.

use crate::actors::user::SetPresence;
use crate::error::ProtoError;
use crate::handlers::Ctx;
use crate::protocol::Status;
use crate::reply::ReplyTo;

/// Longest presence note, in characters.
pub const MAX_NOTE_CHARS: usize = 256;

/// `presence.set`: answered by the user's actor, before it sends the new
/// presence anywhere.
pub(crate) fn set(me: Ctx, status: Status, note: Option<String>, reply: ReplyTo) {
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
