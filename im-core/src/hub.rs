//! The hub: the entry point an integrator holds.
//!
//! It is a directory, not a state holder: it knows where the live user and
//! conversation actors are, starts sessions for transports, and holds the
//! shared services (store, pools, writer, throttles). All per-user and
//! per-conversation state lives in those actors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr};
use tokio::sync::Semaphore;

use crate::auth::RateLimiter;
use crate::config::Config;
use crate::conversation::ConversationActor;
use crate::directory::Directory;
use crate::error::ProtoError;
use crate::ids::{ConvId, SessionId, UserId};
use crate::pool::BlockingPool;
use crate::session::{SessionActor, Shutdown};
use crate::store::Store;
use crate::transport::{Connection, Inbound, Outbox, PeerInfo};
use crate::user::{KickSessions, UserActor};
use crate::writer::Writer;

/// One async lock per pair of users with a contact change in progress;
/// entries go away when nobody holds or waits for them.
#[derive(Default)]
pub(crate) struct PairLocks {
    map: Mutex<HashMap<(UserId, UserId), PairLock>>,
}

type PairLock = Arc<tokio::sync::Mutex<()>>;

/// Holds a pair's lock; dropping it releases the lock and forgets the pair
/// when nobody else wants it.
pub(crate) struct PairGuard<'a> {
    locks: &'a PairLocks,
    key: (UserId, UserId),
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl PairLocks {
    pub(crate) async fn lock(&self, a: &UserId, b: &UserId) -> PairGuard<'_> {
        let key = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        let m = match self.map.lock() {
            Ok(mut map) => map.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        PairGuard {
            locks: self,
            key,
            guard: Some(m.lock_owned().await),
        }
    }
}

impl Drop for PairGuard<'_> {
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

/// What the server calls itself in `hello`.
pub const SERVER_NAME: &str = concat!("im-server/", env!("CARGO_PKG_VERSION"));

/// Throttles for authentication (PROTOCOL.md, "Throttling").
pub(crate) struct Throttles {
    pub login_per_user: RateLimiter,
    pub login_per_peer: RateLimiter,
    pub register_per_peer: RateLimiter,
}

pub(crate) struct HubInner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Store calls.
    pub pool: BlockingPool,
    /// bcrypt, kept apart so a login storm cannot take the store's threads.
    pub bcrypt: BlockingPool,
    pub writer: Writer,
    pub users: Directory<UserId, UserActor>,
    pub convs: Directory<ConvId, ConversationActor>,
    pub throttles: Throttles,
    /// File bytes.
    pub blobs: Arc<dyn crate::blob::BlobStore>,
    /// Running hashes of uploads in progress.
    pub uploads: Arc<crate::files::Uploads>,
    /// Serialises contact changes per pair of users.
    pub pair_locks: PairLocks,
    /// The key signing download links, read once from the store.
    pub link_secret: std::sync::OnceLock<Arc<Vec<u8>>>,
    next_session: AtomicU64,
    sessions: Mutex<HashMap<SessionId, Addr<SessionActor>>>,
    shutting_down: AtomicBool,
}

/// The running core. Cheap to clone; every clone is the same server.
///
/// Create it inside a running actix system (actors are started on the
/// current arbiter).
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

impl Hub {
    /// Starts the core on `store` with `config`, keeping file bytes in
    /// memory (see [`Hub::with_blobs`] for a durable blob store).
    pub fn new(config: Config, store: Arc<dyn Store>) -> Hub {
        Self::with_blobs(config, store, Arc::new(crate::blob::MemoryBlobStore::new()))
    }

    /// Starts the core on `store` and `blobs` with `config`.
    pub fn with_blobs(
        config: Config,
        store: Arc<dyn Store>,
        blobs: Arc<dyn crate::blob::BlobStore>,
    ) -> Hub {
        let w = Duration::from_secs(config.auth.rate_window_secs.max(1));
        let throttles = Throttles {
            login_per_user: RateLimiter::new(config.auth.login_failures_per_user, w),
            login_per_peer: RateLimiter::new(config.auth.login_failures_per_peer, w),
            register_per_peer: RateLimiter::new(config.auth.register_per_peer, w),
        };
        let inner = HubInner {
            pool: BlockingPool::new(config.pool.store_threads),
            bcrypt: BlockingPool::new(config.pool.bcrypt_threads),
            writer: Writer::start(store.clone(), config.pool.max_batch),
            store,
            users: Directory::new(),
            convs: Directory::new(),
            throttles,
            blobs,
            uploads: Arc::default(),
            link_secret: std::sync::OnceLock::new(),
            pair_locks: PairLocks::default(),
            next_session: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            config,
        };
        let hub = Hub {
            inner: Arc::new(inner),
        };
        hub.watch_suspensions();
        hub.collect_files_periodically();
        hub
    }

    /// Runs `job` every `period` on the current arbiter for as long as the
    /// hub lives (the task holds only a weak reference to it).
    fn every<F, Fut>(&self, period: Duration, job: F)
    where
        F: Fn(Hub) -> Fut + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let weak = Arc::downgrade(&self.inner);
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                job(Hub { inner }).await;
            }
        });
    }

    /// Runs [`Hub::collect_files`] every quarter of `limits.upload_ttl_secs`
    /// (at most every 5 minutes).
    fn collect_files_periodically(&self) {
        let ttl = self.inner.config.limits.upload_ttl_secs.max(1);
        self.every(
            Duration::from_secs((ttl / 4).clamp(1, 300)),
            |hub| async move {
                match hub.collect_files().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(files = n, "removed stale files"),
                    Err(e) => tracing::debug!(error = %e, "file cleanup skipped"),
                }
            },
        );
    }

    /// Polls the store for suspended accounts and closes the sessions of
    /// any that are online, so an operator's suspension takes effect within
    /// `auth.suspension_poll_secs` even when made by another process.
    fn watch_suspensions(&self) {
        let secs = self.inner.config.auth.suspension_poll_secs;
        if secs == 0 {
            return;
        }
        self.every(Duration::from_secs(secs), |hub| async move {
            match hub.db(|s| s.suspended_users()).await {
                Ok(users) => users.iter().for_each(|u| hub.kick_suspended(u)),
                Err(e) => tracing::warn!(error = %e, "could not poll suspensions"),
            }
        });
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store the hub runs on.
    pub fn store(&self) -> Arc<dyn Store> {
        self.inner.store.clone()
    }

    /// Starts a session for a new connection. The session sends `hello` at
    /// once. See [`crate::transport`] for how to drive the two halves.
    pub fn connect(&self, peer: PeerInfo) -> Connection {
        let limits = &self.inner.config.limits;
        let (outbox, outbound) = Outbox::channel(limits.outbound_queue);
        let id = SessionId(self.inner.next_session.fetch_add(1, Ordering::Relaxed));
        let activity = Arc::new(AtomicI64::new(crate::ids::now_millis()));
        let permits = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
        let session = SessionActor::new(
            self.clone(),
            id,
            peer,
            outbox,
            activity.clone(),
            permits.clone(),
        )
        .start();
        if let Ok(mut s) = self.inner.sessions.lock() {
            s.insert(id, session.clone());
        }
        if self.inner.shutting_down.load(Ordering::Acquire) {
            session.do_send(Shutdown);
        }
        Connection {
            inbound: Inbound {
                session,
                permits,
                max_frame: limits.max_frame,
                max_in_flight: limits.max_in_flight.max(1),
                activity,
            },
            outbound,
        }
    }

    /// Runs `f` against the store on the blocking pool; store and pool
    /// failures become protocol errors (`unavailable`, `internal`).
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, crate::error::StoreError> + Send + 'static,
    ) -> Result<T, ProtoError> {
        let s = self.inner.store.clone();
        Ok(self.inner.pool.run(move || f(&*s)).await??)
    }

    /// The conversation's actor, started if needed.
    pub(crate) fn conv_actor(
        &self,
        conv: &ConvId,
    ) -> Option<crate::directory::Lease<ConversationActor>> {
        let hub = self.clone();
        let c = conv.clone();
        self.inner
            .convs
            .get_or_start(conv, move || ConversationActor::new(hub, c).start())
    }

    pub(crate) fn session_ended(&self, id: SessionId) {
        if let Ok(mut s) = self.inner.sessions.lock() {
            s.remove(&id);
        }
    }

    /// Number of connected sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Suspends an account: marks it in the store, revokes its tokens and
    /// closes its sessions with `account_suspended`.
    pub async fn suspend(&self, username: &str) -> Result<(), ProtoError> {
        let user = UserId::parse(username).ok_or_else(|| ProtoError::not_found("no such user"))?;
        let store = self.inner.store.clone();
        let u = user.clone();
        self.inner
            .pool
            .run(move || {
                store.set_suspended(&u, true)?;
                store.revoke_all_devices(&u, None)
            })
            .await??;
        self.kick_suspended(&user);
        Ok(())
    }

    /// Closes every live session of `user` with `account_suspended`; for
    /// integrators whose admin tooling suspends accounts in the store directly.
    pub fn kick_suspended(&self, user: &UserId) {
        if let Some(l) = self.inner.users.get(user) {
            l.addr.do_send(KickSessions::suspended());
        }
    }

    /// Closes every session cleanly (queued frames are written first) and
    /// refuses new ones. Returns once every session has ended or `grace`
    /// has passed.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<_> = self
            .inner
            .sessions
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        for s in sessions {
            s.do_send(Shutdown);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
