//! The storage boundary: synchronous traits the core calls only from its
//! blocking pool and its group-commit writer thread, never from an actor.
//!
//! Storage is split by domain, one trait each, and [`Store`] joins them:
//! a store implements every domain trait and gets [`Store`] for free, so a
//! store missing a method fails to compile. Callers holding an
//! `Arc<dyn Store>` bring the domain traits into scope with
//! `use im_core::store::prelude::*;`.
//!
//! Per-conversation `seq` numbers and `client_id` deduplication are the
//! store's job, inside the transaction that writes the message, so that
//! several server processes sharing one database can never hand out the same
//! number twice. [`MessageStore::write_batch`] takes many messages from many
//! conversations plus cursor updates and commits them together (group
//! commit): a durable store turns it into one transaction.
//!
//! ## Layout
//! - [`accounts`]: [`AccountStore`]; users, devices and tokens, the server
//!   secret ([`UserRecord`], [`DeviceRecord`]).
//! - [`contacts`]: [`ContactStore`]; relations and blocks ([`Relation`],
//!   [`ContactState`]).
//! - [`messages`]: [`MessageStore`]; group-committed appends, cursors,
//!   paging, membership and conversation listings ([`NewMessage`],
//!   [`CursorUpdate`], [`ConvSummary`], ...).
//! - [`rooms`]: [`RoomStore`]; rooms, members, bans and invitations
//!   ([`RoomRecord`], [`RoomMember`], [`RoomListing`]).
//! - [`files`]: [`FileStore`]; upload metadata ([`FileRecord`]).
//! - [`prelude`]: every domain trait and [`Store`], for one `use`.
//! - `memory`: [`MemoryStore`], the reference implementation, one file per
//!   domain.

pub mod accounts;
pub mod changes;
pub mod contacts;
pub mod files;
mod memory;
pub mod messages;
pub mod rooms;

pub use accounts::{AccountStore, DeviceRecord, Granted, TokenGrant, UserRecord};
pub use changes::{Change, ChangeRecord, ChangeStore};
pub use contacts::{ContactState, ContactStore, Relation};
pub use files::{FileRecord, FileStore};
#[cfg(feature = "testing")]
pub use memory::CommitGate;
pub use memory::MemoryStore;
pub use messages::{
    Appended, ConvSummary, CursorOutcome, CursorUpdate, MessageStore, NewMessage, Refusal,
    SendGuard, StoredMessage,
};
pub use rooms::{RoomListing, RoomMember, RoomRecord, RoomRole, RoomStore};

/// Storage for everything the core keeps: every domain trait at once.
/// Implementations are synchronous and thread-safe; the core calls them
/// only off the async threads. Implemented for every type that implements
/// the domain traits.
pub trait Store:
    AccountStore
    + ContactStore
    + MessageStore
    + RoomStore
    + FileStore
    + ChangeStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: AccountStore
        + ContactStore
        + MessageStore
        + RoomStore
        + FileStore
        + ChangeStore
        + Send
        + Sync
        + 'static
{
}

/// The domain traits and [`Store`]: `use im_core::store::prelude::*;` lets
/// an `Arc<dyn Store>` call every store method.
pub mod prelude {
    pub use super::{
        AccountStore, ChangeStore, ContactStore, FileStore, MessageStore, RoomStore, Store,
    };
}
