//! The shared services every request handler and actor works with: the
//! configuration, store access on the blocking pool, the group-commit
//! writer, the throttles, the blob store. (The directories of live actors
//! are beside the actors, in `actors/mod.rs`.)
//!
//! One [`Services`] exists per hub, behind an `Arc`. It holds no per-user
//! or per-conversation state: that lives in the actors the directories
//! point at.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use sha2::Sha256;
use std::time::Duration;

use crate::auth::RateLimiter;
use crate::blob::BlobStore;
use crate::config::Config;
use crate::error::{ProtoError, StoreError};
use crate::ids::{RoomName, UserId};
use crate::pool::BlockingPool;
use crate::store::{DeviceRecord, Store, UserRecord};
use crate::writer::Writer;

/// Throttles for authentication (docs/PROTOCOL.md, "Throttling").
pub(crate) struct Throttles {
    /// Password failures per username.
    pub login_per_user: RateLimiter,
    /// Password and token failures per peer address.
    pub login_per_peer: RateLimiter,
    /// Registrations per peer address.
    pub register_per_peer: RateLimiter,
}

impl Throttles {
    fn new(config: &Config) -> Throttles {
        let w = Duration::from_secs(config.auth.rate_window_secs.max(1));
        Throttles {
            login_per_user: RateLimiter::new(config.auth.login_failures_per_user, w),
            login_per_peer: RateLimiter::new(config.auth.login_failures_per_peer, w),
            register_per_peer: RateLimiter::new(config.auth.register_per_peer, w),
        }
    }
}

/// The services of one hub.
pub(crate) struct Services {
    /// The configuration the hub runs with.
    pub config: Config,
    /// Reached only through [`Services::db`], so every store call runs on
    /// the blocking pool with one error mapping.
    store: Arc<dyn Store>,
    /// Store calls and file I/O.
    pool: BlockingPool,
    /// bcrypt, kept apart so a login storm cannot take the store's threads.
    pub bcrypt: BlockingPool,
    /// Group commit of messages and cursors.
    pub writer: Writer,
    /// Authentication throttles.
    pub throttles: Throttles,
    /// File bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Uploads in progress: one owner each, and their running hashes.
    pub uploads: Uploads,
    /// Serialises contact changes per pair of users.
    pub pair_locks: PairLocks,
    /// Per user: a cap on what one user holds (pending requests, rooms
    /// owned, invitations waiting) is counted and taken under it, so
    /// parallel requests in this process cannot both take the last place.
    /// Taken before any pair's lock.
    pub user_locks: KeyLocks<UserId>,
    /// Per room: joins, leaves and kicks store and tell the room's actor
    /// under it, so the actor hears them in the order the store made them.
    pub room_locks: KeyLocks<RoomName>,
    /// The key signing download links, read once from the store.
    pub link_secret: OnceLock<Arc<Vec<u8>>>,
    /// This process's id in the change log (random, 63 bits).
    pub origin: u64,
    /// Users online, or going offline with their `last_seen` not yet
    /// stored: shutdown waits for it to reach zero.
    pub online_users: std::sync::atomic::AtomicUsize,
    /// Who is online (room presence), kept by the user actors: in by the
    /// first session's `presence`, out before the last one's `offline`.
    online: std::sync::RwLock<std::collections::HashSet<crate::ids::UserId>>,
    /// Token logins not yet written as `last_login`: stored together about
    /// once a second ([`Services::flush_touches`]), not one commit each.
    touches: Mutex<HashMap<(crate::ids::UserId, String), crate::ids::Millis>>,
    /// Every session's idle deadline, on one timer.
    pub idle: Arc<crate::session::idle::IdleWheel>,
}

impl Services {
    /// Starts the writer thread and the pools.
    pub(crate) fn new(config: Config, store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> Self {
        Services {
            pool: BlockingPool::new(config.pool.store_threads),
            bcrypt: match config.pool.bcrypt_max_wait_ms {
                0 => BlockingPool::new(config.pool.bcrypt_threads),
                ms => BlockingPool::with_max_wait(
                    config.pool.bcrypt_threads,
                    Duration::from_millis(ms),
                ),
            },
            writer: Writer::start(store.clone(), config.pool.max_batch),
            store,
            throttles: Throttles::new(&config),
            blobs,
            uploads: Uploads::default(),
            pair_locks: PairLocks::default(),
            user_locks: KeyLocks::default(),
            room_locks: KeyLocks::default(),
            link_secret: OnceLock::new(),
            origin: rand::random::<u64>() >> 1,
            online_users: Default::default(),
            online: Default::default(),
            touches: Default::default(),
            idle: Arc::new(crate::session::idle::IdleWheel::new(
                config.limits.idle_timeout_secs,
            )),
            config,
        }
    }

    /// Notes a token login of `device`, to store with the next flush.
    pub(crate) fn touch_later(
        &self,
        user: &crate::ids::UserId,
        device: &str,
        at: crate::ids::Millis,
    ) {
        if let Ok(mut t) = self.touches.lock() {
            let e = t.entry((user.clone(), device.to_owned())).or_insert(at);
            *e = (*e).max(at);
        }
    }

    /// `user`'s token logins not stored yet: device and when.
    pub(crate) fn pending_touches(
        &self,
        user: &crate::ids::UserId,
    ) -> HashMap<String, crate::ids::Millis> {
        self.touches.lock().map_or_else(
            |_| HashMap::new(),
            |t| {
                t.iter()
                    .filter(|((u, _), _)| u == user)
                    .map(|((_, d), at)| (d.clone(), *at))
                    .collect()
            },
        )
    }

    /// Stores the pending token logins in one transaction; kept for the
    /// next try if the store fails.
    pub(crate) async fn flush_touches(&self) -> Result<usize, ProtoError> {
        let taken: Vec<_> = match self.touches.lock() {
            Ok(mut t) if !t.is_empty() => t.drain().map(|((u, d), at)| (u, d, at)).collect(),
            _ => return Ok(0),
        };
        let n = taken.len();
        let batch = taken.clone();
        if let Err(e) = self.db(move |s| s.touch_devices(&batch)).await {
            for (u, d, at) in taken {
                self.touch_later(&u, &d, at);
            }
            return Err(e);
        }
        Ok(n)
    }

    /// Whether `user` has a live session (as room presence shows it).
    pub(crate) fn is_online(&self, user: &crate::ids::UserId) -> bool {
        self.online.read().is_ok_and(|o| o.contains(user))
    }

    /// Marks `user` online or offline (the user's actor does, before
    /// telling anyone).
    pub(crate) fn set_online(&self, user: &crate::ids::UserId, online: bool) {
        if let Ok(mut o) = self.online.write() {
            if online {
                o.insert(user.clone());
            } else {
                o.remove(user);
            }
        }
    }

    /// Runs `f` against the store on the blocking pool; store and pool
    /// failures become protocol errors (`unavailable`, `internal`).
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ProtoError> {
        let s = self.store.clone();
        Ok(self.pool.run(move || f(&*s)).await??)
    }

    /// The account and device a token (by its hash) signs in at `now`:
    /// not revoked, not older than `auth.token_ttl_days`, and the account
    /// in good standing; `invalid_credentials` or `account_suspended`
    /// otherwise.
    pub(crate) async fn token_holder(
        &self,
        user: UserId,
        token_hash: String,
        now: crate::ids::Millis,
    ) -> Result<(UserRecord, DeviceRecord), ProtoError> {
        let ttl_ms = i64::from(self.config.auth.token_ttl_days) * 86_400_000;
        let found = self
            .db(move |s| {
                let Some(dev) = s.device_by_token(&user, &token_hash)? else {
                    return Ok(None);
                };
                if now - dev.token_issued_at > ttl_ms {
                    return Ok(None);
                }
                Ok(s.user(&user)?.map(|r| (r, dev)))
            })
            .await?;
        match found {
            None => Err(ProtoError::bad_credentials()),
            Some((record, _)) if record.suspended => Err(ProtoError::suspended()),
            Some(found) => Ok(found),
        }
    }

    /// Writes `change` to the change log (call it inside the `db` closure
    /// that made the change), for the other processes sharing the store.
    pub(crate) fn publish(
        origin: u64,
        s: &dyn Store,
        change: &crate::store::Change,
    ) -> Result<(), StoreError> {
        s.publish_change(origin, change, crate::ids::now_millis())
    }

    /// Runs blocking file work (blob store and store together) on the pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store, &dyn BlobStore) -> T + Send + 'static,
    ) -> Result<T, ProtoError> {
        let (s, b) = (self.store.clone(), self.blobs.clone());
        Ok(self.pool.run(move || f(&*s, &*b)).await?)
    }
}

/// One async lock per key with work in progress; entries go away when
/// nobody holds or waits for them.
pub(crate) struct KeyLocks<K> {
    map: Mutex<HashMap<K, KeyLock>>,
}

impl<K> Default for KeyLocks<K> {
    fn default() -> Self {
        KeyLocks {
            map: Mutex::new(HashMap::new()),
        }
    }
}

type KeyLock = Arc<tokio::sync::Mutex<()>>;

/// Holds a key's lock; dropping it releases the lock and forgets the key
/// when nobody else wants it.
pub(crate) struct KeyGuard<'a, K: Eq + Hash> {
    locks: &'a KeyLocks<K>,
    key: K,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: Eq + Hash + Clone> KeyLocks<K> {
    /// Waits for `key`'s lock.
    pub(crate) async fn lock(&self, key: K) -> KeyGuard<'_, K> {
        let m = match self.map.lock() {
            Ok(mut map) => map.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        KeyGuard {
            locks: self,
            key,
            guard: Some(m.lock_owned().await),
        }
    }
}

/// Contact changes between two users are made under the pair's lock.
pub(crate) type PairLocks = KeyLocks<(UserId, UserId)>;

impl PairLocks {
    /// Waits for the lock of the pair `{a, b}` (in either order).
    pub(crate) async fn lock_pair(&self, a: &UserId, b: &UserId) -> KeyGuard<'_, (UserId, UserId)> {
        let key = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        self.lock(key).await
    }
}

impl<K: Eq + Hash> Drop for KeyGuard<'_, K> {
    fn drop(&mut self) {
        self.guard.take();
        if let Ok(mut map) = self.locks.map.lock() {
            if map
                .get(&self.key)
                .is_some_and(|m| Arc::strong_count(m) == 1)
            {
                map.remove(&self.key);
            }
        }
    }
}

/// The uploads in progress, each with one owner at a time.
///
/// A request about an upload (`file.chunk`, `file.status`, `file.end`,
/// and cleanup) first takes the upload's async lock with
/// [`Uploads::lock`] and holds it until it is done: checking the offset,
/// appending, updating the running hash and recording progress happen as
/// one step, whichever sessions (of one user) ask at once. An entry lives
/// while someone holds or waits for its lock, or while it keeps a running
/// hash (an unfinished upload; there are at most `limits.max_open_uploads`
/// per user).
#[derive(Default)]
pub(crate) struct Uploads {
    slots: Mutex<HashMap<String, UploadSlot>>,
    /// Keeps committing a blob apart from removing it.
    blobs: Arc<BlobLocks>,
}

type UploadSlot = Arc<tokio::sync::Mutex<Option<Running>>>;

/// The running hash of an unfinished upload.
pub(crate) struct Running {
    /// Bytes received and hashed so far: the offset the next chunk must
    /// have.
    pub received: u64,
    /// SHA-256 of those bytes.
    pub hash: Sha256,
}

/// Holds an upload's lock; derefs to its running hash (`None`: not known,
/// to be rebuilt from the partial upload). Dropping it releases the lock
/// and forgets the upload when nobody else wants it and no hash is kept.
pub(crate) struct UploadGuard<'a> {
    uploads: &'a Uploads,
    id: String,
    guard: tokio::sync::OwnedMutexGuard<Option<Running>>,
}

impl Uploads {
    /// Waits for the lock of upload `id`.
    pub(crate) async fn lock(&self, id: &str) -> UploadGuard<'_> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone();
        UploadGuard {
            uploads: self,
            id: id.to_owned(),
            guard: slot.lock_owned().await,
        }
    }

    /// The locks by blob, for work on the blocking pool.
    pub(crate) fn blob_locks(&self) -> Arc<BlobLocks> {
        self.blobs.clone()
    }
}

impl std::ops::Deref for UploadGuard<'_> {
    type Target = Option<Running>;

    fn deref(&self) -> &Option<Running> {
        &self.guard
    }
}

impl std::ops::DerefMut for UploadGuard<'_> {
    fn deref_mut(&mut self) -> &mut Option<Running> {
        &mut self.guard
    }
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if self.guard.is_some() {
            return;
        }
        let mut slots = self
            .uploads
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are made only under `slots`: two references (the map's
        // and this guard's) mean nobody else holds or waits for it.
        let mine = tokio::sync::OwnedMutexGuard::mutex(&self.guard);
        let idle = slots
            .get(&self.id)
            .is_some_and(|s| Arc::ptr_eq(s, mine) && Arc::strong_count(mine) == 2);
        if idle {
            slots.remove(&self.id);
        }
    }
}

/// Locks by blob hash, striped. Held, on the blocking pool, across
/// committing an upload as blob `S` and recording the file as finished,
/// and across finding `S` unused and removing it: so a blob is never
/// removed under a file just told that its bytes are stored (the commit
/// found `S` already there and dropped its own copy).
#[derive(Default)]
pub(crate) struct BlobLocks([Mutex<()>; 16]);

impl BlobLocks {
    /// Waits for the lock of blob `sha256`; blocking.
    pub(crate) fn lock(&self, sha256: &str) -> MutexGuard<'_, ()> {
        let stripe = sha256.bytes().fold(0usize, |n, b| n.wrapping_add(b.into())) % self.0.len();
        self.0[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
