//! The group-commit algorithm, shared by both backends.
//!
//! Inside one transaction, [`write_batch`]:
//! 1. locks the rows of every conversation the batch touches (messages or
//!    cursors) in name order, creating those that receive their first
//!    message, and reads their `last_seq` / `last_ts`. Whoever writes
//!    a conversation's messages, members or cursors holds that lock, so
//!    concurrent writers (other processes on the same database) take turns
//!    per conversation and, locking in one order, never deadlock;
//! 2. looks up which `client_id`s of the batch are already stored;
//! 3. reads every read / delivered cursor the batch may move;
//! 4. runs the in-memory store's algorithm over that snapshot, so results
//!    match [`im_core::MemoryStore`] exactly;
//! 5. writes the new messages, counters, memberships and cursors.
//!
//! Only the cursors a message can move are read: the sender's read and
//! delivered cursors follow a message only when exactly one below it, and
//! every cursor is at most the conversation's last seq, so only the sender
//! of a conversation's first new message can be followed (and then along
//! the run of that sender's messages right after it).
//!
//! A backend provides the set-based operations of [`BatchOps`]; the SQLite
//! one runs one prepared statement per row (in-process, single writer), the
//! PostgreSQL one a fixed number of statements over arrays.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use im_core::ids::ConvId;
use im_core::store::{Appended, CursorOutcome, CursorUpdate, NewMessage};

use crate::error::{seq_i64, seq_u64, DbError};

/// A conversation to create if missing.
pub(crate) struct NewConv<'a> {
    /// Wire name (`dm:a:b`, `room:x`).
    pub name: &'a str,
    /// First member of a direct conversation.
    pub user_a: Option<&'a str>,
    /// Second member of a direct conversation.
    pub user_b: Option<&'a str>,
}

/// A conversation's counter row.
#[derive(Clone, Debug)]
pub(crate) struct ConvRow {
    pub id: i64,
    pub name: String,
    pub last_seq: i64,
    pub last_ts: i64,
}

/// A message to insert.
pub(crate) struct MessageRow {
    pub conv_id: i64,
    pub seq: i64,
    pub sender: String,
    pub body: String,
    pub ts: i64,
    pub client_id: Option<String>,
    pub attachment: Option<String>,
}

/// (conversation id, user): a read cursor / membership row.
pub(crate) type ReadKey = (i64, String);
/// (user, device, conversation id): a delivered cursor row.
pub(crate) type DeliveredKey = (String, String, i64);
/// (conversation id, sender, client_id).
pub(crate) type ClientKey = (i64, String, String);
/// A stored message's `(seq, ts)` under its client id.
pub(crate) type ClientHit = (ClientKey, (i64, i64));

/// What [`BatchOps::read_cursors`] reads of a `conv_users` row.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadRow {
    /// The read cursor.
    pub read: i64,
    /// Where a room member's cursors start (0 for everyone else).
    pub joined: i64,
}

/// A read cursor / membership row to write.
pub(crate) struct ReadWrite {
    pub conv_id: i64,
    pub user: String,
    /// Make the user a member (never unsets membership).
    pub member: bool,
    pub read_seq: i64,
}

/// A delivered cursor to write.
pub(crate) struct DeliveredWrite {
    pub user: String,
    pub device: String,
    pub conv_id: i64,
    pub seq: i64,
}

/// A conversation counter to write.
pub(crate) struct ConvWrite {
    pub id: i64,
    pub last_seq: i64,
    pub last_ts: i64,
}

/// The set-based operations one backend provides, all inside the caller's
/// transaction.
pub(crate) trait BatchOps {
    /// Locks the counter rows of the conversations among `names` (sorted)
    /// and of `create` (sorted, a subset of `names`), creating those of
    /// `create` that do not exist, and returns them in any order.
    fn lock_convs(
        &mut self,
        create: &[NewConv<'_>],
        names: &[&str],
    ) -> Result<Vec<ConvRow>, DbError>;
    /// Stored `(seq, ts)` of the keys that exist.
    fn find_client_ids(&mut self, keys: &[ClientKey]) -> Result<Vec<ClientHit>, DbError>;
    /// Read cursors of the keys whose rows exist (missing ones count as 0).
    fn read_cursors(&mut self, keys: &[ReadKey]) -> Result<Vec<(ReadKey, ReadRow)>, DbError>;
    /// Delivered cursors of the keys whose rows exist.
    fn delivered_cursors(
        &mut self,
        keys: &[DeliveredKey],
    ) -> Result<Vec<(DeliveredKey, i64)>, DbError>;
    /// Inserts messages and, for those with a client id, their
    /// `client_ids` rows.
    fn insert_messages(&mut self, rows: &[MessageRow]) -> Result<(), DbError>;
    /// Sets conversation counters (and `activity` to `last_ts`).
    fn update_convs(&mut self, rows: &[ConvWrite]) -> Result<(), DbError>;
    /// Sets read cursors / memberships, creating rows as needed (keys unique).
    fn write_read(&mut self, rows: &[ReadWrite]) -> Result<(), DbError>;
    /// Sets delivered cursors, creating rows as needed (keys unique).
    fn write_delivered(&mut self, rows: &[DeliveredWrite]) -> Result<(), DbError>;
    /// Creates the missing delivered cursors among `keys`, at their user's
    /// `conv_users.joined_seq` (0 without a row).
    fn ensure_delivered(&mut self, keys: &[DeliveredKey]) -> Result<(), DbError>;
}

/// Results of a batch, in input order.
pub(crate) type BatchResult = (Vec<Appended>, Vec<CursorOutcome>);

struct Conv {
    row: ConvRow,
    /// `last_seq` before this batch.
    seq_before: i64,
    /// Members of a direct conversation.
    direct: Option<(String, String)>,
    dirty: bool,
}

/// Runs one batch; see the module docs.
pub(crate) fn write_batch<O: BatchOps>(
    ops: &mut O,
    messages: &[NewMessage],
    cursors: &[CursorUpdate],
) -> Result<BatchResult, DbError> {
    let msg_names: Vec<String> = messages.iter().map(|m| m.conv.to_string()).collect();
    let cursor_names: Vec<String> = cursors.iter().map(|u| u.conv.to_string()).collect();

    // 1. Create the conversations receiving messages where needed, then
    //    lock every conversation the batch touches, in name order.
    let mut targets: BTreeMap<&str, &ConvId> = BTreeMap::new();
    for (m, name) in messages.iter().zip(&msg_names) {
        targets.entry(name.as_str()).or_insert(&m.conv);
    }
    let create: Vec<NewConv<'_>> = targets
        .iter()
        .map(|(name, id)| match id {
            ConvId::Direct(a, b) => NewConv {
                name,
                user_a: Some(a.as_str()),
                user_b: Some(b.as_str()),
            },
            ConvId::Room(_) => NewConv {
                name,
                user_a: None,
                user_b: None,
            },
        })
        .collect();
    let names: BTreeSet<&str> = msg_names
        .iter()
        .chain(&cursor_names)
        .map(String::as_str)
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let mut convs: HashMap<String, Conv> = HashMap::new();
    for row in ops.lock_convs(&create, &names)? {
        let direct = match targets.get(row.name.as_str()) {
            Some(ConvId::Direct(a, b)) => Some((a.as_str().to_owned(), b.as_str().to_owned())),
            _ => None,
        };
        insert_conv(&mut convs, row, direct);
    }
    if let Some(missing) = targets.keys().find(|n| !convs.contains_key(**n)) {
        return Err(DbError::Corrupt(format!(
            "conversation {missing} was not created"
        )));
    }

    // 2. Stored client ids.
    let mut client_keys: BTreeSet<ClientKey> = BTreeSet::new();
    for (m, name) in messages.iter().zip(&msg_names) {
        if let (Some(cid), Some(c)) = (&m.client_id, convs.get(name)) {
            client_keys.insert((c.row.id, m.from.as_str().to_owned(), cid.clone()));
        }
    }
    let stored: HashMap<ClientKey, (i64, i64)> = if client_keys.is_empty() {
        HashMap::new()
    } else {
        let keys: Vec<ClientKey> = client_keys.into_iter().collect();
        ops.find_client_ids(&keys)?.into_iter().collect()
    };

    // 3. The cursors this batch may move.
    let mut read_keys: BTreeSet<ReadKey> = BTreeSet::new();
    let mut delivered_keys: BTreeSet<DeliveredKey> = BTreeSet::new();
    let mut seen_first: HashSet<i64> = HashSet::new();
    for (m, name) in messages.iter().zip(&msg_names) {
        let Some(c) = convs.get(name) else { continue };
        if seen_first.contains(&c.row.id) {
            continue;
        }
        if let Some(cid) = &m.client_id {
            if stored.contains_key(&(c.row.id, m.from.as_str().to_owned(), cid.clone())) {
                continue;
            }
        }
        // The conversation's first new message.
        seen_first.insert(c.row.id);
        read_keys.insert((c.row.id, m.from.as_str().to_owned()));
        delivered_keys.insert((m.from.as_str().to_owned(), m.device.clone(), c.row.id));
        if let (Some((a, b)), 0) = (&c.direct, c.seq_before) {
            read_keys.insert((c.row.id, a.clone()));
            read_keys.insert((c.row.id, b.clone()));
        }
    }
    for (u, name) in cursors.iter().zip(&cursor_names) {
        if let Some(c) = convs.get(name) {
            delivered_keys.insert((u.user.as_str().to_owned(), u.device.clone(), c.row.id));
            if u.read {
                read_keys.insert((c.row.id, u.user.as_str().to_owned()));
            }
        }
    }
    // A missing delivered cursor starts where its user joined the room.
    for (user, _, conv) in &delivered_keys {
        read_keys.insert((*conv, user.clone()));
    }
    let mut read: HashMap<ReadKey, ReadRow> = HashMap::new();
    if !read_keys.is_empty() {
        let keys: Vec<ReadKey> = read_keys.into_iter().collect();
        let found: HashMap<ReadKey, ReadRow> = ops.read_cursors(&keys)?.into_iter().collect();
        for k in keys {
            let v = found.get(&k).copied().unwrap_or_default();
            read.insert(k, v);
        }
    }
    // `None`: no row yet (which matters once the user has joined a room).
    let mut delivered: HashMap<DeliveredKey, Option<i64>> = HashMap::new();
    if !delivered_keys.is_empty() {
        let keys: Vec<DeliveredKey> = delivered_keys.into_iter().collect();
        let found: HashMap<DeliveredKey, i64> = ops.delivered_cursors(&keys)?.into_iter().collect();
        for k in keys {
            let v = found.get(&k).copied();
            delivered.insert(k, v);
        }
    }
    let delivered_before = delivered.clone();

    // 4. The in-memory store's algorithm over the snapshot.
    let mut in_batch: HashMap<ClientKey, (i64, i64)> = HashMap::new();
    let mut rows = Vec::new();
    let mut appended = Vec::with_capacity(messages.len());
    let mut members: BTreeSet<ReadKey> = BTreeSet::new();
    let mut read_dirty: BTreeSet<ReadKey> = BTreeSet::new();
    let mut ensure: BTreeSet<DeliveredKey> = BTreeSet::new();
    for (m, name) in messages.iter().zip(&msg_names) {
        let c = convs
            .get_mut(name)
            .ok_or_else(|| DbError::Corrupt(format!("conversation {name} vanished")))?;
        let from = m.from.as_str();
        if let Some(cid) = &m.client_id {
            let key = (c.row.id, from.to_owned(), cid.clone());
            if let Some(&(seq, ts)) = in_batch.get(&key).or_else(|| stored.get(&key)) {
                appended.push(Appended {
                    seq: seq_u64(seq)?,
                    ts,
                    duplicate: true,
                });
                continue;
            }
        }
        if let Some((a, b)) = &c.direct {
            if c.seq_before == 0 {
                members.insert((c.row.id, a.clone()));
                members.insert((c.row.id, b.clone()));
            }
        }
        let seq = c.row.last_seq + 1;
        let ts = m.now.max(c.row.last_ts);
        c.row.last_seq = seq;
        c.row.last_ts = ts;
        c.dirty = true;
        if let Some(cid) = &m.client_id {
            in_batch.insert((c.row.id, from.to_owned(), cid.clone()), (seq, ts));
        }
        rows.push(MessageRow {
            conv_id: c.row.id,
            seq,
            sender: from.to_owned(),
            body: m.body.clone(),
            ts,
            client_id: m.client_id.clone(),
            attachment: m.attachment.clone(),
        });
        // The sender has seen what they sent: follow it when just below.
        let rk = (c.row.id, from.to_owned());
        let joined = read.get(&rk).map_or(0, |r| r.joined);
        if let Some(r) = read.get_mut(&rk) {
            if r.read + 1 == seq {
                r.read = seq;
                read_dirty.insert(rk);
            }
        }
        let dk = (from.to_owned(), m.device.clone(), c.row.id);
        match delivered.get_mut(&dk) {
            Some(d) => {
                let v = d.get_or_insert(joined);
                if *v + 1 == seq {
                    *v = seq;
                }
            }
            // Not loaded: it cannot follow (see the module docs), but in a
            // room a missing row must be created as the in-memory store
            // does (at the sender's joining seq): a row differs from no
            // row once the sender (re)joins.
            None if c.direct.is_none() => {
                ensure.insert(dk);
            }
            None => {}
        }
        appended.push(Appended {
            seq: seq_u64(seq)?,
            ts,
            duplicate: false,
        });
    }
    let mut outcomes = Vec::with_capacity(cursors.len());
    for (u, name) in cursors.iter().zip(&cursor_names) {
        let mut out = CursorOutcome::default();
        if let Some(c) = convs.get(name) {
            let target = seq_i64(u.delivered).min(c.row.last_seq);
            let dk = (u.user.as_str().to_owned(), u.device.clone(), c.row.id);
            if let Some(d) = delivered.get_mut(&dk) {
                let v = d.get_or_insert(0);
                *v = (*v).max(target);
            }
            if u.read {
                let rk = (c.row.id, u.user.as_str().to_owned());
                if let Some(r) = read.get_mut(&rk) {
                    if target > r.read {
                        r.read = target;
                        read_dirty.insert(rk);
                        out.read_advanced_to = Some(seq_u64(target)?);
                    }
                }
            }
        }
        outcomes.push(out);
    }

    // 5. Write.
    if !rows.is_empty() {
        ops.insert_messages(&rows)?;
    }
    let mut conv_writes: Vec<ConvWrite> = convs
        .values()
        .filter(|c| c.dirty)
        .map(|c| ConvWrite {
            id: c.row.id,
            last_seq: c.row.last_seq,
            last_ts: c.row.last_ts,
        })
        .collect();
    if !conv_writes.is_empty() {
        conv_writes.sort_by_key(|c| c.id);
        ops.update_convs(&conv_writes)?;
    }
    let read_writes: Vec<ReadWrite> = members
        .union(&read_dirty)
        .map(|k| ReadWrite {
            conv_id: k.0,
            user: k.1.clone(),
            member: members.contains(k),
            read_seq: read.get(k).map_or(0, |r| r.read),
        })
        .collect();
    if !read_writes.is_empty() {
        ops.write_read(&read_writes)?;
    }
    let mut delivered_writes: Vec<DeliveredWrite> = delivered
        .into_iter()
        .filter_map(|(k, v)| {
            let seq = v?;
            (delivered_before.get(&k) != Some(&Some(seq))).then_some(DeliveredWrite {
                user: k.0,
                device: k.1,
                conv_id: k.2,
                seq,
            })
        })
        .collect();
    if !delivered_writes.is_empty() {
        delivered_writes
            .sort_by(|a, b| (&a.user, &a.device, a.conv_id).cmp(&(&b.user, &b.device, b.conv_id)));
        ops.write_delivered(&delivered_writes)?;
    }
    if !ensure.is_empty() {
        let keys: Vec<DeliveredKey> = ensure.into_iter().collect();
        ops.ensure_delivered(&keys)?;
    }
    Ok((appended, outcomes))
}

fn insert_conv(convs: &mut HashMap<String, Conv>, row: ConvRow, direct: Option<(String, String)>) {
    convs.insert(
        row.name.clone(),
        Conv {
            seq_before: row.last_seq,
            direct,
            dirty: false,
            row,
        },
    );
}
