//! The hub: the entry point an integrator holds.
//!
//! A thin facade: it builds the shared services, starts a session per
//! connection a transport hands it, and offers the operator's controls
//! (suspend, shutdown, counts) and HTTP file downloads. It holds no per-user
//! or per-conversation state; that lives in the actors.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::actors::user::KickSessions;
use crate::actors::Core;
use crate::blob::{BlobStore, MemoryBlobStore};
use crate::cluster::Bus;
use crate::config::Config;
use crate::error::ProtoError;
use crate::files::{self, Download, HttpRefusal};
use crate::ids::UserId;
use crate::session::registry::Sessions;
use crate::session::{SessionActor, Setup};
use crate::store::{MemoryStore, Store};
use crate::transport::{Connection, Inbound, Outbox, PeerInfo};

/// The running core. Cheap to clone; every clone is the same server.
///
/// Create it inside a running actix system (actors are started on the
/// current arbiter), with [`Hub::builder`] or [`Hub::in_memory`].
#[derive(Clone)]
pub struct Hub {
    svc: Core,
    sessions: Arc<Sessions>,
}

/// Builds a [`Hub`]. The store and the blob store are both required, so
/// that no hub keeps file bytes in memory while its messages are durable.
pub struct HubBuilder {
    config: Config,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    bus: Option<Arc<dyn Bus>>,
}

impl HubBuilder {
    /// Runs with `config` instead of [`Config::default`].
    pub fn config(mut self, config: Config) -> HubBuilder {
        self.config = config;
        self
    }

    /// Makes this hub one node of a cluster: other hubs on the same `bus`
    /// (sharing this hub's store) see its users and it sees theirs. See
    /// [`crate::cluster`].
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> HubBuilder {
        self.bus = Some(bus);
        self
    }

    /// Starts the core: the writer thread, the pools and the periodic
    /// tasks (suspension poll, stale-upload collection), and joins the
    /// cluster when there is a bus.
    pub fn start(self) -> Hub {
        let hub = Hub {
            svc: Core::new(self.config, self.store, self.blobs, self.bus),
            sessions: Arc::default(),
        };
        crate::telemetry::describe();
        hub.watch_suspensions();
        hub.follow_changes();
        hub.collect_files_periodically();
        hub.flush_touches_periodically();
        hub.svc.idle.start();
        hub.svc.join_cluster();
        hub
    }
}

/// Live actors of a hub, for tests and monitoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Census {
    /// Connected sessions.
    pub sessions: usize,
    /// Live user actors (users with a session, or retiring).
    pub users: usize,
    /// Live conversation actors.
    pub conversations: usize,
}

impl Hub {
    /// A builder over `store` (messages, accounts, rooms, file metadata)
    /// and `blobs` (file bytes).
    pub fn builder(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> HubBuilder {
        HubBuilder {
            config: Config::default(),
            store,
            blobs,
            bus: None,
        }
    }

    /// A hub that keeps everything in memory ([`MemoryStore`] and
    /// [`MemoryBlobStore`]): for tests and demos.
    pub fn in_memory(config: Config) -> Hub {
        Hub::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryBlobStore::new()),
        )
        .config(config)
        .start()
    }

    /// Runs `job` every `period` on the current arbiter for as long as the
    /// hub lives (the task holds only a weak reference to it).
    fn every<F, Fut>(&self, period: Duration, job: F)
    where
        F: Fn(Hub) -> Fut + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (svc, sessions) = (self.svc.downgrade(), Arc::downgrade(&self.sessions));
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (Some(svc), Some(sessions)) = (svc.upgrade(), sessions.upgrade()) else {
                    return;
                };
                job(Hub { svc, sessions }).await;
            }
        });
    }

    /// Runs [`Hub::collect_files`] every quarter of `limits.upload_ttl_secs`
    /// (at most every 5 minutes).
    fn collect_files_periodically(&self) {
        let ttl = self.svc.config.limits.upload_ttl_secs.max(1);
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

    /// Stores token logins' `last_login` about once a second.
    fn flush_touches_periodically(&self) {
        self.every(Duration::from_secs(1), |hub| async move {
            if let Err(e) = hub.svc.flush_touches().await {
                tracing::debug!(error = %e, "last logins not stored yet");
            }
        });
    }

    /// Polls the store for suspended accounts and closes the sessions of
    /// any that are online, so an operator's suspension takes effect within
    /// `auth.suspension_poll_secs` even when made by another process. Only
    /// accounts not suspended at the last poll count as new revocations
    /// (each makes logins in flight check their tokens again); the others
    /// are only asked again to close, as a net.
    fn watch_suspensions(&self) {
        let secs = self.svc.config.auth.suspension_poll_secs;
        if secs == 0 {
            return;
        }
        let known: Rc<RefCell<HashSet<UserId>>> = Rc::default();
        self.every(Duration::from_secs(secs), move |hub| {
            let known = known.clone();
            async move {
                match hub.svc.db(|s| s.suspended_users()).await {
                    Ok(users) => {
                        let now: HashSet<UserId> = users.into_iter().collect();
                        for u in &now {
                            match known.borrow().contains(u) {
                                true => hub.svc.kick_again(u, KickSessions::suspended()),
                                false => hub.kick_suspended(u),
                            }
                        }
                        *known.borrow_mut() = now;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not poll suspensions"),
                }
            }
        });
    }

    /// Applies what other processes sharing the store changed (contacts,
    /// blocks, rooms, revoked tokens) every `auth.change_poll_ms`; in a
    /// cluster, when the bus says the log moved instead.
    fn follow_changes(&self) {
        let ms = self.svc.config.auth.change_poll_ms;
        let clustered = self.svc.actors.cluster.is_some();
        if ms == 0 && !clustered {
            return;
        }
        // Find the end of the log now, before any actor loads its state.
        let svc = self.svc.clone();
        actix_rt::spawn(async move {
            let _ = svc.follow_changes().await;
        });
        if ms == 0 {
            return;
        }
        // In a cluster the bus says when to read; a slow poll stays as the
        // net under a lost message.
        let period = match clustered {
            true => Duration::from_millis(ms.max(5000)),
            false => Duration::from_millis(ms),
        };
        self.every(period, |hub| async move {
            if let Err(e) = hub.svc.follow_changes().await {
                tracing::warn!(error = %e, "could not read the change log");
            }
        });
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.svc.config
    }

    /// Starts a session for a new connection. The session sends `hello` at
    /// once. See [`crate::transport`] for how to drive the two halves.
    pub fn connect(&self, peer: PeerInfo) -> Connection {
        let limits = &self.svc.config.limits;
        let (outbox, outbound) = Outbox::channel(limits.outbound_queue, limits.outbound_bytes);
        let id = self.sessions.next_id();
        let admitted = self.sessions.admit(
            &peer,
            limits.max_connections,
            limits.max_connections_per_peer,
        );
        let activity = Arc::new(AtomicI64::new(crate::ids::now_millis()));
        let permits = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
        let span = tracing::info_span!(
            "session",
            id = %id,
            transport = peer.transport,
            peer = %peer.addr.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            user = tracing::field::Empty,
        );
        let session = SessionActor::launch(Setup {
            span,
            svc: self.svc.clone(),
            registry: self.sessions.clone(),
            id,
            peer,
            outbox,
            activity: activity.clone(),
            permits: permits.clone(),
            admitted,
        });
        self.sessions.add(id, session.clone());
        Connection {
            inbound: Inbound {
                frames: session.clone().recipient(),
                events: session.recipient(),
                permits,
                max_frame: limits.max_frame,
                max_in_flight: limits.max_in_flight.max(1),
                activity,
            },
            outbound,
        }
    }

    /// The arbiter (thread) to run the next connection on, in turn over
    /// the pool (`pool.arbiters`). A transport spawns the connection's task
    /// there and calls [`Hub::connect`] from it, so the connection's I/O and
    /// its session actor share a thread.
    pub fn next_arbiter(&self) -> actix_rt::ArbiterHandle {
        self.svc.actors.arbiters.next().clone()
    }

    /// Number of connected sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.count()
    }

    /// How many sessions, user actors and conversation actors are live.
    pub fn census(&self) -> Census {
        Census {
            sessions: self.sessions.count(),
            users: self.svc.actors.users.len(),
            conversations: self.svc.actors.convs.len(),
        }
    }

    /// Suspends an account: marks it in the store, revokes its tokens and
    /// closes its sessions with `account_suspended`.
    pub async fn suspend(&self, username: &str) -> Result<(), ProtoError> {
        let user = UserId::parse(username).ok_or_else(|| ProtoError::not_found("no such user"))?;
        let u = user.clone();
        self.svc
            .db(move |s| {
                s.set_suspended(&u, true)?;
                s.revoke_all_devices(&u, None)
            })
            .await?;
        self.kick_suspended(&user);
        self.svc.changed_with(Some(&user)).await;
        Ok(())
    }

    /// Closes every live session of `user` with `account_suspended`; for
    /// integrators whose admin tooling suspends accounts in the store directly.
    pub fn kick_suspended(&self, user: &UserId) {
        self.svc.kick_sessions(user, KickSessions::suspended());
    }

    /// Closes every session cleanly and refuses new ones: requests already
    /// read are answered (a message waiting for its commit gets its `ok`),
    /// then each client gets `closing` `shutdown` after its queued frames.
    /// Call it before stopping the transports: a transport that stops first
    /// ends its connections' sessions before the hub can say why.
    /// Returns once every session has ended and every user that was online
    /// has its `last_seen` stored, or `grace` has passed.
    pub async fn shutdown(&self, grace: Duration) {
        self.sessions.shut_down();
        let deadline = tokio::time::Instant::now() + grace;
        let busy =
            || self.sessions.count() > 0 || self.svc.online_users.load(Ordering::Acquire) > 0;
        while busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Err(e) = self.svc.flush_touches().await {
            tracing::warn!(error = %e, "last logins not stored");
        }
        if self.svc.actors.cluster.is_some() {
            self.svc.leave_cluster();
            // Time for the bus client to send the `Bye`.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Authorizes an HTTP download of `id` by bearer token or by a signed
    /// link (`exp`, `sig` from `file.url`).
    pub async fn authorize_download(
        &self,
        bearer: Option<&str>,
        signed: Option<(i64, &str)>,
        id: &str,
    ) -> Result<Download, HttpRefusal> {
        files::authorize_download(&self.svc, bearer, signed, id).await
    }

    /// Reads up to `len` bytes of a downloadable file from `offset`, off the
    /// async threads.
    pub async fn read_download(
        &self,
        d: &Download,
        offset: u64,
        len: usize,
    ) -> std::io::Result<Vec<u8>> {
        let sha = d.meta.sha256.clone();
        self.svc
            .blocking(move |_, blobs| blobs.read(&sha, offset, len))
            .await
            .map_err(|_| std::io::Error::other("pool unavailable"))?
    }

    /// Removes unfinished uploads and unsent files older than
    /// `limits.upload_ttl_secs`, and blobs no file uses any more.
    pub async fn collect_files(&self) -> Result<usize, ProtoError> {
        files::collect(&self.svc).await
    }
}
