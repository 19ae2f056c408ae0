//! [`PgStore`]: PostgreSQL, safe for several server processes sharing one
//! database.
//!
//! `write_batch` runs in one READ COMMITTED transaction that first locks the
//! counter row of every existing conversation the batch touches (`SELECT
//! ... ORDER BY name FOR NO KEY UPDATE`: one global lock order, so
//! concurrent batches never deadlock), then creates the conversations
//! receiving their first message (`INSERT ... ON CONFLICT DO NOTHING`; the
//! new rows stay locked until commit). Everything else of a
//! conversation (its seq, messages, members, cursors) is only written under
//! that lock, so two processes appending to one conversation take turns and
//! `seq` stays gapless; `UNIQUE (conv_id, seq)` and the primary key of
//! `client_ids` back this up. Every step is one statement over arrays
//! (`unnest`), so a batch costs about ten round trips whatever its size.

use std::collections::HashSet;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use im_core::store::{CursorUpdate, NewMessage};

use crate::batch::{
    self, BatchOps, BatchResult, ClientHit, ClientKey, ConvRow, ConvWrite, DeliveredKey,
    DeliveredWrite, DeviceKey, MessageRow, NewConv, PairKey, ReadKey, ReadRow, ReadWrite,
};
use crate::db::Db;
use crate::error::{DbError, OpenError};
use crate::sql::{sql, statements, Statement};
use crate::store::SqlStore;
use crate::StoreOptions;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory lock key serialising schema creation and migrations between
/// processes opening the same database at once.
const MIGRATION_LOCK: i64 = 0x696d_5f73_746f_7265; // "im_store"

/// How often `write_batch` runs a transaction that had to be abandoned: a
/// conversation created by another process at the same moment (the retry
/// finds it), or a deadlock or serialization failure reported by PostgreSQL
/// (not expected: locks are taken in one order).
const BATCH_ATTEMPTS: usize = 3;

/// A store on PostgreSQL (feature `postgres`): the PostgreSQL backend in a
/// [`SqlStore`].
pub type PgStore = SqlStore<PgDb>;

/// The PostgreSQL backend of a [`PgStore`]: its connection pool.
///
/// Opened with [`PgStore::open`]; with [`StoreOptions::pg_schema`] set,
/// every table lives in that schema (created if missing) and every pooled
/// connection's `search_path` is set to it, so several stores (tests, say)
/// can share one database without seeing each other.
pub struct PgDb {
    pool: Pool<ConnectionManager<PgConnection>>,
    schema: Option<String>,
    /// Send rights found allowed ([`crate::rights`]).
    rights: std::sync::Mutex<crate::rights::RightsCache>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Quotes an identifier for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Debug)]
struct SearchPath {
    /// `SET search_path ...` statement, when a schema was asked for.
    sql: Option<String>,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SearchPath {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        match &self.sql {
            Some(sql) => conn
                .batch_execute(sql)
                .map_err(diesel::r2d2::Error::QueryError),
            None => Ok(()),
        }
    }
}

impl SqlStore<PgDb> {
    /// Connects to `url` (a libpq connection string or `postgres://` URL),
    /// creates the schema named by [`StoreOptions::pg_schema`] if any, and
    /// runs the migrations. Fails when the server cannot be reached within
    /// [`StoreOptions::connect_timeout`].
    pub fn open(url: &str, options: &StoreOptions) -> Result<PgStore, OpenError> {
        let schema = match &options.pg_schema {
            Some(s) if s.is_empty() || s.len() > 63 || s.contains('\0') => {
                return Err(OpenError::InvalidOption(format!(
                    "invalid PostgreSQL schema name {s:?}"
                )))
            }
            s => s.clone(),
        };
        let set_path = schema
            .as_deref()
            .map(|s| format!("SET search_path TO {};", quote_ident(s)));
        // Requests wait `pool_timeout` for a connection; opening waits
        // `connect_timeout` for the first one, through `get_timeout`.
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.pool_timeout)
            .connection_customizer(Box::new(SearchPath {
                sql: set_path.clone(),
            }))
            .build_unchecked(ConnectionManager::<PgConnection>::new(url));
        let mut conn = pool
            .get_timeout(options.connect_timeout)
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK});"))
            .map_err(|e| OpenError::Setup(e.to_string()))?;
        let migrated = migrate(&mut conn, schema.as_deref(), set_path.as_deref());
        let unlocked = conn
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK});"))
            .map_err(|e| OpenError::Setup(e.to_string()));
        migrated?;
        unlocked?;
        drop(conn);
        Ok(SqlStore(PgDb {
            pool,
            schema,
            rights: Default::default(),
        }))
    }
}

impl PgDb {
    /// The schema the store lives in, when one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    fn conn(&self) -> Result<PooledConnection<ConnectionManager<PgConnection>>, DbError> {
        self.pool.get().map_err(DbError::Pool)
    }
}

impl Db for PgDb {
    type Conn = PgConnection;

    fn read<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        f(&mut *self.conn()?)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        f(&mut *self.conn()?)
    }

    fn txn<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn()?;
        let conn: &mut PgConnection = &mut conn;
        conn.transaction(f)
    }

    /// `FOR NO KEY UPDATE`, as `write_batch` locks the row.
    fn lock_conv(c: &mut PgConnection, name: &str) -> Result<Option<(i64, i64)>, DbError> {
        Ok(sql::<LockConv>()
            .bind::<Text, _>(name)
            .get_result::<ConvRowSql>(c)
            .optional()?
            .map(|r| (r.id, r.last_seq)))
    }

    /// Retried when PostgreSQL abandons the transaction (see
    /// [`BATCH_ATTEMPTS`]).
    fn batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> Result<BatchResult, DbError> {
        let mut conn = self.conn()?;
        let mut rights = self.rights.lock().unwrap_or_else(|p| p.into_inner());
        let mut attempt = 1;
        loop {
            let r = conn.transaction(|c| {
                batch::write_batch(&mut PgOps { conn: c }, &mut rights, messages, cursors)
            });
            match r {
                Err(e) if e.is_retryable() && attempt < BATCH_ATTEMPTS => {
                    tracing::warn!(error = ?e, attempt, "write_batch aborted by PostgreSQL; retrying");
                    attempt += 1;
                }
                r => return r,
            }
        }
    }
}

fn migrate(
    conn: &mut PgConnection,
    schema: Option<&str>,
    set_path: Option<&str>,
) -> Result<(), OpenError> {
    if let (Some(schema), Some(set_path)) = (schema, set_path) {
        conn.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; {set_path}",
            quote_ident(schema)
        ))
        .map_err(|e| OpenError::Setup(format!("creating schema {schema:?}: {e}")))?;
    }
    conn.run_pending_migrations(MIGRATIONS)
        .map(|_| ())
        .map_err(|e| OpenError::Migration(e.to_string()))
}

statements! {
    /// One conversation's counter row, locked like `write_batch` locks it.
    LockConv = "SELECT id, name, last_seq, last_ts FROM conversations WHERE name = ? \
        FOR NO KEY UPDATE";
}

/// [`BatchOps`] on PostgreSQL: each step is one statement over arrays.
struct PgOps<'a> {
    conn: &'a mut PgConnection,
}

#[derive(QueryableByName)]
struct ConvRowSql {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    last_ts: i64,
}

impl From<ConvRowSql> for ConvRow {
    fn from(r: ConvRowSql) -> ConvRow {
        ConvRow {
            id: r.id,
            name: r.name,
            last_seq: r.last_seq,
            last_ts: r.last_ts,
        }
    }
}

#[derive(QueryableByName)]
struct ClientIdSql {
    #[diesel(sql_type = BigInt)]
    conv_id: i64,
    #[diesel(sql_type = Text)]
    sender: String,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    ts: i64,
}

#[derive(QueryableByName)]
struct ReadSql {
    #[diesel(sql_type = BigInt)]
    conv_id: i64,
    #[diesel(sql_type = Text)]
    user_name: String,
    #[diesel(sql_type = BigInt)]
    read_seq: i64,
    #[diesel(sql_type = BigInt)]
    joined_seq: i64,
}

#[derive(QueryableByName)]
struct DeliveredSql {
    #[diesel(sql_type = Text)]
    user_name: String,
    #[diesel(sql_type = Text)]
    device: String,
    #[diesel(sql_type = BigInt)]
    conv_id: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

statements! {
    /// Rows are locked as they leave the sort: one lock order for everyone.
    LockConvs = "\
SELECT id, name, last_seq, last_ts FROM conversations WHERE name = ANY(?::text[]) \
ORDER BY name FOR NO KEY UPDATE"; }

statements! {
    /// New rows stay locked (uncommitted) until commit; a name another
    /// transaction inserted meanwhile is not returned.
    CreateConvs = "\
INSERT INTO conversations (name, user_a, user_b) \
SELECT n, a, b FROM unnest(?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS t(n, a, b, i) \
ORDER BY i \
ON CONFLICT (name) DO NOTHING \
RETURNING id, name, last_seq, last_ts"; }

statements! { FindClientIds = "\
SELECT k.c AS conv_id, k.s AS sender, k.ci AS client_id, m.seq, m.ts \
FROM unnest(?::bigint[], ?::text[], ?::text[]) AS k(c, s, ci) \
CROSS JOIN LATERAL (SELECT seq, ts FROM client_ids \
WHERE conv_id = k.c AND sender = k.s AND client_id = k.ci) m"; }

statements! { SignedIn = "\
SELECT k.a, k.b FROM unnest(?::text[], ?::text[]) AS k(a, b) \
WHERE EXISTS (SELECT 1 FROM devices d JOIN users u ON u.name = d.user_name \
WHERE d.user_name = k.a AND d.device = k.b AND d.token_hash IS NOT NULL AND NOT u.suspended)"; }

statements! { BlocksAmong = "\
SELECT k.a, k.b FROM unnest(?::text[], ?::text[]) AS k(a, b) \
WHERE EXISTS (SELECT 1 FROM blocks WHERE by_user = k.a AND target = k.b)"; }

statements! { MutualAmong = "\
SELECT k.a, k.b FROM unnest(?::text[], ?::text[]) AS k(a, b) \
WHERE EXISTS (SELECT 1 FROM relations \
WHERE user_a = k.a AND user_b = k.b AND requested_by IS NULL)"; }

statements! { MembersAmong = "\
SELECT k.c AS conv_id, k.u AS user_name FROM unnest(?::bigint[], ?::text[]) AS k(c, u) \
WHERE EXISTS (SELECT 1 FROM conv_users WHERE conv_id = k.c AND user_name = k.u AND member)"; }

/// Two names.
#[derive(QueryableByName)]
struct PairSql {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
}

/// A conversation and a user.
#[derive(QueryableByName)]
struct ConvUserSql {
    #[diesel(sql_type = BigInt)]
    conv_id: i64,
    #[diesel(sql_type = Text)]
    user_name: String,
}

/// Binds the two columns of `pairs` (names) as arrays of `S` and loads
/// the pairs found.
fn pairs_among<S: Statement>(
    conn: &mut PgConnection,
    pairs: &[PairKey],
) -> Result<Vec<PairKey>, DbError> {
    let a: Vec<&str> = pairs.iter().map(|k| k.0.as_str()).collect();
    let b: Vec<&str> = pairs.iter().map(|k| k.1.as_str()).collect();
    Ok(sql::<S>()
        .bind::<Array<Text>, _>(&a)
        .bind::<Array<Text>, _>(&b)
        .load::<PairSql>(conn)?
        .into_iter()
        .map(|r| (r.a, r.b))
        .collect())
}

statements! { ReadCursors = "\
SELECT k.c AS conv_id, k.u AS user_name, r.read_seq, r.joined_seq \
FROM unnest(?::bigint[], ?::text[]) AS k(c, u) \
CROSS JOIN LATERAL (SELECT read_seq, joined_seq FROM conv_users \
WHERE conv_id = k.c AND user_name = k.u) r"; }

statements! { DeliveredCursors = "\
SELECT k.u AS user_name, k.d AS device, k.c AS conv_id, r.seq \
FROM unnest(?::text[], ?::text[], ?::bigint[]) AS k(u, d, c) \
CROSS JOIN LATERAL (SELECT seq FROM delivered \
WHERE user_name = k.u AND device = k.d AND conv_id = k.c) r"; }

statements! { InsertMessages = "\
INSERT INTO messages (conv_id, seq, sender, body, ts, client_id, attachment) \
SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], \
?::text[], ?::text[])"; }

statements! { InsertClientIds = "\
INSERT INTO client_ids (conv_id, sender, client_id, seq, ts) \
SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])"; }

statements! { UpdateConvs = "\
UPDATE conversations AS c SET last_seq = v.s, last_ts = v.t, activity = v.t \
FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS v(id, s, t) WHERE c.id = v.id"; }

statements! { WriteRead = "\
INSERT INTO conv_users (conv_id, user_name, member, read_seq) \
SELECT * FROM unnest(?::bigint[], ?::text[], ?::bool[], ?::bigint[]) \
ON CONFLICT (conv_id, user_name) \
DO UPDATE SET member = conv_users.member OR EXCLUDED.member, read_seq = EXCLUDED.read_seq"; }

statements! { WriteDelivered = "\
INSERT INTO delivered (user_name, device, conv_id, seq) \
SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[]) \
ON CONFLICT (user_name, device, conv_id) DO UPDATE SET seq = EXCLUDED.seq"; }

fn lock(conn: &mut PgConnection, names: &[&str]) -> Result<Vec<ConvRow>, DbError> {
    Ok(sql::<LockConvs>()
        .bind::<Array<Text>, _>(names)
        .load::<ConvRowSql>(conn)?
        .into_iter()
        .map(ConvRow::from)
        .collect())
}

statements! {
    /// Creates missing delivered cursors (in rooms) where the in-memory
    /// store would: at the user's joining seq, else 0.
    EnsureDelivered = "\
INSERT INTO delivered (user_name, device, conv_id, seq) \
SELECT k.u, k.d, k.c, COALESCE(cu.joined_seq, 0) \
FROM unnest(?::text[], ?::text[], ?::bigint[]) AS k(u, d, c) \
LEFT JOIN conv_users cu ON cu.conv_id = k.c AND cu.user_name = k.u \
ON CONFLICT (user_name, device, conv_id) DO NOTHING";
}

impl BatchOps for PgOps<'_> {
    fn lock_convs(
        &mut self,
        create: &[NewConv<'_>],
        names: &[&str],
    ) -> Result<Vec<ConvRow>, DbError> {
        // Existing conversations first, all in name order; then the new
        // ones (in name order too). A transaction never waits for a lock on
        // an existing row while holding a new one, so this cannot deadlock.
        // (Checking for existing rows first saves the insert attempt in the
        // common case where every conversation exists.)
        let mut rows: Vec<ConvRow> = lock(self.conn, names)?;
        let found: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let missing: Vec<&NewConv<'_>> =
            create.iter().filter(|c| !found.contains(c.name)).collect();
        if missing.is_empty() {
            return Ok(rows);
        }
        let n: Vec<&str> = missing.iter().map(|c| c.name).collect();
        let a: Vec<Option<&str>> = missing.iter().map(|c| c.user_a).collect();
        let b: Vec<Option<&str>> = missing.iter().map(|c| c.user_b).collect();
        let created: Vec<ConvRow> = sql::<CreateConvs>()
            .bind::<Array<Text>, _>(&n)
            .bind::<Array<Nullable<Text>>, _>(&a)
            .bind::<Array<Nullable<Text>>, _>(&b)
            .load::<ConvRowSql>(self.conn)?
            .into_iter()
            .map(ConvRow::from)
            .collect();
        if created.len() < missing.len() {
            // Another transaction created one of them meanwhile. Locking it
            // now would break the lock order: start over instead (the
            // caller retries; the conversation then exists).
            return Err(DbError::Retry("conversation created concurrently".into()));
        }
        rows.extend(created);
        Ok(rows)
    }

    fn find_client_ids(&mut self, keys: &[ClientKey]) -> Result<Vec<ClientHit>, DbError> {
        let c: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let s: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let ci: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        Ok(sql::<FindClientIds>()
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&s)
            .bind::<Array<Text>, _>(&ci)
            .load::<ClientIdSql>(self.conn)?
            .into_iter()
            .map(|r| ((r.conv_id, r.sender, r.client_id), (r.seq, r.ts)))
            .collect())
    }

    fn signed_in(&mut self, keys: &[DeviceKey]) -> Result<Vec<DeviceKey>, DbError> {
        pairs_among::<SignedIn>(self.conn, keys)
    }

    fn blocks_among(&mut self, pairs: &[PairKey]) -> Result<Vec<PairKey>, DbError> {
        pairs_among::<BlocksAmong>(self.conn, pairs)
    }

    fn mutual_among(&mut self, pairs: &[PairKey]) -> Result<Vec<PairKey>, DbError> {
        pairs_among::<MutualAmong>(self.conn, pairs)
    }

    fn members_among(&mut self, keys: &[ReadKey]) -> Result<Vec<ReadKey>, DbError> {
        let c: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let u: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        Ok(sql::<MembersAmong>()
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&u)
            .load::<ConvUserSql>(self.conn)?
            .into_iter()
            .map(|r| (r.conv_id, r.user_name))
            .collect())
    }

    fn rights_version(&mut self) -> Result<i64, DbError> {
        crate::rights::version(self.conn)
    }

    fn read_cursors(&mut self, keys: &[ReadKey]) -> Result<Vec<(ReadKey, ReadRow)>, DbError> {
        let c: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let u: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        Ok(sql::<ReadCursors>()
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&u)
            .load::<ReadSql>(self.conn)?
            .into_iter()
            .map(|r| {
                let row = ReadRow {
                    read: r.read_seq,
                    joined: r.joined_seq,
                };
                ((r.conv_id, r.user_name), row)
            })
            .collect())
    }

    fn delivered_cursors(
        &mut self,
        keys: &[DeliveredKey],
    ) -> Result<Vec<(DeliveredKey, i64)>, DbError> {
        let u: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let d: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let c: Vec<i64> = keys.iter().map(|k| k.2).collect();
        Ok(sql::<DeliveredCursors>()
            .bind::<Array<Text>, _>(&u)
            .bind::<Array<Text>, _>(&d)
            .bind::<Array<BigInt>, _>(&c)
            .load::<DeliveredSql>(self.conn)?
            .into_iter()
            .map(|r| ((r.user_name, r.device, r.conv_id), r.seq))
            .collect())
    }

    fn insert_messages(&mut self, rows: &[MessageRow]) -> Result<(), DbError> {
        let conv: Vec<i64> = rows.iter().map(|r| r.conv_id).collect();
        let seq: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let sender: Vec<&str> = rows.iter().map(|r| r.sender.as_str()).collect();
        let body: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
        let ts: Vec<i64> = rows.iter().map(|r| r.ts).collect();
        let cid: Vec<Option<&str>> = rows.iter().map(|r| r.client_id.as_deref()).collect();
        let att: Vec<Option<&str>> = rows.iter().map(|r| r.attachment.as_deref()).collect();
        sql::<InsertMessages>()
            .bind::<Array<BigInt>, _>(&conv)
            .bind::<Array<BigInt>, _>(&seq)
            .bind::<Array<Text>, _>(&sender)
            .bind::<Array<Text>, _>(&body)
            .bind::<Array<BigInt>, _>(&ts)
            .bind::<Array<Nullable<Text>>, _>(&cid)
            .bind::<Array<Nullable<Text>>, _>(&att)
            .execute(self.conn)?;
        let keyed: Vec<&MessageRow> = rows.iter().filter(|r| r.client_id.is_some()).collect();
        if !keyed.is_empty() {
            let conv: Vec<i64> = keyed.iter().map(|r| r.conv_id).collect();
            let sender: Vec<&str> = keyed.iter().map(|r| r.sender.as_str()).collect();
            let cid: Vec<&str> = keyed
                .iter()
                .filter_map(|r| r.client_id.as_deref())
                .collect();
            let seq: Vec<i64> = keyed.iter().map(|r| r.seq).collect();
            let ts: Vec<i64> = keyed.iter().map(|r| r.ts).collect();
            sql::<InsertClientIds>()
                .bind::<Array<BigInt>, _>(&conv)
                .bind::<Array<Text>, _>(&sender)
                .bind::<Array<Text>, _>(&cid)
                .bind::<Array<BigInt>, _>(&seq)
                .bind::<Array<BigInt>, _>(&ts)
                .execute(self.conn)?;
        }
        Ok(())
    }

    fn update_convs(&mut self, rows: &[ConvWrite]) -> Result<(), DbError> {
        let id: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let s: Vec<i64> = rows.iter().map(|r| r.last_seq).collect();
        let t: Vec<i64> = rows.iter().map(|r| r.last_ts).collect();
        sql::<UpdateConvs>()
            .bind::<Array<BigInt>, _>(&id)
            .bind::<Array<BigInt>, _>(&s)
            .bind::<Array<BigInt>, _>(&t)
            .execute(self.conn)?;
        Ok(())
    }

    fn write_read(&mut self, rows: &[ReadWrite]) -> Result<(), DbError> {
        let c: Vec<i64> = rows.iter().map(|r| r.conv_id).collect();
        let u: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
        let m: Vec<bool> = rows.iter().map(|r| r.member).collect();
        let r: Vec<i64> = rows.iter().map(|r| r.read_seq).collect();
        sql::<WriteRead>()
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&u)
            .bind::<Array<Bool>, _>(&m)
            .bind::<Array<BigInt>, _>(&r)
            .execute(self.conn)?;
        Ok(())
    }

    fn write_delivered(&mut self, rows: &[DeliveredWrite]) -> Result<(), DbError> {
        let u: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
        let d: Vec<&str> = rows.iter().map(|r| r.device.as_str()).collect();
        let c: Vec<i64> = rows.iter().map(|r| r.conv_id).collect();
        let s: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        sql::<WriteDelivered>()
            .bind::<Array<Text>, _>(&u)
            .bind::<Array<Text>, _>(&d)
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<BigInt>, _>(&s)
            .execute(self.conn)?;
        Ok(())
    }

    fn ensure_delivered(&mut self, keys: &[DeliveredKey]) -> Result<(), DbError> {
        let u: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let d: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let c: Vec<i64> = keys.iter().map(|k| k.2).collect();
        sql::<EnsureDelivered>()
            .bind::<Array<Text>, _>(&u)
            .bind::<Array<Text>, _>(&d)
            .bind::<Array<BigInt>, _>(&c)
            .execute(self.conn)?;
        Ok(())
    }
}
