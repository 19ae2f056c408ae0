//! An in-memory [`Store`](super::Store): for tests, development and
//! `store.url = "memory:"`. Everything is lost when the process exits.
//!
//! The state is one struct behind one mutex (this file); each domain trait
//! is implemented in a file of its own.

mod accounts;
mod changes;
mod contacts;
mod files;
mod messages;
mod rooms;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::*;
use crate::error::{StoreError, StoreResult};
use crate::ids::{ConvId, Millis, RoomName, UserId};

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
    /// The change log, with when each was made.
    changes: Vec<(ChangeRecord, Millis)>,
}

/// The in-memory store. One mutex; every call is short.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Held for writing by [`MemoryStore::hold_commits`]; `write_batch`
    /// waits for it.
    #[cfg(feature = "testing")]
    commit_gate: std::sync::RwLock<()>,
}

/// While alive, [`MessageStore::write_batch`] on its [`MemoryStore`] waits:
/// a commit that takes as long as the test wants.
#[cfg(feature = "testing")]
pub struct CommitGate<'a>(#[allow(dead_code)] std::sync::RwLockWriteGuard<'a, ()>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Holds every commit of messages and cursors until the returned gate
    /// is dropped (feature `testing`): for tests of what happens while a
    /// write is not yet durable.
    #[cfg(feature = "testing")]
    pub fn hold_commits(&self) -> CommitGate<'_> {
        CommitGate(
            self.commit_gate
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::unavailable("memory store poisoned"))
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
