//! An in-memory [`Store`]: for tests, development and `store.url = "memory:"`.
//! Everything is lost when the process exits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::*;
use crate::error::StoreError;

#[derive(Default)]
struct Conv {
    messages: Vec<StoredMessage>,
    members: BTreeSet<UserId>,
    by_client_id: HashMap<(UserId, String), usize>,
    activity: Millis,
    /// Read cursor per user.
    read: HashMap<UserId, u64>,
    /// Where each room member's cursors start (the last seq when they joined).
    joined: HashMap<UserId, u64>,
}

struct Room {
    record: RoomRecord,
    /// In joining order: the first is the longest-standing.
    members: Vec<RoomMember>,
    bans: BTreeSet<UserId>,
}

#[derive(Default)]
struct Inner {
    users: BTreeMap<UserId, UserRecord>,
    devices: HashMap<UserId, BTreeMap<String, DeviceRecord>>,
    relations: HashMap<(UserId, UserId), Relation>,
    blocks: BTreeSet<(UserId, UserId)>,
    convs: HashMap<ConvId, Conv>,
    /// Delivered cursor per (user, device, conv).
    delivered: HashMap<(UserId, String, ConvId), u64>,
    rooms: BTreeMap<RoomName, Room>,
    /// (invitee, room) -> inviter.
    invites: BTreeMap<(UserId, RoomName), UserId>,
    files: BTreeMap<String, FileRecord>,
    file_convs: BTreeSet<(String, ConvId)>,
    secret: Option<Vec<u8>>,
}

/// The in-memory store. One mutex; every call is short.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))
    }
}

fn pair(a: &UserId, b: &UserId) -> (UserId, UserId) {
    if a < b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

impl Inner {
    fn apply_cursor(&mut self, u: &CursorUpdate) -> CursorOutcome {
        let last = self
            .convs
            .get(&u.conv)
            .map_or(0, |c| c.messages.len() as u64);
        let target = u.delivered.min(last);
        let d = self
            .delivered
            .entry((u.user.clone(), u.device.clone(), u.conv.clone()))
            .or_insert(0);
        *d = (*d).max(target);
        let mut out = CursorOutcome::default();
        if u.read {
            if let Some(c) = self.convs.get_mut(&u.conv) {
                let r = c.read.entry(u.user.clone()).or_insert(0);
                if target > *r {
                    *r = target;
                    out.read_advanced_to = Some(target);
                }
            }
        }
        out
    }
}

impl Store for MemoryStore {
    fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.users.contains_key(&user.name) {
            return Err(StoreError::Conflict);
        }
        g.users.insert(user.name.clone(), user.clone());
        Ok(())
    }

    fn user(&self, name: &UserId) -> StoreResult<Option<UserRecord>> {
        Ok(self.lock()?.users.get(name).cloned())
    }

    fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        Ok(self.lock()?.users.values().cloned().collect())
    }

    fn set_password_hash(&self, name: &UserId, hash: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        let u = g.users.get_mut(name).ok_or(StoreError::NotFound)?;
        u.password_hash = hash.to_owned();
        Ok(())
    }

    fn set_suspended(&self, name: &UserId, suspended: bool) -> StoreResult<()> {
        let mut g = self.lock()?;
        let u = g.users.get_mut(name).ok_or(StoreError::NotFound)?;
        u.suspended = suspended;
        Ok(())
    }

    fn set_last_seen(&self, name: &UserId, at: Millis) -> StoreResult<()> {
        let mut g = self.lock()?;
        if let Some(u) = g.users.get_mut(name) {
            u.last_seen = Some(at);
        }
        Ok(())
    }

    fn issue_token(
        &self,
        user: &UserId,
        device: &str,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.devices.entry(user.clone()).or_default().insert(
            device.to_owned(),
            DeviceRecord {
                device: device.to_owned(),
                token_hash: Some(token_hash.to_owned()),
                token_issued_at: now,
                last_login: now,
            },
        );
        Ok(())
    }

    fn device_by_token(
        &self,
        user: &UserId,
        token_hash: &str,
    ) -> StoreResult<Option<DeviceRecord>> {
        let g = self.lock()?;
        Ok(g.devices.get(user).and_then(|ds| {
            ds.values()
                .find(|d| d.token_hash.as_deref() == Some(token_hash))
                .cloned()
        }))
    }

    fn touch_device(&self, user: &UserId, device: &str, now: Millis) -> StoreResult<()> {
        let mut g = self.lock()?;
        if let Some(d) = g.devices.get_mut(user).and_then(|ds| ds.get_mut(device)) {
            d.last_login = now;
        }
        Ok(())
    }

    fn devices(&self, user: &UserId) -> StoreResult<Vec<DeviceRecord>> {
        let g = self.lock()?;
        Ok(g.devices
            .get(user)
            .map(|ds| ds.values().cloned().collect())
            .unwrap_or_default())
    }

    fn revoke_device(&self, user: &UserId, device: &str) -> StoreResult<bool> {
        let mut g = self.lock()?;
        match g.devices.get_mut(user).and_then(|ds| ds.get_mut(device)) {
            Some(d) => {
                d.token_hash = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn revoke_all_devices(&self, user: &UserId, keep: Option<&str>) -> StoreResult<()> {
        let mut g = self.lock()?;
        if let Some(ds) = g.devices.get_mut(user) {
            for d in ds.values_mut().filter(|d| Some(d.device.as_str()) != keep) {
                d.token_hash = None;
            }
        }
        Ok(())
    }

    fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Relation> {
        let g = self.lock()?;
        Ok(g.relations
            .get(&pair(a, b))
            .cloned()
            .unwrap_or(Relation::None))
    }

    fn set_relation(&self, a: &UserId, b: &UserId, rel: &Relation) -> StoreResult<()> {
        let mut g = self.lock()?;
        match rel {
            Relation::None => g.relations.remove(&pair(a, b)),
            r => g.relations.insert(pair(a, b), r.clone()),
        };
        Ok(())
    }

    fn contacts(&self, user: &UserId) -> StoreResult<Vec<(UserId, ContactState)>> {
        let g = self.lock()?;
        let mut out: Vec<(UserId, ContactState)> = g
            .relations
            .iter()
            .filter_map(|((a, b), rel)| {
                let peer = if a == user {
                    b
                } else if b == user {
                    a
                } else {
                    return None;
                };
                let state = match rel {
                    Relation::Mutual => ContactState::Mutual,
                    Relation::Requested { by } if by == user => ContactState::PendingOut,
                    Relation::Requested { .. } => ContactState::PendingIn,
                    Relation::None => return None,
                };
                Some((peer.clone(), state))
            })
            .collect();
        out.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(out)
    }

    fn set_block(&self, by: &UserId, target: &UserId, blocked: bool) -> StoreResult<()> {
        let mut g = self.lock()?;
        let key = (by.clone(), target.clone());
        if blocked {
            g.blocks.insert(key);
        } else {
            g.blocks.remove(&key);
        }
        Ok(())
    }

    fn blocks(&self, by: &UserId) -> StoreResult<Vec<UserId>> {
        let g = self.lock()?;
        Ok(g.blocks
            .iter()
            .filter(|(b, _)| b == by)
            .map(|(_, t)| t.clone())
            .collect())
    }

    fn blocked_by(&self, target: &UserId) -> StoreResult<Vec<UserId>> {
        let g = self.lock()?;
        let mut v: Vec<UserId> = g
            .blocks
            .iter()
            .filter(|(_, t)| t == target)
            .map(|(b, _)| b.clone())
            .collect();
        v.sort();
        Ok(v)
    }

    fn write_batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)> {
        let mut g = self.lock()?;
        let mut appended = Vec::with_capacity(messages.len());
        for m in messages {
            let conv = g.convs.entry(m.conv.clone()).or_default();
            if let Some(cid) = &m.client_id {
                if let Some(&i) = conv.by_client_id.get(&(m.from.clone(), cid.clone())) {
                    let orig = &conv.messages[i];
                    appended.push(Appended {
                        seq: orig.seq,
                        ts: orig.ts,
                        duplicate: true,
                    });
                    continue;
                }
            }
            if let ConvId::Direct(a, b) = &m.conv {
                conv.members.insert(a.clone());
                conv.members.insert(b.clone());
            }
            let seq = conv.messages.len() as u64 + 1;
            let ts = m.now.max(conv.messages.last().map_or(0, |l| l.ts));
            conv.activity = ts;
            if let Some(cid) = &m.client_id {
                conv.by_client_id
                    .insert((m.from.clone(), cid.clone()), conv.messages.len());
            }
            conv.messages.push(StoredMessage {
                conv: m.conv.clone(),
                seq,
                from: m.from.clone(),
                body: m.body.clone(),
                ts,
                client_id: m.client_id.clone(),
                attachment: m.attachment.clone(),
            });
            // The sender has seen what they sent: follow it when just below.
            let r = conv.read.entry(m.from.clone()).or_insert(0);
            if *r + 1 == seq {
                *r = seq;
            }
            let base = conv.joined.get(&m.from).copied().unwrap_or(0);
            let d = g
                .delivered
                .entry((m.from.clone(), m.device.clone(), m.conv.clone()))
                .or_insert(base);
            if *d + 1 == seq {
                *d = seq;
            }
            appended.push(Appended {
                seq,
                ts,
                duplicate: false,
            });
        }
        let outcomes = cursors.iter().map(|u| g.apply_cursor(u)).collect();
        Ok((appended, outcomes))
    }

    fn find_client_id(
        &self,
        conv: &ConvId,
        from: &UserId,
        client_id: &str,
    ) -> StoreResult<Option<Appended>> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).and_then(|c| {
            c.by_client_id
                .get(&(from.clone(), client_id.to_owned()))
                .map(|&i| Appended {
                    seq: c.messages[i].seq,
                    ts: c.messages[i].ts,
                    duplicate: true,
                })
        }))
    }

    fn messages_after(
        &self,
        conv: &ConvId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).map_or_else(Vec::new, |c| {
            let start = (after as usize).min(c.messages.len());
            c.messages[start..].iter().take(limit).cloned().collect()
        }))
    }

    fn messages_before(
        &self,
        conv: &ConvId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).map_or_else(Vec::new, |c| {
            let end = before.map_or(c.messages.len(), |b| {
                (b.saturating_sub(1) as usize).min(c.messages.len())
            });
            let start = end.saturating_sub(limit);
            c.messages[start..end].to_vec()
        }))
    }

    fn is_member(&self, conv: &ConvId, user: &UserId) -> StoreResult<bool> {
        let g = self.lock()?;
        Ok(g.convs.get(conv).is_some_and(|c| c.members.contains(user)))
    }

    fn conversations(&self, user: &UserId, device: &str) -> StoreResult<Vec<ConvSummary>> {
        let g = self.lock()?;
        let mut out: Vec<ConvSummary> = g
            .convs
            .iter()
            .filter(|(_, c)| c.members.contains(user))
            .map(|(id, c)| {
                let read_seq = c.read.get(user).copied().unwrap_or(0);
                let unread = c
                    .messages
                    .iter()
                    .skip(read_seq as usize)
                    .filter(|m| &m.from != user)
                    .count() as u64;
                ConvSummary {
                    conv: id.clone(),
                    last_seq: c.messages.len() as u64,
                    activity: c.activity,
                    read_seq,
                    delivered_seq: g
                        .delivered
                        .get(&(user.clone(), device.to_owned(), id.clone()))
                        .copied()
                        .unwrap_or(0)
                        .max(c.joined.get(user).copied().unwrap_or(0)),
                    unread,
                    peer_read_seq: id
                        .peer_of(user)
                        .map(|p| c.read.get(p).copied().unwrap_or(0)),
                    last: c.messages.last().cloned(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.activity
                .cmp(&a.activity)
                .then_with(|| a.conv.cmp(&b.conv))
        });
        Ok(out)
    }

    fn create_room(&self, room: &RoomRecord, owner: &UserId) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.rooms.contains_key(&room.name) {
            return Err(StoreError::Conflict);
        }
        g.rooms.insert(
            room.name.clone(),
            Room {
                record: room.clone(),
                members: vec![RoomMember {
                    user: owner.clone(),
                    role: RoomRole::Owner,
                    joined_at: room.created_at,
                }],
                bans: BTreeSet::new(),
            },
        );
        let conv = g.convs.entry(ConvId::Room(room.name.clone())).or_default();
        conv.members.insert(owner.clone());
        conv.activity = room.created_at;
        conv.joined.insert(owner.clone(), 0);
        Ok(())
    }

    fn room(&self, name: &RoomName) -> StoreResult<Option<RoomRecord>> {
        Ok(self.lock()?.rooms.get(name).map(|r| r.record.clone()))
    }

    fn list_rooms(&self, q: Option<&str>, limit: usize) -> StoreResult<Vec<RoomListing>> {
        let g = self.lock()?;
        let q = q.map(str::to_lowercase);
        let mut out: Vec<RoomListing> = g
            .rooms
            .values()
            .filter(|r| r.record.public)
            .filter(|r| {
                q.as_ref().is_none_or(|q| {
                    r.record.name.as_str().contains(q.as_str())
                        || r.record.topic.to_lowercase().contains(q.as_str())
                })
            })
            .map(|r| RoomListing {
                room: r.record.clone(),
                members: r.members.len() as u64,
            })
            .collect();
        out.sort_by(|a, b| {
            b.members
                .cmp(&a.members)
                .then_with(|| a.room.name.cmp(&b.room.name))
        });
        out.truncate(limit);
        Ok(out)
    }

    fn room_members(&self, name: &RoomName) -> StoreResult<Vec<RoomMember>> {
        Ok(self
            .lock()?
            .rooms
            .get(name)
            .map(|r| r.members.clone())
            .unwrap_or_default())
    }

    fn join_room(&self, name: &RoomName, user: &UserId, now: Millis) -> StoreResult<bool> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        if room.members.iter().any(|m| &m.user == user) {
            return Ok(false);
        }
        room.members.push(RoomMember {
            user: user.clone(),
            role: RoomRole::Member,
            joined_at: now,
        });
        g.invites.remove(&(user.clone(), name.clone()));
        let conv = g.convs.entry(ConvId::Room(name.clone())).or_default();
        let last = conv.messages.len() as u64;
        conv.members.insert(user.clone());
        conv.joined.insert(user.clone(), last);
        let r = conv.read.entry(user.clone()).or_insert(0);
        *r = (*r).max(last);
        Ok(true)
    }

    fn leave_room(&self, name: &RoomName, user: &UserId) -> StoreResult<Option<UserId>> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        let Some(i) = room.members.iter().position(|m| &m.user == user) else {
            return Ok(None);
        };
        let was_owner = room.members.remove(i).role == RoomRole::Owner;
        let mut new_owner = None;
        if was_owner {
            if let Some(first) = room.members.first_mut() {
                first.role = RoomRole::Owner;
                new_owner = Some(first.user.clone());
            }
        }
        if let Some(conv) = g.convs.get_mut(&ConvId::Room(name.clone())) {
            conv.members.remove(user);
            conv.joined.remove(user);
        }
        Ok(new_owner)
    }

    fn set_room_topic(&self, name: &RoomName, topic: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        room.record.topic = topic.to_owned();
        Ok(())
    }

    fn set_room_ban(&self, name: &RoomName, user: &UserId, banned: bool) -> StoreResult<()> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        if banned {
            room.bans.insert(user.clone());
        } else {
            room.bans.remove(user);
        }
        Ok(())
    }

    fn is_room_banned(&self, name: &RoomName, user: &UserId) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .rooms
            .get(name)
            .is_some_and(|r| r.bans.contains(user)))
    }

    fn add_room_invite(&self, name: &RoomName, user: &UserId, from: &UserId) -> StoreResult<()> {
        let mut g = self.lock()?;
        if !g.rooms.contains_key(name) {
            return Err(StoreError::NotFound);
        }
        g.invites.insert((user.clone(), name.clone()), from.clone());
        Ok(())
    }

    fn room_invites(&self, user: &UserId) -> StoreResult<Vec<(RoomName, UserId)>> {
        let g = self.lock()?;
        Ok(g.invites
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|((_, r), from)| (r.clone(), from.clone()))
            .collect())
    }

    fn create_file(&self, file: &FileRecord) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.files.contains_key(&file.id) {
            return Err(StoreError::Conflict);
        }
        g.files.insert(file.id.clone(), file.clone());
        Ok(())
    }

    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        Ok(self.lock()?.files.get(id).cloned())
    }

    fn set_file_received(&self, id: &str, received: u64) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.get_mut(id).ok_or(StoreError::NotFound)?.received = received;
        Ok(())
    }

    fn finish_file(&self, id: &str, sha256: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.get_mut(id).ok_or(StoreError::NotFound)?.sha256 = Some(sha256.to_owned());
        Ok(())
    }

    fn attach_file(&self, id: &str, conv: &ConvId) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.file_convs.insert((id.to_owned(), conv.clone()));
        Ok(())
    }

    fn file_convs(&self, id: &str) -> StoreResult<Vec<ConvId>> {
        let g = self.lock()?;
        Ok(g.file_convs
            .iter()
            .filter(|(f, _)| f == id)
            .map(|(_, c)| c.clone())
            .collect())
    }

    fn user_file_bytes(&self, user: &UserId) -> StoreResult<u64> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .filter(|f| &f.uploader == user)
            .map(|f| f.size)
            .sum())
    }

    fn stale_files(&self, before: Millis) -> StoreResult<Vec<FileRecord>> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .filter(|f| f.created_at < before)
            .filter(|f| f.sha256.is_none() || !g.file_convs.iter().any(|(id, _)| *id == f.id))
            .cloned()
            .collect())
    }

    fn delete_file(&self, id: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.remove(id);
        g.file_convs.retain(|(f, _)| f != id);
        Ok(())
    }

    fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .any(|f| f.sha256.as_deref() == Some(sha256)))
    }

    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<(UserId, DeviceRecord)>> {
        let g = self.lock()?;
        Ok(g.devices.iter().find_map(|(u, ds)| {
            ds.values()
                .find(|d| d.token_hash.as_deref() == Some(token_hash))
                .map(|d| (u.clone(), d.clone()))
        }))
    }

    fn server_secret(&self) -> StoreResult<Vec<u8>> {
        let mut g = self.lock()?;
        Ok(g.secret
            .get_or_insert_with(|| {
                use rand::RngCore;
                let mut b = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut b);
                b
            })
            .clone())
    }
}
