//! Messages and cursors: group-committed appends, paging, membership of
//! conversations and the per-user listing of conversations.

use crate::error::StoreResult;
use crate::ids::{ConvId, Millis, UserId};

/// A message to append.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Target conversation.
    pub conv: ConvId,
    /// Sender.
    pub from: UserId,
    /// Sending device: its delivered cursor follows the message when it was
    /// just below it (and so does the sender's read cursor).
    pub device: String,
    /// Text, possibly empty.
    pub body: String,
    /// Idempotency key; (conv, from, client_id) is unique.
    pub client_id: Option<String>,
    /// Attached file id.
    pub attachment: Option<String>,
    /// Server time when the message was received; the stored `ts` is at
    /// least this and never below the conversation's previous `ts`.
    pub now: Millis,
    /// The sender's right to post, checked inside the commit; `None`
    /// appends unchecked.
    pub guard: Option<SendGuard>,
}

/// The checks a store makes inside the commit, against what it holds at
/// that moment, before it appends a message. The server's actors already
/// refuse what they know to be forbidden; this catches what they cannot
/// know yet: a block, a contact removal, a kick or a device revocation
/// just made through another process sharing the store.
///
/// Always refused ([`Refusal::Credentials`]): a sending device whose token
/// is revoked (or that has none), and a suspended account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendGuard {
    /// Direct conversations: also refused ([`Refusal::Conversation`])
    /// unless the two users are mutual contacts. Either user blocking the
    /// other always refuses; in a room, so does not being a member.
    pub require_contact: bool,
}

/// Why the store refused to append a guarded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The sending device's token is revoked, or the account suspended.
    Credentials,
    /// The sender may not post in this conversation.
    Conversation,
}

/// Where an appended message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Assigned sequence number.
    pub seq: u64,
    /// Assigned timestamp.
    pub ts: Millis,
    /// True when the `client_id` had been seen: nothing new was written.
    pub duplicate: bool,
    /// Set when the [`SendGuard`] refused the message: nothing was
    /// written, and `seq` and `ts` are 0.
    pub refused: Option<Refusal>,
}

impl Appended {
    /// A refused message's result.
    pub fn refused(why: Refusal) -> Appended {
        Appended {
            seq: 0,
            ts: 0,
            duplicate: false,
            refused: Some(why),
        }
    }
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Conversation.
    pub conv: ConvId,
    /// Sequence number.
    pub seq: u64,
    /// Sender.
    pub from: UserId,
    /// Text.
    pub body: String,
    /// Timestamp.
    pub ts: Millis,
    /// Idempotency key.
    pub client_id: Option<String>,
    /// Attached file id.
    pub attachment: Option<String>,
}

/// Moves a device's delivered cursor and/or a user's read cursor forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorUpdate {
    /// The user.
    pub user: UserId,
    /// The device whose delivered cursor moves.
    pub device: String,
    /// The conversation.
    pub conv: ConvId,
    /// New delivered cursor (clamped to the last seq; never moves back).
    pub delivered: u64,
    /// Also move the user's read cursor there.
    pub read: bool,
}

/// What a cursor update changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CursorOutcome {
    /// The new read cursor when it moved forward.
    pub read_advanced_to: Option<u64>,
}

/// A conversation as listed for one user and device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSummary {
    /// Conversation.
    pub conv: ConvId,
    /// Highest seq (0 when empty).
    pub last_seq: u64,
    /// Time of last activity, for ordering (last message, else joining).
    pub activity: Millis,
    /// The user's read cursor.
    pub read_seq: u64,
    /// The device's delivered cursor.
    pub delivered_seq: u64,
    /// Messages from others after `read_seq`.
    pub unread: u64,
    /// The other member's read cursor (direct conversations only).
    pub peer_read_seq: Option<u64>,
    /// The newest message.
    pub last: Option<StoredMessage>,
}

/// Messages, cursors and conversation listings.
pub trait MessageStore {
    /// Appends messages and applies cursor updates in one transaction:
    /// assigns gapless per-conversation `seq`, deduplicates by
    /// (conv, from, client_id), adds both users of a direct conversation as
    /// members on its first message, and refuses (writing nothing) the
    /// messages whose [`SendGuard`] fails, after deduplication: a retry of
    /// a stored message gets its original result. Results are in input
    /// order.
    fn write_batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)>;
    /// The original result of an earlier send with this `client_id`.
    fn find_client_id(
        &self,
        conv: &ConvId,
        from: &UserId,
        client_id: &str,
    ) -> StoreResult<Option<Appended>>;
    /// Up to `limit` messages with `seq > after`, ascending.
    fn messages_after(
        &self,
        conv: &ConvId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// The newest `limit` messages with `seq < before` (all when `None`), ascending.
    fn messages_before(
        &self,
        conv: &ConvId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// Whether `user` belongs to `conv` (direct conversations: once it has a message).
    fn is_member(&self, conv: &ConvId, user: &UserId) -> StoreResult<bool>;
    /// Every conversation of `user` with cursors for `device`, most recently
    /// active first.
    fn conversations(&self, user: &UserId, device: &str) -> StoreResult<Vec<ConvSummary>>;
}
