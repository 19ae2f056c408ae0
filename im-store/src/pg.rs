//! [`PgStore`]: PostgreSQL, safe for several server processes sharing one
//! database.
//!
//! `write_batch` runs in one READ COMMITTED transaction that locks the
//! counter row of every conversation it appends to (`INSERT ... ON
//! CONFLICT DO UPDATE ... WHERE FALSE`, which creates a missing row or
//! locks an existing one without writing it), in name order, before
//! reading `last_seq`; the row stays locked until commit, so two processes
//! appending to one conversation take turns and `seq` stays gapless.
//! `UNIQUE (conv_id, seq)` and the unique `(conv_id, sender, client_id)`
//! index back this up. Cursor rows are locked the same way, after the
//! conversations and in key order, so concurrent batches cannot deadlock.
//! Every step is one statement over arrays (`unnest`), so a batch costs a
//! dozen round trips whatever its size.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use im_core::error::StoreResult;
use im_core::ids::UserId;
use im_core::store::{Appended, ConvSummary, CursorOutcome, CursorUpdate, NewMessage, Store};

use crate::batch::{
    self, BatchOps, ClientHit, ClientKey, ConvRow, ConvWrite, DeliveredKey, DeliveredWrite,
    MessageRow, NewConv, ReadKey, ReadWrite,
};
use crate::common::{self, common_store_methods, ConvListRow};
use crate::error::{DbError, OpenError};
use crate::sql::Sql;
use crate::StoreOptions;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory lock key serialising schema creation and migrations between
/// processes opening the same database at once.
const MIGRATION_LOCK: i64 = 0x696d_5f73_746f_7265; // "im_store"

/// How often `write_batch` retries a transaction PostgreSQL aborted as a
/// deadlock or serialization failure (neither is expected: locks are taken
/// in a fixed order).
const BATCH_ATTEMPTS: usize = 3;

/// A [`Store`] on PostgreSQL (feature `postgres`).
///
/// Opened with [`PgStore::open`]; with [`StoreOptions::pg_schema`] set,
/// every table lives in that schema (created if missing) and every pooled
/// connection's `search_path` is set to it, so several stores (tests, say)
/// can share one database without seeing each other.
pub struct PgStore {
    pool: Pool<ConnectionManager<PgConnection>>,
    schema: Option<String>,
}

impl std::fmt::Debug for PgStore {
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

impl PgStore {
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
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            .connection_customizer(Box::new(SearchPath {
                sql: set_path.clone(),
            }))
            .build(ConnectionManager::<PgConnection>::new(url))
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        let mut conn = pool.get().map_err(|e| OpenError::Connect(e.to_string()))?;
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK});"))
            .map_err(|e| OpenError::Setup(e.to_string()))?;
        let migrated = migrate(&mut conn, schema.as_deref(), set_path.as_deref());
        let unlocked = conn
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK});"))
            .map_err(|e| OpenError::Setup(e.to_string()));
        migrated?;
        unlocked?;
        drop(conn);
        Ok(PgStore { pool, schema })
    }

    /// The schema the store lives in, when one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    fn conn(&self) -> Result<PooledConnection<ConnectionManager<PgConnection>>, DbError> {
        self.pool.get().map_err(|e| DbError::Pool(e.to_string()))
    }

    fn read<T>(&self, f: impl FnOnce(&mut PgConnection) -> Result<T, DbError>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        Ok(f(&mut conn)?)
    }

    fn write_raw<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn()?;
        f(&mut conn)
    }

    fn write<T>(&self, f: impl FnOnce(&mut PgConnection) -> Result<T, DbError>) -> StoreResult<T> {
        Ok(self.write_raw(f)?)
    }

    fn batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)> {
        let mut conn = self.conn()?;
        let mut attempt = 1;
        loop {
            let r =
                conn.transaction(|c| batch::write_batch(&mut PgOps { conn: c }, messages, cursors));
            match r {
                Err(e) if e.is_retryable() && attempt < BATCH_ATTEMPTS => {
                    tracing::warn!(error = ?e, attempt, "write_batch aborted by PostgreSQL; retrying");
                    attempt += 1;
                }
                r => return Ok(r?),
            }
        }
    }

    fn list_convs(&self, user: &UserId, device: &str) -> StoreResult<Vec<ConvSummary>> {
        self.read(|c| {
            let me = user.as_str();
            let rows = Sql(common::LIST_CONVS_SQL)
                .bind::<Text, _>(me)
                .bind::<Text, _>(device)
                .bind::<Text, _>(me)
                .bind::<Text, _>(me)
                .bind::<Text, _>(me)
                .load::<ConvListRow>(c)?;
            common::summaries(rows)
        })
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

impl Store for PgStore {
    common_store_methods!();
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

const LOCK_CONVS: &str = "\
INSERT INTO conversations (name, user_a, user_b) \
SELECT n, a, b FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(n, a, b, i) \
ORDER BY i \
ON CONFLICT (name) DO UPDATE SET last_seq = conversations.last_seq WHERE FALSE";

const SELECT_CONVS: &str = "\
SELECT id, name, last_seq, last_ts FROM conversations WHERE name = ANY($1::text[])";

const FIND_CLIENT_IDS: &str = "\
SELECT k.c AS conv_id, k.s AS sender, k.ci AS client_id, m.seq, m.ts \
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS k(c, s, ci) \
CROSS JOIN LATERAL (SELECT seq, ts FROM messages \
  WHERE conv_id = k.c AND sender = k.s AND client_id = k.ci) m";

const LOCK_READ: &str = "\
INSERT INTO conv_users (conv_id, user_name) \
SELECT c, u FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS t(c, u, i) ORDER BY i \
ON CONFLICT (conv_id, user_name) DO UPDATE SET read_seq = conv_users.read_seq WHERE FALSE";

const SELECT_READ: &str = "\
SELECT k.c AS conv_id, k.u AS user_name, r.read_seq \
FROM unnest($1::bigint[], $2::text[]) AS k(c, u) \
CROSS JOIN LATERAL (SELECT read_seq FROM conv_users WHERE conv_id = k.c AND user_name = k.u) r";

const LOCK_DELIVERED: &str = "\
INSERT INTO delivered (user_name, device, conv_id, seq) \
SELECT u, d, c, 0 FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS t(u, d, c, i) \
ORDER BY i \
ON CONFLICT (user_name, device, conv_id) DO UPDATE SET seq = delivered.seq WHERE FALSE";

const SELECT_DELIVERED: &str = "\
SELECT k.u AS user_name, k.d AS device, k.c AS conv_id, r.seq \
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(u, d, c) \
CROSS JOIN LATERAL (SELECT seq FROM delivered \
  WHERE user_name = k.u AND device = k.d AND conv_id = k.c) r";

const INSERT_MESSAGES: &str = "\
INSERT INTO messages (conv_id, seq, sender, body, ts, client_id, attachment) \
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
  $6::text[], $7::text[])";

const UPDATE_CONVS: &str = "\
UPDATE conversations AS c SET last_seq = v.s, last_ts = v.t \
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(id, s, t) WHERE c.id = v.id";

const WRITE_READ: &str = "\
UPDATE conv_users AS c SET member = c.member OR v.m, read_seq = v.r \
FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::bigint[]) AS v(conv_id, user_name, m, r) \
WHERE c.conv_id = v.conv_id AND c.user_name = v.user_name";

const WRITE_DELIVERED: &str = "\
UPDATE delivered AS d SET seq = v.s \
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS v(u, dev, c, s) \
WHERE d.user_name = v.u AND d.device = v.dev AND d.conv_id = v.c";

impl BatchOps for PgOps<'_> {
    fn lock_convs(&mut self, convs: &[NewConv<'_>]) -> Result<Vec<ConvRow>, DbError> {
        let names: Vec<&str> = convs.iter().map(|c| c.name).collect();
        let a: Vec<Option<&str>> = convs.iter().map(|c| c.user_a).collect();
        let b: Vec<Option<&str>> = convs.iter().map(|c| c.user_b).collect();
        Sql(LOCK_CONVS)
            .bind::<Array<Text>, _>(&names)
            .bind::<Array<Nullable<Text>>, _>(&a)
            .bind::<Array<Nullable<Text>>, _>(&b)
            .execute(self.conn)?;
        self.find_convs(&names)
    }

    fn find_convs(&mut self, names: &[&str]) -> Result<Vec<ConvRow>, DbError> {
        Ok(Sql(SELECT_CONVS)
            .bind::<Array<Text>, _>(names)
            .load::<ConvRowSql>(self.conn)?
            .into_iter()
            .map(ConvRow::from)
            .collect())
    }

    fn find_client_ids(&mut self, keys: &[ClientKey]) -> Result<Vec<ClientHit>, DbError> {
        let c: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let s: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let ci: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        Ok(Sql(FIND_CLIENT_IDS)
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&s)
            .bind::<Array<Text>, _>(&ci)
            .load::<ClientIdSql>(self.conn)?
            .into_iter()
            .map(|r| ((r.conv_id, r.sender, r.client_id), (r.seq, r.ts)))
            .collect())
    }

    fn lock_read(&mut self, keys: &[ReadKey]) -> Result<Vec<(ReadKey, i64)>, DbError> {
        let c: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let u: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        Sql(LOCK_READ)
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&u)
            .execute(self.conn)?;
        Ok(Sql(SELECT_READ)
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<Text>, _>(&u)
            .load::<ReadSql>(self.conn)?
            .into_iter()
            .map(|r| ((r.conv_id, r.user_name), r.read_seq))
            .collect())
    }

    fn lock_delivered(
        &mut self,
        keys: &[DeliveredKey],
    ) -> Result<Vec<(DeliveredKey, i64)>, DbError> {
        let u: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let d: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let c: Vec<i64> = keys.iter().map(|k| k.2).collect();
        Sql(LOCK_DELIVERED)
            .bind::<Array<Text>, _>(&u)
            .bind::<Array<Text>, _>(&d)
            .bind::<Array<BigInt>, _>(&c)
            .execute(self.conn)?;
        Ok(Sql(SELECT_DELIVERED)
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
        Sql(INSERT_MESSAGES)
            .bind::<Array<BigInt>, _>(&conv)
            .bind::<Array<BigInt>, _>(&seq)
            .bind::<Array<Text>, _>(&sender)
            .bind::<Array<Text>, _>(&body)
            .bind::<Array<BigInt>, _>(&ts)
            .bind::<Array<Nullable<Text>>, _>(&cid)
            .bind::<Array<Nullable<Text>>, _>(&att)
            .execute(self.conn)?;
        Ok(())
    }

    fn update_convs(&mut self, rows: &[ConvWrite]) -> Result<(), DbError> {
        let id: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let s: Vec<i64> = rows.iter().map(|r| r.last_seq).collect();
        let t: Vec<i64> = rows.iter().map(|r| r.last_ts).collect();
        Sql(UPDATE_CONVS)
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
        Sql(WRITE_READ)
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
        Sql(WRITE_DELIVERED)
            .bind::<Array<Text>, _>(&u)
            .bind::<Array<Text>, _>(&d)
            .bind::<Array<BigInt>, _>(&c)
            .bind::<Array<BigInt>, _>(&s)
            .execute(self.conn)?;
        Ok(())
    }
}
