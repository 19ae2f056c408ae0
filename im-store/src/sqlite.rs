//! [`SqliteStore`]: one SQLite database file in WAL mode.
//!
//! Every write goes through one writer connection behind a mutex (SQLite
//! has one writer at a time anyway); `write_batch` runs in a
//! `BEGIN IMMEDIATE` transaction, so it also serialises correctly against
//! other processes on the same file. Reads use a pool of read-only
//! connections, which WAL lets run beside the writer. While another
//! process keeps the write lock past the busy timeout, the writes queued
//! behind the one that gave up fail at once instead of each waiting out
//! the timeout again (`SqliteStore::writing`).
//!
//! The writer has a 64 MiB page cache. A checkpointer thread with its own
//! connection runs a `PASSIVE` checkpoint every 250 ms, which never blocks
//! the writer, so the writer's own automatic checkpoint (every 10,000
//! pages, the backstop that lets the WAL file rewind) finds almost nothing
//! left to copy. Checkpointing only on the commit path stalled the commit
//! that crossed the threshold for tens to hundreds of milliseconds with
//! `synchronous=FULL`: every sender waiting on that commit saw it as
//! latency (p99 88 ms at 28,000 messages/s, 4 ms with the checkpointer).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use im_core::error::StoreResult;
use im_core::store::{CursorUpdate, NewMessage};

use crate::batch::{
    self, BatchOps, BatchResult, ClientHit, ClientKey, ConvRow, ConvWrite, DeliveredKey,
    DeliveredWrite, DeviceKey, MessageRow, NewConv, PairKey, ReadKey, ReadRow, ReadWrite,
};
use crate::db::Db;
use crate::error::{DbError, OpenError};
use crate::sql::{sql, statements};
use crate::store::SqlStore;
use crate::{StoreOptions, Synchronous};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A store on one SQLite database (feature `sqlite`): the SQLite backend
/// in a [`SqlStore`].
pub type SqliteStore = SqlStore<SqliteDb>;

/// The SQLite backend of a [`SqliteStore`]: its connections.
///
/// Opened with [`SqliteStore::open`]: WAL journal, `synchronous` from
/// [`StoreOptions::synchronous`] (FULL by default: a committed batch
/// survives power loss), foreign keys on, `busy_timeout` from the options,
/// migrations applied.
pub struct SqliteDb {
    writer: Mutex<SqliteConnection>,
    /// How many writes have failed after waiting out the busy timeout:
    /// see [`SqliteDb::writing`].
    lock_timeouts: AtomicU64,
    /// Read-only connections; `None` for an in-memory database, whose
    /// connections cannot share it (reads then use the writer).
    readers: Option<Pool<ConnectionManager<SqliteConnection>>>,
    path: String,
    options: StoreOptions,
    /// Dropping it stops the checkpointer thread.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
    /// Send rights found allowed ([`crate::rights`]).
    rights: Mutex<crate::rights::RightsCache>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Extra pragmas of the writer connection, which touches the most pages
/// (every index of every conversation in a batch): a 64 MiB page cache.
const WRITER_PRAGMAS: &str = "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000;";

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the thread that checkpoints the WAL beside the writer; it ends
/// when the returned sender is dropped (with the store).
fn start_checkpointer(
    path: &str,
    options: &StoreOptions,
) -> Result<std::sync::mpsc::Sender<()>, OpenError> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| OpenError::Connect(format!("{path}: {e}")))?;
    conn.batch_execute(&pragmas(options))
        .map_err(|e| OpenError::Setup(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("im-sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::debug!(error = %e, "WAL checkpoint skipped");
                }
            }
            // Closing: fold the WAL back in if nobody else holds it.
            let _ = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);");
        })
        .map_err(|e| OpenError::Setup(format!("checkpointer thread: {e}")))?;
    Ok(tx)
}

/// Pragmas every connection gets.
fn pragmas(options: &StoreOptions) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {};",
        options.busy_timeout.as_millis().min(i32::MAX as u128),
        options.synchronous.as_sql(),
    )
}

#[derive(Debug)]
struct ReaderSetup {
    pragmas: String,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ReaderSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.pragmas)
            .and_then(|()| conn.batch_execute("PRAGMA query_only = ON;"))
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A migration failure inside the opening transaction.
struct MigrationFailure(String);

impl From<diesel::result::Error> for MigrationFailure {
    fn from(e: diesel::result::Error) -> Self {
        MigrationFailure(e.to_string())
    }
}

fn establish_writer(path: &str, options: &StoreOptions) -> Result<SqliteConnection, OpenError> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| OpenError::Connect(format!("{path}: {e}")))?;
    conn.batch_execute(&pragmas(options))
        .and_then(|()| conn.batch_execute(WRITER_PRAGMAS))
        .map_err(|e| OpenError::Setup(e.to_string()))?;
    Ok(conn)
}

impl SqlStore<SqliteDb> {
    /// Opens (creating if needed) the database at `path`, relative to the
    /// working directory; `":memory:"` is a private in-memory database.
    pub fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<SqliteStore, OpenError> {
        let path = path
            .as_ref()
            .to_str()
            .ok_or_else(|| OpenError::InvalidOption("SQLite path is not UTF-8".into()))?
            .to_owned();
        if path.is_empty() {
            return Err(OpenError::InvalidOption("empty SQLite path".into()));
        }
        let in_memory = path == ":memory:";
        let mut writer = establish_writer(&path, options)?;
        if !in_memory {
            writer
                .batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| OpenError::Setup(format!("enabling WAL: {e}")))?;
        }
        writer
            .immediate_transaction(|c| {
                c.run_pending_migrations(MIGRATIONS)
                    .map(|_| ())
                    .map_err(|e| MigrationFailure(e.to_string()))
            })
            .map_err(|MigrationFailure(e)| OpenError::Migration(e))?;
        let readers = if in_memory {
            None
        } else {
            let pool = Pool::builder()
                .max_size(options.pool_size.max(1))
                .min_idle(Some(1))
                .connection_timeout(options.pool_timeout)
                .test_on_check_out(false)
                .connection_customizer(Box::new(ReaderSetup {
                    pragmas: pragmas(options),
                }))
                .build(ConnectionManager::<SqliteConnection>::new(path.clone()))
                .map_err(|e| OpenError::Connect(format!("{path}: {e}")))?;
            Some(pool)
        };
        let checkpointer = if in_memory {
            None
        } else {
            Some(start_checkpointer(&path, options)?)
        };
        Ok(SqlStore(SqliteDb {
            writer: Mutex::new(writer),
            lock_timeouts: AtomicU64::new(0),
            readers,
            path,
            options: options.clone(),
            _checkpointer: checkpointer,
            rights: Mutex::default(),
        }))
    }
}

impl SqliteDb {
    /// The path the store was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn writer(&self) -> Result<MutexGuard<'_, SqliteConnection>, DbError> {
        match self.writer.lock() {
            Ok(g) => Ok(g),
            Err(poisoned) => {
                // A panic while writing may have left the connection inside a
                // transaction: start over with a new connection.
                if self.readers.is_none() {
                    return Err(DbError::Unavailable(
                        "in-memory SQLite writer poisoned".into(),
                    ));
                }
                let mut g = poisoned.into_inner();
                *g = establish_writer(&self.path, &self.options).map_err(DbError::Reconnect)?;
                self.writer.clear_poison();
                Ok(g)
            }
        }
    }

    /// Runs `f` on the writer connection.
    ///
    /// While another process holds the database's write lock, a write
    /// waits out the busy timeout holding the writer, and the writes
    /// queued behind it would each wait it out again, one after the other:
    /// with every store thread writing (logins, disconnects) a send could
    /// wait for its `unavailable` many busy timeouts long. So a write that
    /// waited for the writer while another one gave up on the lock fails
    /// at once: the database was locked the whole time it waited. No write
    /// then waits much longer than one busy timeout, and the next write to
    /// arrive tries the database again.
    fn writing<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let seen = self.lock_timeouts.load(Ordering::SeqCst);
        let mut conn = self.writer()?;
        if self.lock_timeouts.load(Ordering::SeqCst) != seen {
            return Err(DbError::Unavailable(
                "database locked: a write before this one waited for it in vain".into(),
            ));
        }
        let started = Instant::now();
        let r = f(&mut conn);
        if let Err(e) = &r {
            // A failure that is not a constraint, after the whole busy
            // timeout: the lock never came. (Counted before the writer is
            // released, so every write queued meanwhile sees it.)
            let busy = !self.options.busy_timeout.is_zero()
                && started.elapsed() >= self.options.busy_timeout
                && matches!(
                    e,
                    DbError::Query(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::Unknown,
                        _
                    ))
                );
            if busy {
                self.lock_timeouts.fetch_add(1, Ordering::SeqCst);
            }
        }
        r
    }

    /// The `synchronous` pragma in force on the writer connection, the
    /// one that commits (the pragma is per connection, so asking any other
    /// connection would prove nothing).
    pub fn synchronous_setting(&self) -> StoreResult<Synchronous> {
        let level = self.write(|c| Ok(sql::<ReadSynchronous>().get_result::<Level>(c)?))?;
        Ok(match level.synchronous {
            0 => Synchronous::Off,
            1 => Synchronous::Normal,
            2 => Synchronous::Full,
            3 => Synchronous::Extra,
            n => return Err(DbError::Corrupt(format!("PRAGMA synchronous = {n}")).into()),
        })
    }
}

statements! {
    /// The connection's `synchronous` level: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    ReadSynchronous = "PRAGMA synchronous";
}

/// What `PRAGMA synchronous` returns.
#[derive(QueryableByName)]
struct Level {
    #[diesel(sql_type = BigInt)]
    synchronous: i64,
}

impl Db for SqliteDb {
    type Conn = SqliteConnection;

    fn read<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        match &self.readers {
            Some(pool) => f(&mut *pool.get().map_err(DbError::Pool)?),
            None => self.write(f),
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.writing(f)
    }

    fn txn<T>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.writing(|c| c.immediate_transaction(f))
    }

    /// The transaction (`BEGIN IMMEDIATE`) already holds the database's
    /// write lock: reading the row is enough.
    fn lock_conv(c: &mut SqliteConnection, name: &str) -> Result<Option<(i64, i64)>, DbError> {
        Ok(sql::<SelectConv>()
            .bind::<Text, _>(name)
            .get_result::<ConvCounter>(c)
            .optional()?
            .map(|r| (r.id, r.last_seq)))
    }

    fn batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> Result<BatchResult, DbError> {
        let mut rights = self.rights.lock().unwrap_or_else(|p| p.into_inner());
        self.writing(|c| {
            c.immediate_transaction(|c| {
                batch::write_batch(&mut SqliteOps { conn: c }, &mut rights, messages, cursors)
            })
        })
    }
}

/// [`BatchOps`] on SQLite: the transaction (`BEGIN IMMEDIATE`) holds the
/// database's write lock throughout, so "locking" is plain reading, and
/// each step is one prepared statement per row (no round trips: SQLite
/// runs in-process).
struct SqliteOps<'a> {
    conn: &'a mut SqliteConnection,
}

#[derive(QueryableByName)]
struct ConvCounter {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    last_ts: i64,
}

#[derive(QueryableByName)]
struct SeqTs {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    ts: i64,
}

#[derive(QueryableByName)]
struct ReadJoined {
    #[diesel(sql_type = BigInt)]
    read_seq: i64,
    #[diesel(sql_type = BigInt)]
    joined_seq: i64,
}

#[derive(QueryableByName)]
struct OneI64 {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

statements! { SelectConv = "SELECT id, last_seq, last_ts FROM conversations WHERE name = ?"; }
statements! { InsertConv =
"INSERT INTO conversations (name, user_a, user_b) VALUES (?, ?, ?) RETURNING id AS v"; }
statements! { FindClientId =
"SELECT seq, ts FROM client_ids WHERE conv_id = ? AND sender = ? AND client_id = ?"; }
statements! { InsertClientId =
"INSERT INTO client_ids (conv_id, sender, client_id, seq, ts) VALUES (?, ?, ?, ?, ?)"; }
statements! { SelectRead =
"SELECT read_seq, joined_seq FROM conv_users WHERE conv_id = ? AND user_name = ?"; }
statements! { SelectDelivered =
"SELECT seq AS v FROM delivered WHERE user_name = ? AND device = ? AND conv_id = ?"; }
statements! { InsertMessage = "INSERT INTO messages \
(conv_id, seq, sender, body, ts, client_id, attachment) VALUES (?, ?, ?, ?, ?, ?, ?)"; }
statements! { UpdateConv =
"UPDATE conversations SET last_seq = ?, last_ts = ?, activity = ? WHERE id = ?"; }
statements! { EnsureDelivered = "INSERT INTO delivered (user_name, device, conv_id, seq) \
VALUES (?, ?, ?, COALESCE((SELECT joined_seq FROM conv_users WHERE conv_id = ? AND user_name = ?), 0)) \
ON CONFLICT (user_name, device, conv_id) DO NOTHING"; }
statements! { WriteRead = "INSERT INTO conv_users (conv_id, user_name, member, read_seq) \
VALUES (?, ?, ?, ?) ON CONFLICT (conv_id, user_name) \
DO UPDATE SET member = member OR excluded.member, read_seq = excluded.read_seq"; }
statements! { WriteDelivered = "INSERT INTO delivered (user_name, device, conv_id, seq) \
VALUES (?, ?, ?, ?) ON CONFLICT (user_name, device, conv_id) DO UPDATE SET seq = excluded.seq"; }

statements! { SignedIn = "SELECT 1 AS v FROM devices d JOIN users u ON u.name = d.user_name \
WHERE d.user_name = ? AND d.device = ? AND d.token_hash IS NOT NULL AND u.suspended = ?"; }
statements! { BlockExists = "SELECT 1 AS v FROM blocks WHERE by_user = ? AND target = ?"; }
statements! { MutualExists =
"SELECT 1 AS v FROM relations WHERE user_a = ? AND user_b = ? AND requested_by IS NULL"; }
statements! { MemberExists =
"SELECT 1 AS v FROM conv_users WHERE conv_id = ? AND user_name = ? AND member = ?"; }

impl SqliteOps<'_> {
    /// The keys for which `query` finds a row.
    fn existing<K: Clone>(
        &mut self,
        keys: &[K],
        mut query: impl FnMut(&mut SqliteConnection, &K) -> QueryResult<Option<OneI64>>,
    ) -> Result<Vec<K>, DbError> {
        let mut out = Vec::new();
        for k in keys {
            if query(self.conn, k)?.is_some() {
                out.push(k.clone());
            }
        }
        Ok(out)
    }

    fn counter(&mut self, name: &str) -> Result<Option<ConvCounter>, DbError> {
        Ok(sql::<SelectConv>()
            .bind::<Text, _>(name)
            .get_result::<ConvCounter>(self.conn)
            .optional()?)
    }
}

impl BatchOps for SqliteOps<'_> {
    fn lock_convs(
        &mut self,
        create: &[NewConv<'_>],
        names: &[&str],
    ) -> Result<Vec<ConvRow>, DbError> {
        let mut out = Vec::with_capacity(names.len());
        let mut found = HashSet::new();
        for name in names {
            if let Some(c) = self.counter(name)? {
                found.insert(*name);
                out.push(ConvRow {
                    id: c.id,
                    name: (*name).to_owned(),
                    last_seq: c.last_seq,
                    last_ts: c.last_ts,
                });
            }
        }
        for nc in create.iter().filter(|c| !found.contains(c.name)) {
            let id = sql::<InsertConv>()
                .bind::<Text, _>(nc.name)
                .bind::<Nullable<Text>, _>(nc.user_a)
                .bind::<Nullable<Text>, _>(nc.user_b)
                .get_result::<OneI64>(self.conn)?
                .v;
            out.push(ConvRow {
                id,
                name: nc.name.to_owned(),
                last_seq: 0,
                last_ts: 0,
            });
        }
        Ok(out)
    }

    fn find_client_ids(&mut self, keys: &[ClientKey]) -> Result<Vec<ClientHit>, DbError> {
        let mut out = Vec::new();
        for k in keys {
            let found = sql::<FindClientId>()
                .bind::<BigInt, _>(k.0)
                .bind::<Text, _>(&k.1)
                .bind::<Text, _>(&k.2)
                .get_result::<SeqTs>(self.conn)
                .optional()?;
            if let Some(r) = found {
                out.push((k.clone(), (r.seq, r.ts)));
            }
        }
        Ok(out)
    }

    fn signed_in(&mut self, keys: &[DeviceKey]) -> Result<Vec<DeviceKey>, DbError> {
        self.existing(keys, |c, k| {
            sql::<SignedIn>()
                .bind::<Text, _>(&k.0)
                .bind::<Text, _>(&k.1)
                .bind::<Bool, _>(false)
                .get_result(c)
                .optional()
        })
    }

    fn blocks_among(&mut self, pairs: &[PairKey]) -> Result<Vec<PairKey>, DbError> {
        self.existing(pairs, |c, k| {
            sql::<BlockExists>()
                .bind::<Text, _>(&k.0)
                .bind::<Text, _>(&k.1)
                .get_result(c)
                .optional()
        })
    }

    fn mutual_among(&mut self, pairs: &[PairKey]) -> Result<Vec<PairKey>, DbError> {
        self.existing(pairs, |c, k| {
            sql::<MutualExists>()
                .bind::<Text, _>(&k.0)
                .bind::<Text, _>(&k.1)
                .get_result(c)
                .optional()
        })
    }

    fn members_among(&mut self, keys: &[ReadKey]) -> Result<Vec<ReadKey>, DbError> {
        self.existing(keys, |c, k| {
            sql::<MemberExists>()
                .bind::<BigInt, _>(k.0)
                .bind::<Text, _>(&k.1)
                .bind::<Bool, _>(true)
                .get_result(c)
                .optional()
        })
    }

    fn rights_version(&mut self) -> Result<i64, DbError> {
        crate::rights::version(self.conn)
    }

    fn read_cursors(&mut self, keys: &[ReadKey]) -> Result<Vec<(ReadKey, ReadRow)>, DbError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let found = sql::<SelectRead>()
                .bind::<BigInt, _>(k.0)
                .bind::<Text, _>(&k.1)
                .get_result::<ReadJoined>(self.conn)
                .optional()?;
            if let Some(r) = found {
                let row = ReadRow {
                    read: r.read_seq,
                    joined: r.joined_seq,
                };
                out.push((k.clone(), row));
            }
        }
        Ok(out)
    }

    fn delivered_cursors(
        &mut self,
        keys: &[DeliveredKey],
    ) -> Result<Vec<(DeliveredKey, i64)>, DbError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let found = sql::<SelectDelivered>()
                .bind::<Text, _>(&k.0)
                .bind::<Text, _>(&k.1)
                .bind::<BigInt, _>(k.2)
                .get_result::<OneI64>(self.conn)
                .optional()?;
            if let Some(r) = found {
                out.push((k.clone(), r.v));
            }
        }
        Ok(out)
    }

    fn insert_messages(&mut self, rows: &[MessageRow]) -> Result<(), DbError> {
        for r in rows {
            sql::<InsertMessage>()
                .bind::<BigInt, _>(r.conv_id)
                .bind::<BigInt, _>(r.seq)
                .bind::<Text, _>(&r.sender)
                .bind::<Text, _>(&r.body)
                .bind::<BigInt, _>(r.ts)
                .bind::<Nullable<Text>, _>(&r.client_id)
                .bind::<Nullable<Text>, _>(&r.attachment)
                .execute(self.conn)?;
            if let Some(cid) = &r.client_id {
                sql::<InsertClientId>()
                    .bind::<BigInt, _>(r.conv_id)
                    .bind::<Text, _>(&r.sender)
                    .bind::<Text, _>(cid)
                    .bind::<BigInt, _>(r.seq)
                    .bind::<BigInt, _>(r.ts)
                    .execute(self.conn)?;
            }
        }
        Ok(())
    }

    fn update_convs(&mut self, rows: &[ConvWrite]) -> Result<(), DbError> {
        for r in rows {
            sql::<UpdateConv>()
                .bind::<BigInt, _>(r.last_seq)
                .bind::<BigInt, _>(r.last_ts)
                .bind::<BigInt, _>(r.last_ts)
                .bind::<BigInt, _>(r.id)
                .execute(self.conn)?;
        }
        Ok(())
    }

    fn write_read(&mut self, rows: &[ReadWrite]) -> Result<(), DbError> {
        for r in rows {
            sql::<WriteRead>()
                .bind::<BigInt, _>(r.conv_id)
                .bind::<Text, _>(&r.user)
                .bind::<Bool, _>(r.member)
                .bind::<BigInt, _>(r.read_seq)
                .execute(self.conn)?;
        }
        Ok(())
    }

    fn write_delivered(&mut self, rows: &[DeliveredWrite]) -> Result<(), DbError> {
        for r in rows {
            sql::<WriteDelivered>()
                .bind::<Text, _>(&r.user)
                .bind::<Text, _>(&r.device)
                .bind::<BigInt, _>(r.conv_id)
                .bind::<BigInt, _>(r.seq)
                .execute(self.conn)?;
        }
        Ok(())
    }

    fn ensure_delivered(&mut self, keys: &[DeliveredKey]) -> Result<(), DbError> {
        for k in keys {
            sql::<EnsureDelivered>()
                .bind::<Text, _>(&k.0)
                .bind::<Text, _>(&k.1)
                .bind::<BigInt, _>(k.2)
                .bind::<BigInt, _>(k.2)
                .bind::<Text, _>(&k.0)
                .execute(self.conn)?;
        }
        Ok(())
    }
}
