//! The group-commit algorithm, shared by both backends.
//!
//! Inside one transaction, [`write_batch`]:
//! 1. locks the rows of every conversation the batch touches (messages or
//!    cursors) in name order, creating those that receive their first
//!    message, and reads their `last_seq` / `last_ts`. Whoever writes
//!    a conversation's messages, members or cursors holds that lock, so
//!    concurrent writers (other processes on the same database) take turns
//!    per conversation and, locking in one order, never deadlock;
//! 2. looks up which `client_id`s of the batch are already stored, and
//!    checks the guard ([`im_core::store::SendGuard`]) of every other
//!    message against the rows as they stand (tokens, blocks, contacts,
//!    room memberships);
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
use im_core::store::{Appended, CursorOutcome, CursorUpdate, NewMessage, Refusal};

use crate::error::{seq_i64, seq_u64, DbError};
use crate::rights::RightsCache;

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

/// (user, device): a sending device.
pub(crate) type DeviceKey = (String, String);
/// Two user names: `(by, target)` of a block, or a relation's pair in
/// name order.
pub(crate) type PairKey = (String, String);

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
    /// The devices among `keys` that hold a token (not revoked), of an
    /// account that is not suspended.
    fn signed_in(&mut self, keys: &[DeviceKey]) -> Result<Vec<DeviceKey>, DbError>;
    /// The `(by, target)` pairs among `pairs` that are blocks.
    fn blocks_among(&mut self, pairs: &[PairKey]) -> Result<Vec<PairKey>, DbError>;
    /// The pairs (in name order) among `pairs` that are mutual contacts.
    fn mutual_among(&mut self, pairs: &[PairKey]) -> Result<Vec<PairKey>, DbError>;
    /// The keys among `keys` whose user is a member of the conversation.
    fn members_among(&mut self, keys: &[ReadKey]) -> Result<Vec<ReadKey>, DbError>;
    /// The store's rights version ([`crate::rights`]).
    fn rights_version(&mut self) -> Result<i64, DbError>;
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
    rights: &mut RightsCache,
    messages: &[NewMessage],
    cursors: &[CursorUpdate],
) -> Result<BatchResult, DbError> {
    let msg_names: Vec<String> = messages.iter().map(|m| m.conv.to_string()).collect();
    let cursor_names: Vec<String> = cursors.iter().map(|u| u.conv.to_string()).collect();
    let mut batch = Batch::new(messages, &msg_names, cursors, &cursor_names);
    batch.lock_convs(ops)?;
    batch.find_client_ids(ops)?;
    batch.check_guards(ops, rights)?;
    let (read_keys, delivered_keys) = batch.cursor_keys();
    batch.read_cursors(ops, read_keys, delivered_keys)?;
    let appended = batch.append_messages()?;
    let outcomes = batch.move_cursors()?;
    batch.write(ops)?;
    Ok((appended, outcomes))
}

/// One batch's working state: its input, the snapshot steps 1–3 read, and
/// what step 4 changes in it for step 5 to write.
struct Batch<'a> {
    messages: &'a [NewMessage],
    /// Each message's conversation name.
    msg_names: &'a [String],
    cursors: &'a [CursorUpdate],
    /// Each cursor update's conversation name.
    cursor_names: &'a [String],
    /// The locked conversations, by name.
    convs: HashMap<String, Conv>,
    /// `(seq, ts)` of the batch's client ids stored before it.
    stored: HashMap<ClientKey, (i64, i64)>,
    /// Each message's refusal by its guard (empty when none is guarded).
    refusals: Vec<Option<Refusal>>,
    /// `(seq, ts)` of the client ids this batch appends.
    in_batch: HashMap<ClientKey, (i64, i64)>,
    /// The read cursors the batch may move (missing rows read as 0).
    read: HashMap<ReadKey, ReadRow>,
    /// The delivered cursors the batch may move; `None`: no row yet (which
    /// matters once the user has joined a room).
    delivered: HashMap<DeliveredKey, Option<i64>>,
    /// `delivered` as read.
    delivered_before: HashMap<DeliveredKey, Option<i64>>,
    /// The messages to insert.
    rows: Vec<MessageRow>,
    /// The members a direct conversation's first message makes.
    members: BTreeSet<ReadKey>,
    /// The read cursors moved.
    read_dirty: BTreeSet<ReadKey>,
    /// The delivered cursors to create if missing.
    ensure: BTreeSet<DeliveredKey>,
}

impl<'a> Batch<'a> {
    fn new(
        messages: &'a [NewMessage],
        msg_names: &'a [String],
        cursors: &'a [CursorUpdate],
        cursor_names: &'a [String],
    ) -> Self {
        Batch {
            messages,
            msg_names,
            cursors,
            cursor_names,
            convs: HashMap::new(),
            stored: HashMap::new(),
            refusals: Vec::new(),
            in_batch: HashMap::new(),
            read: HashMap::new(),
            delivered: HashMap::new(),
            delivered_before: HashMap::new(),
            rows: Vec::new(),
            members: BTreeSet::new(),
            read_dirty: BTreeSet::new(),
            ensure: BTreeSet::new(),
        }
    }

    /// 1. Creates the conversations receiving messages where needed, then
    ///    locks every conversation the batch touches, in name order.
    fn lock_convs<O: BatchOps>(&mut self, ops: &mut O) -> Result<(), DbError> {
        let mut targets: BTreeMap<&str, &ConvId> = BTreeMap::new();
        for (m, name) in self.messages.iter().zip(self.msg_names) {
            targets.entry(name.as_str()).or_insert(&m.conv);
        }
        let create: Vec<NewConv<'_>> = targets
            .iter()
            .map(|(name, id)| new_conv(name, id))
            .collect();
        let names: BTreeSet<&str> = self
            .msg_names
            .iter()
            .chain(self.cursor_names)
            .map(String::as_str)
            .collect();
        let names: Vec<&str> = names.into_iter().collect();
        for row in ops.lock_convs(&create, &names)? {
            let direct = match targets.get(row.name.as_str()) {
                Some(ConvId::Direct(a, b)) => Some((a.as_str().to_owned(), b.as_str().to_owned())),
                _ => None,
            };
            insert_conv(&mut self.convs, row, direct);
        }
        if let Some(missing) = targets.keys().find(|n| !self.convs.contains_key(**n)) {
            return Err(DbError::Corrupt(format!(
                "conversation {missing} was not created"
            )));
        }
        Ok(())
    }

    /// 2. Reads which of the batch's client ids are already stored.
    fn find_client_ids<O: BatchOps>(&mut self, ops: &mut O) -> Result<(), DbError> {
        let mut client_keys: BTreeSet<ClientKey> = BTreeSet::new();
        for (m, name) in self.messages.iter().zip(self.msg_names) {
            if let (Some(cid), Some(c)) = (&m.client_id, self.convs.get(name)) {
                client_keys.insert((c.row.id, m.from.as_str().to_owned(), cid.clone()));
            }
        }
        if !client_keys.is_empty() {
            let keys: Vec<ClientKey> = client_keys.into_iter().collect();
            self.stored = ops.find_client_ids(&keys)?.into_iter().collect();
        }
        Ok(())
    }

    /// Whether message `m` (of conversation `c`) repeats a stored one.
    fn is_stored(&self, m: &NewMessage, c: &Conv) -> bool {
        m.client_id.as_ref().is_some_and(|cid| {
            let key = (c.row.id, m.from.as_str().to_owned(), cid.clone());
            self.stored.contains_key(&key)
        })
    }

    /// 2b. Checks the guards of the messages not already stored: reads the
    ///     rows each kind of check needs, once for the whole batch.
    fn check_guards<O: BatchOps>(
        &mut self,
        ops: &mut O,
        cache: &mut RightsCache,
    ) -> Result<(), DbError> {
        let mut devices: BTreeSet<DeviceKey> = BTreeSet::new();
        let mut blocks: BTreeSet<PairKey> = BTreeSet::new();
        let mut pairs: BTreeSet<PairKey> = BTreeSet::new();
        let mut members: BTreeSet<ReadKey> = BTreeSet::new();
        let mut guarded = false;
        for (m, name) in self.messages.iter().zip(self.msg_names) {
            let (Some(g), Some(c)) = (&m.guard, self.convs.get(name)) else {
                continue;
            };
            if self.is_stored(m, c) {
                continue;
            }
            guarded = true;
            let from = m.from.as_str().to_owned();
            devices.insert((from.clone(), m.device.clone()));
            match &c.direct {
                Some((a, b)) => {
                    blocks.insert((a.clone(), b.clone()));
                    blocks.insert((b.clone(), a.clone()));
                    if g.require_contact {
                        pairs.insert((a.clone(), b.clone()));
                    }
                }
                None => {
                    members.insert((c.row.id, from));
                }
            }
        }
        if !guarded {
            return Ok(());
        }
        // What an earlier batch found allowed still is, at the same version.
        cache.at(ops.rights_version()?);
        devices.retain(|k| !cache.devices.contains(k));
        blocks.retain(|(a, b)| !cache.unblocked.contains(&sorted(a, b)));
        pairs.retain(|k| !cache.mutual.contains(k));
        members.retain(|k| !cache.members.contains(k));
        let found_devices = found(&devices, |k| ops.signed_in(k))?;
        let found_blocks = found(&blocks, |k| ops.blocks_among(k))?;
        let found_pairs = found(&pairs, |k| ops.mutual_among(k))?;
        let found_members = found(&members, |k| ops.members_among(k))?;
        cache.devices.extend(found_devices);
        cache.mutual.extend(found_pairs);
        cache.members.extend(found_members);
        for (a, b) in &blocks {
            if !found_blocks.contains(&(a.clone(), b.clone()))
                && !found_blocks.contains(&(b.clone(), a.clone()))
            {
                cache.unblocked.insert(sorted(a, b));
            }
        }
        let (devices, pairs, members) = (&cache.devices, &cache.mutual, &cache.members);
        let blocked = |a: &String, b: &String| !cache.unblocked.contains(&sorted(a, b));
        let mut refusals = Vec::with_capacity(self.messages.len());
        for (m, name) in self.messages.iter().zip(self.msg_names) {
            let (Some(g), Some(c)) = (&m.guard, self.convs.get(name)) else {
                refusals.push(None);
                continue;
            };
            let from = m.from.as_str().to_owned();
            let device = (from.clone(), m.device.clone());
            let allowed = match &c.direct {
                Some((a, b)) => {
                    let mutual = pairs.contains(&(a.clone(), b.clone()));
                    !blocked(a, b) && (mutual || !g.require_contact)
                }
                None => members.contains(&(c.row.id, from)),
            };
            refusals.push(if self.is_stored(m, c) {
                None
            } else if !devices.contains(&device) {
                Some(Refusal::Credentials)
            } else {
                (!allowed).then_some(Refusal::Conversation)
            });
        }
        self.refusals = refusals;
        Ok(())
    }

    /// 3a. The read and delivered cursors this batch may move (see the
    ///     module docs).
    fn cursor_keys(&self) -> (BTreeSet<ReadKey>, BTreeSet<DeliveredKey>) {
        let mut read_keys: BTreeSet<ReadKey> = BTreeSet::new();
        let mut delivered_keys: BTreeSet<DeliveredKey> = BTreeSet::new();
        let mut seen_first: HashSet<i64> = HashSet::new();
        for (i, (m, name)) in self.messages.iter().zip(self.msg_names).enumerate() {
            let Some(c) = self.convs.get(name) else {
                continue;
            };
            if seen_first.contains(&c.row.id) || self.refused(i).is_some() {
                continue;
            }
            if self.is_stored(m, c) {
                continue;
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
        for (u, name) in self.cursors.iter().zip(self.cursor_names) {
            if let Some(c) = self.convs.get(name) {
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
        (read_keys, delivered_keys)
    }

    /// 3b. Reads the cursors of [`Self::cursor_keys`].
    fn read_cursors<O: BatchOps>(
        &mut self,
        ops: &mut O,
        read_keys: BTreeSet<ReadKey>,
        delivered_keys: BTreeSet<DeliveredKey>,
    ) -> Result<(), DbError> {
        if !read_keys.is_empty() {
            let keys: Vec<ReadKey> = read_keys.into_iter().collect();
            let found: HashMap<ReadKey, ReadRow> = ops.read_cursors(&keys)?.into_iter().collect();
            for k in keys {
                let v = found.get(&k).copied().unwrap_or_default();
                self.read.insert(k, v);
            }
        }
        if !delivered_keys.is_empty() {
            let keys: Vec<DeliveredKey> = delivered_keys.into_iter().collect();
            let found: HashMap<DeliveredKey, i64> =
                ops.delivered_cursors(&keys)?.into_iter().collect();
            for k in keys {
                let v = found.get(&k).copied();
                self.delivered.insert(k, v);
            }
        }
        self.delivered_before = self.delivered.clone();
        Ok(())
    }

    /// 4a. The in-memory store's algorithm over the snapshot: the messages.
    fn append_messages(&mut self) -> Result<Vec<Appended>, DbError> {
        let (messages, names) = (self.messages, self.msg_names);
        let mut appended = Vec::with_capacity(messages.len());
        for (i, (m, name)) in messages.iter().zip(names).enumerate() {
            appended.push(match self.refused(i) {
                Some(why) => Appended::refused(why),
                None => self.append(m, name)?,
            });
        }
        Ok(appended)
    }

    /// Why message `i`'s guard refused it, if it did.
    fn refused(&self, i: usize) -> Option<Refusal> {
        self.refusals.get(i).copied().flatten()
    }

    /// Appends one message, unless its client id is already stored.
    fn append(&mut self, m: &NewMessage, name: &str) -> Result<Appended, DbError> {
        let c = self
            .convs
            .get_mut(name)
            .ok_or_else(|| DbError::Corrupt(format!("conversation {name} vanished")))?;
        let from = m.from.as_str();
        if let Some(cid) = &m.client_id {
            let key = (c.row.id, from.to_owned(), cid.clone());
            if let Some(&(seq, ts)) = self.in_batch.get(&key).or_else(|| self.stored.get(&key)) {
                return Ok(Appended {
                    seq: seq_u64(seq)?,
                    ts,
                    duplicate: true,
                    refused: None,
                });
            }
        }
        if let Some((a, b)) = &c.direct {
            if c.seq_before == 0 {
                self.members.insert((c.row.id, a.clone()));
                self.members.insert((c.row.id, b.clone()));
            }
        }
        let seq = c.row.last_seq + 1;
        let ts = m.now.max(c.row.last_ts);
        c.row.last_seq = seq;
        c.row.last_ts = ts;
        c.dirty = true;
        let (conv_id, room) = (c.row.id, c.direct.is_none());
        if let Some(cid) = &m.client_id {
            self.in_batch
                .insert((conv_id, from.to_owned(), cid.clone()), (seq, ts));
        }
        self.rows.push(MessageRow {
            conv_id,
            seq,
            sender: from.to_owned(),
            body: m.body.clone(),
            ts,
            client_id: m.client_id.clone(),
            attachment: m.attachment.clone(),
        });
        self.follow_sender(m, conv_id, room, seq);
        Ok(Appended {
            seq: seq_u64(seq)?,
            ts,
            duplicate: false,
            refused: None,
        })
    }

    /// The sender has seen what they sent: their cursors follow message
    /// `seq` of conversation `conv_id` when just below it.
    fn follow_sender(&mut self, m: &NewMessage, conv_id: i64, room: bool, seq: i64) {
        let from = m.from.as_str();
        let rk = (conv_id, from.to_owned());
        let joined = self.read.get(&rk).map_or(0, |r| r.joined);
        if let Some(r) = self.read.get_mut(&rk) {
            if r.read + 1 == seq {
                r.read = seq;
                self.read_dirty.insert(rk);
            }
        }
        let dk = (from.to_owned(), m.device.clone(), conv_id);
        match self.delivered.get_mut(&dk) {
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
            None if room => {
                self.ensure.insert(dk);
            }
            None => {}
        }
    }

    /// 4b. The in-memory store's algorithm over the snapshot: the cursor
    ///     updates.
    fn move_cursors(&mut self) -> Result<Vec<CursorOutcome>, DbError> {
        let mut outcomes = Vec::with_capacity(self.cursors.len());
        for (u, name) in self.cursors.iter().zip(self.cursor_names) {
            let mut out = CursorOutcome::default();
            if let Some(c) = self.convs.get(name) {
                let target = seq_i64(u.delivered).min(c.row.last_seq);
                let dk = (u.user.as_str().to_owned(), u.device.clone(), c.row.id);
                if let Some(d) = self.delivered.get_mut(&dk) {
                    let v = d.get_or_insert(0);
                    *v = (*v).max(target);
                }
                if u.read {
                    let rk = (c.row.id, u.user.as_str().to_owned());
                    if let Some(r) = self.read.get_mut(&rk) {
                        if target > r.read {
                            r.read = target;
                            self.read_dirty.insert(rk);
                            out.read_advanced_to = Some(seq_u64(target)?);
                        }
                    }
                }
            }
            outcomes.push(out);
        }
        Ok(outcomes)
    }

    /// 5. Writes the new messages, counters, memberships and cursors.
    fn write<O: BatchOps>(self, ops: &mut O) -> Result<(), DbError> {
        if !self.rows.is_empty() {
            ops.insert_messages(&self.rows)?;
        }
        self.write_convs(ops)?;
        self.write_read(ops)?;
        self.write_delivered(ops)
    }

    /// The conversations' counters.
    fn write_convs<O: BatchOps>(&self, ops: &mut O) -> Result<(), DbError> {
        let mut conv_writes: Vec<ConvWrite> = self
            .convs
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
        Ok(())
    }

    /// Memberships and read cursors.
    fn write_read<O: BatchOps>(&self, ops: &mut O) -> Result<(), DbError> {
        let read_writes: Vec<ReadWrite> = self
            .members
            .union(&self.read_dirty)
            .map(|k| ReadWrite {
                conv_id: k.0,
                user: k.1.clone(),
                member: self.members.contains(k),
                read_seq: self.read.get(k).map_or(0, |r| r.read),
            })
            .collect();
        if !read_writes.is_empty() {
            ops.write_read(&read_writes)?;
        }
        Ok(())
    }

    /// Delivered cursors: those moved, then those to create if missing.
    fn write_delivered<O: BatchOps>(self, ops: &mut O) -> Result<(), DbError> {
        let before = &self.delivered_before;
        let mut delivered_writes: Vec<DeliveredWrite> = self
            .delivered
            .into_iter()
            .filter_map(|(k, v)| {
                let seq = v?;
                (before.get(&k) != Some(&Some(seq))).then_some(DeliveredWrite {
                    user: k.0,
                    device: k.1,
                    conv_id: k.2,
                    seq,
                })
            })
            .collect();
        if !delivered_writes.is_empty() {
            delivered_writes.sort_by(|a, b| {
                (&a.user, &a.device, a.conv_id).cmp(&(&b.user, &b.device, b.conv_id))
            });
            ops.write_delivered(&delivered_writes)?;
        }
        if !self.ensure.is_empty() {
            let keys: Vec<DeliveredKey> = self.ensure.into_iter().collect();
            ops.ensure_delivered(&keys)?;
        }
        Ok(())
    }
}

/// A pair of names in name order.
fn sorted(a: &str, b: &str) -> PairKey {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// The keys of `asked` that `lookup` finds (nothing is asked when empty).
fn found<K: Clone + Ord + std::hash::Hash>(
    asked: &BTreeSet<K>,
    lookup: impl FnOnce(&[K]) -> Result<Vec<K>, DbError>,
) -> Result<HashSet<K>, DbError> {
    if asked.is_empty() {
        return Ok(HashSet::new());
    }
    let keys: Vec<K> = asked.iter().cloned().collect();
    Ok(lookup(&keys)?.into_iter().collect())
}

/// The row to create for conversation `name` if missing.
fn new_conv<'n>(name: &'n str, id: &'n ConvId) -> NewConv<'n> {
    match id {
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
    }
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
