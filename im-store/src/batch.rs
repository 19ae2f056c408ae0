//! The group-commit algorithm, shared by both backends.
//!
//! Inside one transaction, [`write_batch`]:
//! 1. locks (creating when missing) the counter rows of every conversation
//!    that receives a message, in name order so concurrent writers never
//!    deadlock, and reads their `last_seq` / `last_ts`;
//! 2. looks up the conversations that only cursor updates name;
//! 3. looks up which `client_id`s of the batch are already stored;
//! 4. locks and reads every read / delivered cursor the batch may move
//!    (sorted, after the conversations);
//! 5. runs the in-memory store's algorithm over that snapshot, so results
//!    match [`im_core::MemoryStore`] exactly;
//! 6. writes the new messages, counters, memberships and cursors.
//!
//! Only the cursors a message can move are loaded: the sender's read and
//! delivered cursors follow a message only when exactly one below it, and
//! every cursor is at most the conversation's last seq, so only the sender
//! of a conversation's first new message can be followed (and then along
//! the run of that sender's messages right after it).
//!
//! A backend provides the set-based operations of [`BatchOps`]; the SQLite
//! one runs one cached statement per row (in-process, single writer), the
//! PostgreSQL one a fixed number of statements over arrays.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use im_core::ids::ConvId;
use im_core::store::{Appended, CursorOutcome, CursorUpdate, NewMessage};

use crate::error::{seq_i64, seq_u64, DbError};

/// A conversation to lock or create.
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
/// transaction. Keys are passed sorted; lock operations must take row locks
/// in that order.
pub(crate) trait BatchOps {
    /// Locks the conversations' counter rows (creating missing ones) and
    /// returns them, in any order.
    fn lock_convs(&mut self, convs: &[NewConv<'_>]) -> Result<Vec<ConvRow>, DbError>;
    /// Existing conversations among `names` (no lock).
    fn find_convs(&mut self, names: &[&str]) -> Result<Vec<ConvRow>, DbError>;
    /// Stored `(seq, ts)` of the keys that exist.
    fn find_client_ids(&mut self, keys: &[ClientKey]) -> Result<Vec<ClientHit>, DbError>;
    /// Locks and reads read cursors; missing rows may be omitted (they count as 0).
    fn lock_read(&mut self, keys: &[ReadKey]) -> Result<Vec<(ReadKey, i64)>, DbError>;
    /// Locks and reads delivered cursors; missing rows may be omitted.
    fn lock_delivered(
        &mut self,
        keys: &[DeliveredKey],
    ) -> Result<Vec<(DeliveredKey, i64)>, DbError>;
    /// Inserts messages.
    fn insert_messages(&mut self, rows: &[MessageRow]) -> Result<(), DbError>;
    /// Sets conversation counters.
    fn update_convs(&mut self, rows: &[ConvWrite]) -> Result<(), DbError>;
    /// Writes read cursors / memberships (creating rows as needed).
    fn write_read(&mut self, rows: &[ReadWrite]) -> Result<(), DbError>;
    /// Writes delivered cursors (creating rows as needed).
    fn write_delivered(&mut self, rows: &[DeliveredWrite]) -> Result<(), DbError>;
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

    // 1. Lock the conversations receiving messages, in name order.
    let mut targets: BTreeMap<&str, &ConvId> = BTreeMap::new();
    for (m, name) in messages.iter().zip(&msg_names) {
        targets.entry(name.as_str()).or_insert(&m.conv);
    }
    let new_convs: Vec<NewConv<'_>> = targets
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
    let mut convs: HashMap<String, Conv> = HashMap::new();
    if !new_convs.is_empty() {
        for row in ops.lock_convs(&new_convs)? {
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
    }

    // 2. Conversations only cursors name: read, not locked.
    let others: BTreeSet<&str> = cursor_names
        .iter()
        .map(String::as_str)
        .filter(|n| !convs.contains_key(*n))
        .collect();
    if !others.is_empty() {
        let others: Vec<&str> = others.into_iter().collect();
        for row in ops.find_convs(&others)? {
            insert_conv(&mut convs, row, None);
        }
    }

    // 3. Stored client ids.
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

    // 4. The cursors this batch may move.
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
    let mut read: HashMap<ReadKey, i64> = HashMap::new();
    if !read_keys.is_empty() {
        let keys: Vec<ReadKey> = read_keys.into_iter().collect();
        let found: HashMap<ReadKey, i64> = ops.lock_read(&keys)?.into_iter().collect();
        for k in keys {
            let v = found.get(&k).copied().unwrap_or(0);
            read.insert(k, v);
        }
    }
    let mut delivered: HashMap<DeliveredKey, i64> = HashMap::new();
    if !delivered_keys.is_empty() {
        let keys: Vec<DeliveredKey> = delivered_keys.into_iter().collect();
        let found: HashMap<DeliveredKey, i64> = ops.lock_delivered(&keys)?.into_iter().collect();
        for k in keys {
            let v = found.get(&k).copied().unwrap_or(0);
            delivered.insert(k, v);
        }
    }

    // 5. The in-memory store's algorithm over the snapshot.
    let mut in_batch: HashMap<ClientKey, (i64, i64)> = HashMap::new();
    let mut rows = Vec::new();
    let mut appended = Vec::with_capacity(messages.len());
    let mut members: BTreeSet<ReadKey> = BTreeSet::new();
    let mut read_dirty: BTreeSet<ReadKey> = BTreeSet::new();
    let mut delivered_dirty: BTreeSet<DeliveredKey> = BTreeSet::new();
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
        if let Some(r) = read.get_mut(&rk) {
            if *r + 1 == seq {
                *r = seq;
                read_dirty.insert(rk);
            }
        }
        let dk = (from.to_owned(), m.device.clone(), c.row.id);
        if let Some(d) = delivered.get_mut(&dk) {
            if *d + 1 == seq {
                *d = seq;
                delivered_dirty.insert(dk);
            }
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
                if target > *d {
                    *d = target;
                    delivered_dirty.insert(dk);
                }
            }
            if u.read {
                let rk = (c.row.id, u.user.as_str().to_owned());
                if let Some(r) = read.get_mut(&rk) {
                    if target > *r {
                        *r = target;
                        read_dirty.insert(rk);
                        out.read_advanced_to = Some(seq_u64(target)?);
                    }
                }
            }
        }
        outcomes.push(out);
    }

    // 6. Write.
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
            read_seq: read.get(k).copied().unwrap_or(0),
        })
        .collect();
    if !read_writes.is_empty() {
        ops.write_read(&read_writes)?;
    }
    let delivered_writes: Vec<DeliveredWrite> = delivered_dirty
        .into_iter()
        .map(|k| {
            let seq = delivered.get(&k).copied().unwrap_or(0);
            DeliveredWrite {
                user: k.0,
                device: k.1,
                conv_id: k.2,
                seq,
            }
        })
        .collect();
    if !delivered_writes.is_empty() {
        ops.write_delivered(&delivered_writes)?;
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
