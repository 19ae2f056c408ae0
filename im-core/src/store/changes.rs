//! Changes made by one server process that the others sharing the store
//! must apply to their live actors: a log in the store, appended to with
//! the change and read by every process from where it left off. This is
//! the one seam cross-process notification goes through (a message bus can
//! later carry the same [`Change`]s).

use crate::error::StoreResult;
use crate::ids::{Millis, RoomName, UserId};

/// Something live actors of other processes must learn.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The relation or the blocks between two users changed.
    Contact {
        /// One user.
        a: UserId,
        /// The other.
        b: UserId,
    },
    /// A room's members, owner or bans changed.
    Room {
        /// The room.
        room: RoomName,
    },
    /// The token with this hash was revoked: its sessions close.
    TokenRevoked {
        /// Whose.
        user: UserId,
        /// SHA-256 (hex) of the revoked token.
        token_hash: String,
    },
    /// Every token of the user but `keep` (a token hash) was revoked.
    TokensRevoked {
        /// Whose.
        user: UserId,
        /// The one token hash that stays valid.
        keep: Option<String>,
    },
}

/// A change in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Position in the log, increasing.
    pub id: u64,
    /// The process that made it (each hub picks a random id at start).
    pub origin: u64,
    /// What changed.
    pub change: Change,
}

/// The change log.
pub trait ChangeStore {
    /// Appends a change made by process `origin`.
    fn publish_change(&self, origin: u64, change: &Change, at: Millis) -> StoreResult<()>;
    /// Up to `limit` changes after position `after`, oldest first.
    fn changes_after(&self, after: u64, limit: usize) -> StoreResult<Vec<ChangeRecord>>;
    /// The position of the newest change (0: none).
    fn last_change_id(&self) -> StoreResult<u64>;
    /// Forgets changes made before `before`.
    fn prune_changes(&self, before: Millis) -> StoreResult<()>;
}
