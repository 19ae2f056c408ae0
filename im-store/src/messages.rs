//! [`MessageStore`](im_core::store::MessageStore), written once for every
//! backend: the group commit (through [`Db::batch`]), paging, membership
//! and the conversation listing.

use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::QueryableByName;

use im_core::error::StoreResult;
use im_core::ids::{ConvId, UserId};
use im_core::store::{
    Appended, ConvSummary, CursorOutcome, CursorUpdate, NewMessage, StoredMessage,
};

use crate::db::Db;
use crate::error::{limit_i64, seq_i64, seq_u64, DbError};
use crate::sql::{sql, statements, Conn, Exec, I64Row, Reads};

/// What the message statements need of a connection: the rows they read.
pub(crate) trait MessagesConn:
    Conn<Backend: Reads<SeqTsRow> + Reads<MessageRow> + Reads<I64Row> + Reads<ConvListRow>>
{
}

impl<C> MessagesConn for C where
    C: Conn<Backend: Reads<SeqTsRow> + Reads<MessageRow> + Reads<I64Row> + Reads<ConvListRow>>
{
}

/// Where a message landed.
#[derive(QueryableByName)]
pub(crate) struct SeqTsRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    ts: i64,
}

/// A `messages` row without its conversation.
#[derive(QueryableByName)]
pub(crate) struct MessageRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    sender: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = BigInt)]
    ts: i64,
    #[diesel(sql_type = Nullable<Text>)]
    client_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    attachment: Option<String>,
}

impl MessageRow {
    fn into_message(self, conv: &ConvId) -> Result<StoredMessage, DbError> {
        Ok(StoredMessage {
            conv: conv.clone(),
            seq: seq_u64(self.seq)?,
            from: UserId::from_stored(&self.sender),
            body: self.body,
            ts: self.ts,
            client_id: self.client_id,
            attachment: self.attachment,
        })
    }
}

statements! {
    /// Parameters: conversation name, sender, client id.
    FindClientId = "SELECT k.seq, k.ts FROM client_ids k \
        JOIN conversations c ON c.id = k.conv_id \
        WHERE c.name = ? AND k.sender = ? AND k.client_id = ? LIMIT 1";
    /// Parameters: conversation name, after, limit.
    MessagesAfter = "SELECT m.seq, m.sender, m.body, m.ts, m.client_id, m.attachment \
        FROM messages m JOIN conversations c ON c.id = m.conv_id \
        WHERE c.name = ? AND m.seq > ? ORDER BY m.seq ASC LIMIT ?";
    /// Parameters: conversation name, before, limit.
    MessagesBefore = "SELECT m.seq, m.sender, m.body, m.ts, m.client_id, m.attachment \
        FROM messages m JOIN conversations c ON c.id = m.conv_id \
        WHERE c.name = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?";
    /// Parameters: conversation name, user, TRUE.
    IsMember = "SELECT cu.conv_id AS v FROM conv_users cu \
        JOIN conversations c ON c.id = cu.conv_id \
        WHERE c.name = ? AND cu.user_name = ? AND cu.member = ? LIMIT 1";
}

/// Appends messages and applies cursor updates in one transaction.
pub(crate) fn write_batch(
    db: &impl Db,
    messages: &[NewMessage],
    cursors: &[CursorUpdate],
) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)> {
    if messages.is_empty() && cursors.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    Ok(db.batch(messages, cursors)?)
}

/// The original result of an earlier send with this `client_id`.
pub(crate) fn find_client_id(
    db: &impl Db,
    conv: &ConvId,
    from: &UserId,
    client_id: &str,
) -> StoreResult<Option<Appended>> {
    let name = conv.to_string();
    let row = db.read(|c| {
        Ok(sql::<FindClientId>()
            .bind::<Text, _>(name.as_str())
            .bind::<Text, _>(from.as_str())
            .bind::<Text, _>(client_id)
            .row::<SeqTsRow, _>(c)?)
    })?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some(Appended {
            seq: seq_u64(r.seq)?,
            ts: r.ts,
            duplicate: true,
            refused: None,
        })),
    }
}

/// Up to `limit` messages with `seq > after`, ascending.
pub(crate) fn messages_after(
    db: &impl Db,
    conv: &ConvId,
    after: u64,
    limit: usize,
) -> StoreResult<Vec<StoredMessage>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let name = conv.to_string();
    Ok(db.read(|c| {
        sql::<MessagesAfter>()
            .bind::<Text, _>(name.as_str())
            .bind::<BigInt, _>(seq_i64(after))
            .bind::<BigInt, _>(limit_i64(limit))
            .rows::<MessageRow, _>(c)?
            .into_iter()
            .map(|r| r.into_message(conv))
            .collect()
    })?)
}

/// The newest `limit` messages with `seq < before` (all when `None`), ascending.
pub(crate) fn messages_before(
    db: &impl Db,
    conv: &ConvId,
    before: Option<u64>,
    limit: usize,
) -> StoreResult<Vec<StoredMessage>> {
    if limit == 0 || before == Some(0) {
        return Ok(Vec::new());
    }
    let name = conv.to_string();
    let before = before.map_or(i64::MAX, seq_i64);
    let mut v: Vec<StoredMessage> = db.read(|c| {
        sql::<MessagesBefore>()
            .bind::<Text, _>(name.as_str())
            .bind::<BigInt, _>(before)
            .bind::<BigInt, _>(limit_i64(limit))
            .rows::<MessageRow, _>(c)?
            .into_iter()
            .map(|r| r.into_message(conv))
            .collect()
    })?;
    v.reverse();
    Ok(v)
}

/// Whether `user` belongs to `conv`.
pub(crate) fn is_member(db: &impl Db, conv: &ConvId, user: &UserId) -> StoreResult<bool> {
    let name = conv.to_string();
    Ok(db.read(|c| {
        Ok(sql::<IsMember>()
            .bind::<Text, _>(name.as_str())
            .bind::<Text, _>(user.as_str())
            .bind::<Bool, _>(true)
            .row::<I64Row, _>(c)?
            .is_some())
    })?)
}

/// Every conversation of `user` with cursors for `device`, ordered as the
/// in-memory store orders them: most recent activity first, then by id.
pub(crate) fn conversations(
    db: &impl Db,
    user: &UserId,
    device: &str,
) -> StoreResult<Vec<ConvSummary>> {
    let me = user.as_str();
    let mut v = db.read(|c| {
        let rows = sql::<ListConvs>()
            .bind::<Text, _>(me)
            .bind::<Text, _>(device)
            .bind::<Text, _>(me)
            .bind::<Text, _>(me)
            .bind::<Text, _>(me)
            .rows::<ConvListRow, _>(c)?;
        summaries(rows)
    })?;
    v.sort_by(|a, b| {
        b.activity
            .cmp(&a.activity)
            .then_with(|| a.conv.cmp(&b.conv))
    });
    Ok(v)
}

/// Parses a conversation name read back from the database.
pub(crate) fn parse_conv(name: &str) -> Result<ConvId, DbError> {
    ConvId::parse(name).ok_or_else(|| DbError::Corrupt(format!("bad conversation name {name:?}")))
}

/// One row of the conversation listing query (same columns on both backends).
#[derive(QueryableByName)]
pub(crate) struct ConvListRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    activity: i64,
    #[diesel(sql_type = BigInt)]
    read_seq: i64,
    #[diesel(sql_type = BigInt)]
    delivered_seq: i64,
    #[diesel(sql_type = BigInt)]
    joined_seq: i64,
    #[diesel(sql_type = BigInt)]
    own_after_read: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    peer_read_seq: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    m_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    m_sender: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    m_body: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    m_ts: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    m_client_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    m_attachment: Option<String>,
}

statements! {
    /// The conversation listing query; its parameters are user, device,
    /// user, user, user.
    ///
    /// `unread` = messages after the read cursor minus the user's own ones
    /// there, counted on the `(conv_id, sender, seq)` index: the user's own
    /// messages after their read cursor are few (sending moves the cursor).
    ListConvs = LIST_CONVS_SQL;
}

const LIST_CONVS_SQL: &str = "\
SELECT c.name AS name, c.last_seq AS last_seq, c.activity AS activity, cu.read_seq AS read_seq, \
  COALESCE((SELECT d.seq FROM delivered d \
            WHERE d.user_name = ? AND d.device = ? AND d.conv_id = c.id), 0) AS delivered_seq, \
  cu.joined_seq AS joined_seq, \
  (SELECT COUNT(*) FROM messages o \
   WHERE o.conv_id = c.id AND o.sender = ? AND o.seq > cu.read_seq) AS own_after_read, \
  CASE WHEN c.user_a IS NULL THEN NULL ELSE \
    COALESCE((SELECT p.read_seq FROM conv_users p WHERE p.conv_id = c.id AND p.user_name = \
              CASE WHEN c.user_a = ? THEN c.user_b ELSE c.user_a END), 0) END AS peer_read_seq, \
  m.seq AS m_seq, m.sender AS m_sender, m.body AS m_body, m.ts AS m_ts, \
  m.client_id AS m_client_id, m.attachment AS m_attachment \
FROM conv_users cu \
JOIN conversations c ON c.id = cu.conv_id \
LEFT JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq \
WHERE cu.user_name = ? AND cu.member";

/// Turns listing rows into summaries (unsorted).
fn summaries(rows: Vec<ConvListRow>) -> Result<Vec<ConvSummary>, DbError> {
    rows.into_iter()
        .map(|r| {
            let conv = parse_conv(&r.name)?;
            let last_seq = seq_u64(r.last_seq)?;
            let read_seq = seq_u64(r.read_seq)?;
            let own = seq_u64(r.own_after_read)?;
            let unread = last_seq
                .checked_sub(read_seq)
                .and_then(|n| n.checked_sub(own))
                .ok_or_else(|| {
                    DbError::Corrupt(format!("cursors of {} beyond its last message", r.name))
                })?;
            let last = match (r.m_seq, r.m_sender, r.m_body, r.m_ts) {
                (Some(seq), Some(sender), Some(body), Some(ts)) => Some(
                    MessageRow {
                        seq,
                        sender,
                        body,
                        ts,
                        client_id: r.m_client_id,
                        attachment: r.m_attachment,
                    }
                    .into_message(&conv)?,
                ),
                _ => None,
            };
            Ok(ConvSummary {
                last_seq,
                activity: r.activity,
                read_seq,
                // A room member's delivered cursor starts where they joined.
                delivered_seq: seq_u64(r.delivered_seq.max(r.joined_seq))?,
                unread,
                peer_read_seq: r.peer_read_seq.map(seq_u64).transpose()?,
                last,
                conv,
            })
        })
        .collect()
}
