//! [`ChangeStore`](im_core::store::ChangeStore), written once for every
//! backend: the change log other server processes read (table `changes`).

use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::QueryableByName;

use im_core::error::{StoreError, StoreResult};
use im_core::ids::{Millis, RoomName, UserId};
use im_core::store::{Change, ChangeRecord};

use crate::db::Db;
use crate::sql::{sql, statements, Conn, Exec, I64Row, Reads};

/// What the change statements need of a connection: the rows they read.
pub(crate) trait ChangesConn: Conn<Backend: Reads<ChangeRow> + Reads<I64Row>> {}

impl<C> ChangesConn for C where C: Conn<Backend: Reads<ChangeRow> + Reads<I64Row>> {}

/// A `changes` row.
#[derive(QueryableByName)]
pub(crate) struct ChangeRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    origin: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
}

statements! {
    /// Orders appends (parameter: an empty value). The upsert holds one
    /// row's lock until commit, so ids commit in the order they are drawn:
    /// a reader that has seen id n never later finds a smaller id appear
    /// (PostgreSQL hands sequence values out before commit).
    LockChanges = "INSERT INTO server_settings (key, value) VALUES ('changes_order', ?) \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    /// Parameters: origin, kind, a, b, at.
    InsertChange = "INSERT INTO changes (origin, kind, a, b, at) VALUES (?, ?, ?, ?, ?)";
    /// Parameters: after, limit.
    ChangesAfter = "SELECT id, origin, kind, a, b FROM changes WHERE id > ? ORDER BY id LIMIT ?";
    /// The newest position.
    LastChange = "SELECT COALESCE(MAX(id), 0) AS v FROM changes";
    /// Parameter: before.
    PruneChanges = "DELETE FROM changes WHERE at < ?";
}

/// A change as (kind, a, b).
fn columns(c: &Change) -> (&'static str, &str, Option<&str>) {
    match c {
        Change::Contact { a, b } => ("contact", a.as_str(), Some(b.as_str())),
        Change::Room { room } => ("room", room.as_str(), None),
        Change::TokenRevoked { user, token_hash } => ("token", user.as_str(), Some(token_hash)),
        Change::TokensRevoked { user, keep } => ("tokens", user.as_str(), keep.as_deref()),
        _ => ("unknown", "", None),
    }
}

/// A row as a change; `None` for a kind this version does not know.
fn record(r: ChangeRow) -> StoreResult<Option<ChangeRecord>> {
    let bad = |what: &str| StoreError::corrupt(format!("change {}: bad {what}", r.id));
    let change = match (r.kind.as_str(), r.b) {
        ("contact", Some(b)) => Change::Contact {
            a: UserId::from_stored(&r.a),
            b: UserId::from_stored(&b),
        },
        ("room", _) => Change::Room {
            room: RoomName::from_stored(&r.a),
        },
        ("token", Some(h)) => Change::TokenRevoked {
            user: UserId::from_stored(&r.a),
            token_hash: h,
        },
        ("tokens", keep) => Change::TokensRevoked {
            user: UserId::from_stored(&r.a),
            keep,
        },
        ("contact" | "token", None) => return Err(bad("b")),
        _ => return Ok(None),
    };
    Ok(Some(ChangeRecord {
        id: u64::try_from(r.id).map_err(|_| bad("id"))?,
        origin: r.origin as u64,
        change,
    }))
}

/// Appends a change.
pub(crate) fn publish_change(
    db: &impl Db,
    origin: u64,
    change: &Change,
    at: Millis,
) -> StoreResult<()> {
    let (kind, a, b) = columns(change);
    db.txn(|c| {
        sql::<LockChanges>().bind::<Binary, _>(&[][..]).run(c)?;
        sql::<InsertChange>()
            .bind::<BigInt, _>(origin as i64)
            .bind::<Text, _>(kind)
            .bind::<Text, _>(a)
            .bind::<Nullable<Text>, _>(b)
            .bind::<BigInt, _>(at)
            .run(c)?;
        Ok(())
    })?;
    Ok(())
}

/// Up to `limit` changes after `after`, oldest first.
pub(crate) fn changes_after(
    db: &impl Db,
    after: u64,
    limit: usize,
) -> StoreResult<Vec<ChangeRecord>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db.read(|c| {
        Ok(sql::<ChangesAfter>()
            .bind::<BigInt, _>(after)
            .bind::<BigInt, _>(limit)
            .rows::<ChangeRow, _>(c)?)
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.extend(record(r)?);
    }
    Ok(out)
}

/// The newest position (0: none).
pub(crate) fn last_change_id(db: &impl Db) -> StoreResult<u64> {
    let v = db.read(|c| Ok(sql::<LastChange>().row::<I64Row, _>(c)?))?;
    Ok(v.map_or(0, |r| u64::try_from(r.v).unwrap_or(0)))
}

/// Forgets changes made before `before`.
pub(crate) fn prune_changes(db: &impl Db, before: Millis) -> StoreResult<()> {
    db.write(|c| {
        sql::<PruneChanges>().bind::<BigInt, _>(before).run(c)?;
        Ok(())
    })?;
    Ok(())
}
