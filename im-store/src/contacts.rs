//! [`ContactStore`](im_core::store::ContactStore), written once for every
//! backend: contact relations and blocks.

use diesel::sql_types::{Nullable, Text};
use diesel::QueryableByName;

use im_core::error::StoreResult;
use im_core::ids::UserId;
use im_core::store::{ContactState, Relation};

use crate::db::Db;
use crate::sql::{sql, statements, Conn, Exec, Reads, TextRow};

/// What the contact statements need of a connection: the rows they read.
pub(crate) trait ContactsConn:
    Conn<Backend: Reads<RequestedRow> + Reads<RelationRow> + Reads<TextRow>>
{
}

impl<C> ContactsConn for C where
    C: Conn<Backend: Reads<RequestedRow> + Reads<RelationRow> + Reads<TextRow>>
{
}

/// Who asked, in a `relations` row (`NULL`: mutual).
#[derive(QueryableByName)]
pub(crate) struct RequestedRow {
    #[diesel(sql_type = Nullable<Text>)]
    requested_by: Option<String>,
}

/// A `relations` row.
#[derive(QueryableByName)]
pub(crate) struct RelationRow {
    #[diesel(sql_type = Text)]
    user_a: String,
    #[diesel(sql_type = Text)]
    user_b: String,
    #[diesel(sql_type = Nullable<Text>)]
    requested_by: Option<String>,
}

statements! {
    /// Parameters: the pair (smaller name first).
    SelectRelation = "SELECT requested_by FROM relations WHERE user_a = ? AND user_b = ?";
    /// Parameters: the pair (smaller name first).
    DeleteRelation = "DELETE FROM relations WHERE user_a = ? AND user_b = ?";
    /// Parameters: the pair (smaller name first), who asked (`NULL`: mutual).
    UpsertRelation = "INSERT INTO relations (user_a, user_b, requested_by) VALUES (?, ?, ?) \
        ON CONFLICT (user_a, user_b) DO UPDATE SET requested_by = excluded.requested_by";
    /// Parameters: the user, twice.
    Relations = "SELECT user_a, user_b, requested_by FROM relations \
        WHERE user_a = ? OR user_b = ?";
    /// Parameters: by, target.
    InsertBlock = "INSERT INTO blocks (by_user, target) VALUES (?, ?) ON CONFLICT DO NOTHING";
    /// Parameters: by, target.
    DeleteBlock = "DELETE FROM blocks WHERE by_user = ? AND target = ?";
    /// Parameter: by.
    Blocks = "SELECT target AS v FROM blocks WHERE by_user = ?";
    /// Parameter: target.
    BlockedBy = "SELECT by_user AS v FROM blocks WHERE target = ?";
}

/// The `(smaller, larger)` pair a relation is stored under.
fn pair<'a>(a: &'a UserId, b: &'a UserId) -> (&'a str, &'a str) {
    if a < b {
        (a.as_str(), b.as_str())
    } else {
        (b.as_str(), a.as_str())
    }
}

/// Names as user ids, sorted.
fn sorted_users(rows: Vec<TextRow>) -> Vec<UserId> {
    let mut v: Vec<UserId> = rows.iter().map(|r| UserId::from_stored(&r.v)).collect();
    v.sort();
    v
}

/// The relation between two users.
pub(crate) fn relation(db: &impl Db, a: &UserId, b: &UserId) -> StoreResult<Relation> {
    let (x, y) = pair(a, b);
    let row = db.read(|c| {
        Ok(sql::<SelectRelation>()
            .bind::<Text, _>(x)
            .bind::<Text, _>(y)
            .row::<RequestedRow, _>(c)?)
    })?;
    Ok(match row.map(|r| r.requested_by) {
        None => Relation::None,
        Some(None) => Relation::Mutual,
        Some(Some(by)) => Relation::Requested {
            by: UserId::from_stored(&by),
        },
    })
}

/// Sets the relation between two users.
pub(crate) fn set_relation(
    db: &impl Db,
    a: &UserId,
    b: &UserId,
    rel: &Relation,
) -> StoreResult<()> {
    let (x, y) = pair(a, b);
    db.write(|c| {
        match rel {
            Relation::None => sql::<DeleteRelation>()
                .bind::<Text, _>(x)
                .bind::<Text, _>(y)
                .run(c)?,
            Relation::Mutual | Relation::Requested { .. } => {
                let by = match rel {
                    Relation::Requested { by } => Some(by.as_str()),
                    _ => None,
                };
                sql::<UpsertRelation>()
                    .bind::<Text, _>(x)
                    .bind::<Text, _>(y)
                    .bind::<Nullable<Text>, _>(by)
                    .run(c)?
            }
        };
        crate::rights::bump(c)?;
        Ok(())
    })?;
    Ok(())
}

/// A user's contacts and pending requests, by peer name.
pub(crate) fn contacts(db: &impl Db, user: &UserId) -> StoreResult<Vec<(UserId, ContactState)>> {
    let me = user.as_str();
    let rows = db.read(|c| {
        Ok(sql::<Relations>()
            .bind::<Text, _>(me)
            .bind::<Text, _>(me)
            .rows::<RelationRow, _>(c)?)
    })?;
    let mut out: Vec<(UserId, ContactState)> = rows
        .into_iter()
        .map(|r| {
            let peer = if r.user_a == me { r.user_b } else { r.user_a };
            let state = match r.requested_by {
                None => ContactState::Mutual,
                Some(by) if by == me => ContactState::PendingOut,
                Some(_) => ContactState::PendingIn,
            };
            (UserId::from_stored(&peer), state)
        })
        .collect();
    out.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(out)
}

/// Blocks or unblocks `target` for `by`.
pub(crate) fn set_block(
    db: &impl Db,
    by: &UserId,
    target: &UserId,
    blocked: bool,
) -> StoreResult<()> {
    db.write(|c| {
        if blocked {
            sql::<InsertBlock>()
                .bind::<Text, _>(by.as_str())
                .bind::<Text, _>(target.as_str())
                .run(c)?;
            crate::rights::bump(c)?;
        } else {
            sql::<DeleteBlock>()
                .bind::<Text, _>(by.as_str())
                .bind::<Text, _>(target.as_str())
                .run(c)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Users `by` has blocked, sorted.
pub(crate) fn blocks(db: &impl Db, by: &UserId) -> StoreResult<Vec<UserId>> {
    let rows = db.read(|c| {
        Ok(sql::<Blocks>()
            .bind::<Text, _>(by.as_str())
            .rows::<TextRow, _>(c)?)
    })?;
    Ok(sorted_users(rows))
}

/// Users who have blocked `target`, sorted.
pub(crate) fn blocked_by(db: &impl Db, target: &UserId) -> StoreResult<Vec<UserId>> {
    let rows = db.read(|c| {
        Ok(sql::<BlockedBy>()
            .bind::<Text, _>(target.as_str())
            .rows::<TextRow, _>(c)?)
    })?;
    Ok(sorted_users(rows))
}
