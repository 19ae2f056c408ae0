//! # im-store
//!
//! Durable implementations of [`im_core::Store`] on [diesel] 2 with r2d2
//! connection pools: SQLite (cargo feature `sqlite`, on by default, with a
//! bundled libsqlite3) and PostgreSQL (cargo feature `postgres`, with a
//! bundled libpq). They behave exactly like [`im_core::MemoryStore`] on
//! every method; `tests/conformance/` runs one suite, a module per
//! domain, against all three.
//!
//! ```no_run
//! use im_store::{open, StoreOptions};
//!
//! let store = open("sqlite://im.db", &StoreOptions::default())?;
//! // let hub = im_core::Hub::new(im_core::Config::default(), store);
//! # let _ = store;
//! # Ok::<(), im_store::OpenError>(())
//! ```
//!
//! ## Layout
//! - [`open`]: opens the store a URL names: `memory:`
//!   ([`im_core::MemoryStore`]), `sqlite://PATH` (relative to the working
//!   directory; `sqlite:///abs/path`, `sqlite://:memory:`) or
//!   `postgres://...` / `postgresql://...`.
//! - [`StoreOptions`], [`Synchronous`]: durability, timeouts, pool size,
//!   PostgreSQL schema.
//! - [`OpenError`]: why a store could not be opened. Failures after opening
//!   are [`im_core::error::StoreError`]s: `Unavailable` for anything the
//!   database, the network or the pool did (nothing was written), `Corrupt`
//!   when stored data breaks an invariant.
//! - [`FsBlobStore`]: file bytes in a directory, content-addressed by
//!   SHA-256 under server-generated names.
//! - [`SqlStore`]: every store trait, implemented once over a backend
//!   (`store.rs`).
//! - [`SqliteStore`] (feature `sqlite`): one file in WAL mode, one writer
//!   connection, a pool of read-only connections ([`SqliteDb`]).
//! - [`PgStore`] (feature `postgres`): a pool; optional schema per store
//!   ([`PgDb`]).
//! - `migrations/sqlite`, `migrations/postgres`: the schema, one directory
//!   per dialect, embedded in the binary and applied when a store opens.
//! - Internals, one module per domain of [`im_core::store`], each written
//!   once for both backends: `accounts` (users, devices, tokens, the server
//!   secret), `contacts` (relations, blocks), `messages` (the group commit,
//!   paging, membership, the conversation listing), `rooms`, `files`,
//!   `changes` (the change log other processes read). Each holds its SQL as
//!   prepared statements and functions generic over `db`'s `Db` trait;
//!   [`SqlStore`] implements the domain traits by calling them.
//! - The rest of the internals: `db` (what a backend provides: connections,
//!   transactions, how a conversation row is locked, the group commit),
//!   `sql` (statements diesel keeps prepared, and the bounds that let one
//!   statement run on either backend), `batch` (the group-commit algorithm
//!   over the backend's set-based steps), `schema` (diesel tables), `error`,
//!   and the backends: `sqlite`, `pg`.
//!
//! ## Backend-generic code
//! diesel's query builder cannot be used generically over an unknown
//! backend without one bound per query (`LIMIT` and `ON CONFLICT` render
//! differently on each, and upsert types cannot be named), and
//! `#[derive(MultiConnection)]` has no `ON CONFLICT` and boxes every bound
//! value. So the domain modules write plain SQL (the dialect both
//! databases share) as statement types, which diesel prepares once per
//! connection; what generic code must know of the backend (the value types
//! it binds, the rows it reads) is stated as bounds on the backend, and the
//! compiler checks each statement for each backend. Only what truly differs
//! is per backend: [`SqliteDb`] and [`PgDb`] implement `Db`, and
//! `batch::BatchOps` (one prepared statement per row on SQLite, a fixed
//! number of array statements on PostgreSQL). [`SqlStore`] implements
//! every store trait once, over any `Db`: [`SqliteStore`] and [`PgStore`]
//! are `SqlStore<SqliteDb>` and `SqlStore<PgDb>`.
//!
//! ## Schema
//! `users`, `devices`, `relations`, `blocks`; `conversations` (one row per
//! conversation, which is also its `seq` counter: `last_seq`, `last_ts`,
//! and `activity` for ordering); `messages` (`UNIQUE (conv_id, seq)`, an
//! index on `(conv_id, sender, seq)` for unread counts); `client_ids`
//! (primary key `(conv_id, sender, client_id)`: idempotency, with the
//! original `seq` and `ts`); `conv_users` (membership, read cursor and, for
//! room members, the seq their cursors start at); `delivered` (delivered
//! cursor per user, device and conversation); `rooms`, `room_members`,
//! `room_bans`, `room_invites`; `files` (upload metadata, indexed by
//! uploader, creation time and SHA-256) and `file_convs` (where each file
//! was sent, primary key `(file_id, conv)`); `server_settings` (key/value:
//! the 32-byte secret signing download links, created by whichever process
//! asks first: `INSERT ... ON CONFLICT DO NOTHING`, then read back). Partial
//! indexes answer token lookups without a user name (`devices_by_token`)
//! and the list of suspended accounts (`users_suspended`). Each schema
//! change is a migration directory of its own: databases that ran the
//! first one only get the later ones when a store opens them.
//!
//! ## Writing
//! [`write_batch`](im_core::store::MessageStore::write_batch) is one
//! transaction per call: every message and cursor of the batch commits
//! together or not at all. It locks the counter rows of the conversations
//! it touches, in name order, before reading them; `seq` is assigned from
//! the locked row, so several server processes can share one PostgreSQL
//! database (or one SQLite file) without ever handing out a number twice,
//! and `ts` never decreases within a conversation. Room joins and leaves
//! take the same lock. On SQLite the write path is one prepared statement
//! per row on the writer connection; on PostgreSQL a fixed number of
//! statements over arrays per batch.

#![warn(missing_docs)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use im_core::{MemoryStore, Store};

mod error;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod accounts;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod batch;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod changes;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod contacts;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod db;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod files;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod messages;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rights;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rooms;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod schema;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod store;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::SqlStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

mod blobs;

pub use blobs::FsBlobStore;
pub use error::OpenError;
#[cfg(feature = "postgres")]
pub use pg::{PgDb, PgStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteDb, SqliteStore};

/// SQLite's `PRAGMA synchronous`: how hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// No fsync: fastest; a power loss can lose recent commits or, rarely,
    /// corrupt the database.
    Off,
    /// In WAL mode, fsync at checkpoints only: a power loss can lose the
    /// most recent commits, never consistency.
    Normal,
    /// fsync the WAL at every commit: a committed batch survives power
    /// loss (the default).
    #[default]
    Full,
    /// Like `Full`, plus an fsync of the directory after a journal change.
    Extra,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

impl FromStr for Synchronous {
    type Err = OpenError;

    /// Parses `off`, `normal`, `full` or `extra` (any case).
    fn from_str(s: &str) -> Result<Synchronous, OpenError> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Synchronous::Off),
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            "extra" => Ok(Synchronous::Extra),
            _ => Err(OpenError::InvalidOption(format!(
                "synchronous must be off, normal, full or extra, not {s:?}"
            ))),
        }
    }
}

/// How to open a store. Fields a backend does not use are ignored.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// SQLite: `PRAGMA synchronous` (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// SQLite: how long a statement waits for another connection's (or
    /// process's) lock before failing with `unavailable` (default 3 s). A
    /// send queued behind another waits up to twice this while the lock
    /// is held elsewhere, so it must stay well below the time after which
    /// a client gives up on an answer.
    pub busy_timeout: Duration,
    /// Most pooled connections: the readers of SQLite (which has one
    /// writer besides), every connection of PostgreSQL (default 8).
    pub pool_size: u32,
    /// How long opening the store waits for its first connection (default
    /// 10 s).
    pub connect_timeout: Duration,
    /// How long a request waits for a pooled connection before it fails
    /// with `unavailable` (default 3 s). While the database is down, every
    /// request waits this long, and a send queued behind another up to
    /// twice as long, so it must stay well below the time after which a
    /// client gives up on an answer.
    pub pool_timeout: Duration,
    /// PostgreSQL: keep every table in this schema, created if missing
    /// (default `None`: the connection's default `search_path`).
    pub pg_schema: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(3),
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
            pool_timeout: Duration::from_secs(3),
            pg_schema: None,
        }
    }
}

/// Opens the store `url` names:
/// - `memory:`: an [`im_core::MemoryStore`] (nothing survives the process);
/// - `sqlite://PATH`: a [`SqliteStore`] on `PATH`, relative to the working
///   directory (`sqlite:///var/lib/im.db` is absolute, `sqlite://:memory:`
///   a private in-memory database); feature `sqlite`;
/// - `postgres://...` or `postgresql://...`: a [`PgStore`], the URL passed
///   to libpq as is; feature `postgres`.
pub fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, OpenError> {
    if url == "memory:" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        #[cfg(feature = "sqlite")]
        {
            return Ok(Arc::new(SqliteStore::open(path, options)?));
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = (path, options);
            return Err(OpenError::FeatureDisabled {
                url: url.to_owned(),
                feature: "sqlite",
            });
        }
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            return Ok(Arc::new(PgStore::open(url, options)?));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = options;
            return Err(OpenError::FeatureDisabled {
                url: url.to_owned(),
                feature: "postgres",
            });
        }
    }
    Err(OpenError::UnsupportedUrl(url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(open("memory:", &StoreOptions::default()).is_ok());
        assert!(matches!(
            open("mysql://x", &StoreOptions::default()),
            Err(OpenError::UnsupportedUrl(_))
        ));
        #[cfg(feature = "sqlite")]
        assert!(open("sqlite://:memory:", &StoreOptions::default()).is_ok());
        #[cfg(not(feature = "postgres"))]
        assert!(matches!(
            open("postgres://localhost/x", &StoreOptions::default()),
            Err(OpenError::FeatureDisabled { .. })
        ));
    }

    #[test]
    fn synchronous_parses() {
        assert_eq!("FULL".parse::<Synchronous>().ok(), Some(Synchronous::Full));
        assert_eq!(
            "normal".parse::<Synchronous>().ok(),
            Some(Synchronous::Normal)
        );
        assert!("sometimes".parse::<Synchronous>().is_err());
    }
}
