//! Contacts: the relation between two users, and blocks.

use crate::error::StoreResult;
use crate::ids::UserId;

/// The contact relation between two users, seen from neither side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Nothing.
    None,
    /// `by` asked the other user, who has not answered.
    Requested {
        /// Who asked.
        by: UserId,
    },
    /// Both agreed.
    Mutual,
}

/// A contact as seen by one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactState {
    /// Both agreed.
    Mutual,
    /// This user asked.
    PendingOut,
    /// The other user asked.
    PendingIn,
}

/// Contact relations and blocks.
pub trait ContactStore {
    /// The relation between two users.
    fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Relation>;
    /// Sets the relation between two users.
    fn set_relation(&self, a: &UserId, b: &UserId, rel: &Relation) -> StoreResult<()>;
    /// A user's contacts and pending requests, by peer name.
    fn contacts(&self, user: &UserId) -> StoreResult<Vec<(UserId, ContactState)>>;
    /// Blocks or unblocks `target` for `by`.
    fn set_block(&self, by: &UserId, target: &UserId, blocked: bool) -> StoreResult<()>;
    /// Users `by` has blocked, sorted.
    fn blocks(&self, by: &UserId) -> StoreResult<Vec<UserId>>;
    /// Users who have blocked `target`, sorted.
    fn blocked_by(&self, target: &UserId) -> StoreResult<Vec<UserId>>;
}
