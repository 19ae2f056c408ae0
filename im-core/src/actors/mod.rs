//! The long-lived actors behind the sessions, and the directories that
//! find them. Each actor's messages are defined beside it.
//!
//! - [`user`]: one `UserActor` per user with a live session: sessions,
//!   contact book, presence, direct-message permission.
//! - [`conversation`]: one `ConversationActor` per active conversation:
//!   orders sends, hands them to the group-commit writer, fans out.
//! - [`directory`]: live actors by key, with safe retirement.
//! - [`arbiters`]: the threads they run on, chosen by key.
//! - [`Core`]: what every actor and request handler holds: the services
//!   and these directories.

pub(crate) mod arbiters;
pub(crate) mod conversation;
pub(crate) mod directory;
pub(crate) mod feed;
pub(crate) mod order;
pub(crate) mod typing;
pub(crate) mod user;

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::blob::BlobStore;
use crate::config::Config;
use crate::ids::{ConvId, UserId};
use crate::services::Services;
use crate::store::Store;
use conversation::ConversationActor;
use directory::{Directory, Lease};
use user::UserActor;

/// The live actors of a hub, by key.
pub(crate) struct Actors {
    /// User actors: users with a live session (or retiring).
    pub users: Directory<UserId, UserActor>,
    /// Conversation actors: conversations active lately.
    pub convs: Directory<ConvId, ConversationActor>,
    /// Where this process is in the change log.
    pub feed: feed::Feed,
    /// The threads actors run on.
    pub arbiters: arbiters::Arbiters,
    /// The other nodes, when this hub is one of several.
    pub cluster: Option<crate::cluster::route::Cluster>,
    /// Moves on every revocation that closes sessions (`device.revoke`, a
    /// password change, a suspension, and those read from the change log)
    /// before its sessions are told to close; see [`Core::kick_sessions`].
    revocations: AtomicU64,
}

/// The services and the directories of live actors; cheap to clone.
/// Dereferences to [`Services`].
#[derive(Clone)]
pub(crate) struct Core {
    svc: Arc<Services>,
    /// The directories.
    pub actors: Arc<Actors>,
}

impl Deref for Core {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.svc
    }
}

impl Core {
    /// Starts the services (writer thread, pools) with empty directories.
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        bus: Option<Arc<dyn crate::cluster::Bus>>,
    ) -> Core {
        let config_arbiters = config.pool.arbiters;
        let timeout = std::time::Duration::from_secs(config.cluster.node_timeout_secs.max(1));
        let svc = Arc::new(Services::new(config, store, blobs));
        let cluster = bus.map(|b| crate::cluster::route::Cluster::new(b, svc.origin, timeout));
        Core {
            svc,
            actors: Arc::new(Actors {
                users: Directory::new(),
                convs: Directory::new(),
                feed: feed::Feed::default(),
                arbiters: arbiters::Arbiters::start(config_arbiters),
                cluster,
                revocations: AtomicU64::new(0),
            }),
        }
    }

    /// The conversation's actor, started if needed.
    pub(crate) fn conv_actor(&self, conv: &ConvId) -> Option<Lease<ConversationActor>> {
        let (core, c) = (self.clone(), conv.clone());
        let arbiters = &self.actors.arbiters;
        self.actors.convs.get_or_start(conv, move || {
            arbiters.run(&c, {
                let c = c.clone();
                move || ConversationActor::new(core, c)
            })
        })
    }

    /// The user's actor, started if needed.
    pub(crate) fn user_actor(&self, user: &UserId) -> Option<Lease<UserActor>> {
        let (core, u) = (self.clone(), user.clone());
        let arbiters = &self.actors.arbiters;
        self.actors.users.get_or_start(user, move || {
            arbiters.run(&u, {
                let u = u.clone();
                move || UserActor::new(core, u)
            })
        })
    }

    /// Closes the sessions of `user` that `kick` names, once what revoked
    /// them is stored. A session attached before this is closed by it; a
    /// login whose credentials were checked before the revocation but that
    /// attaches after it sees [`Core::revocation_epoch`] moved and checks
    /// its token again.
    pub(crate) fn kick_sessions(&self, user: &UserId, kick: user::KickSessions) {
        self.actors.revocations.fetch_add(1, Ordering::SeqCst);
        self.kick_again(user, kick);
    }

    /// Like [`Core::kick_sessions`] for a revocation already counted.
    pub(crate) fn kick_again(&self, user: &UserId, kick: user::KickSessions) {
        if let Some(l) = self.actors.users.get(user) {
            l.addr.do_send(kick);
        }
    }

    /// How many revocations this hub has acted on; read before a login
    /// checks its credentials.
    pub(crate) fn revocation_epoch(&self) -> u64 {
        self.actors.revocations.load(Ordering::SeqCst)
    }

    /// A weak handle, for periodic tasks that must not keep the hub alive.
    pub(crate) fn downgrade(&self) -> WeakCore {
        WeakCore {
            svc: Arc::downgrade(&self.svc),
            actors: Arc::downgrade(&self.actors),
        }
    }
}

/// A [`Core`] that does not keep it alive.
pub(crate) struct WeakCore {
    svc: std::sync::Weak<Services>,
    actors: std::sync::Weak<Actors>,
}

impl WeakCore {
    /// The core, while the hub lives.
    pub(crate) fn upgrade(&self) -> Option<Core> {
        Some(Core {
            svc: self.svc.upgrade()?,
            actors: self.actors.upgrade()?,
        })
    }
}
