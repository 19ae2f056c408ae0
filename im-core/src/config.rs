//! Core configuration. Integrators fill it in code; the example server reads
//! it from defaults, a TOML file and `IM__SECTION__KEY` variables.

use serde::{Deserialize, Serialize};

/// Everything the core needs to know, grouped as in the protocol's
/// configuration table. Every field has a documented default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Authentication and throttling.
    pub auth: AuthConfig,
    /// Sizes, timeouts, queue bounds.
    pub limits: Limits,
    /// Policy switches.
    pub policy: Policy,
    /// Worker pools for blocking work.
    pub pool: PoolConfig,
    /// Several nodes (used only with a bus, see [`crate::cluster`]).
    pub cluster: ClusterConfig,
}

/// How nodes of a cluster watch each other.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    /// A node not heard from for this long is taken as dead: its users go
    /// offline for everyone, unless they have sessions elsewhere, and
    /// changes stop waiting for its acknowledgement (default 10). Nodes
    /// send heartbeats every quarter of it (at most every second).
    pub node_timeout_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_timeout_secs: 10,
        }
    }
}

/// Authentication settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// bcrypt cost for new hashes (4..=31; default 12).
    pub bcrypt_cost: u32,
    /// Device tokens expire this many days after issue (default 30).
    pub token_ttl_days: u32,
    /// Password failures allowed per username per window (default 10).
    pub login_failures_per_user: u32,
    /// Password and token failures allowed per peer address per window (default 100).
    pub login_failures_per_peer: u32,
    /// Registrations allowed per peer address per window (default 60).
    pub register_per_peer: u32,
    /// Length of the throttling window in seconds (default 60).
    pub rate_window_secs: u64,
    /// How often the store is asked for suspended accounts, so suspensions
    /// made outside this process close live sessions (default 2; 0 = never).
    pub suspension_poll_secs: u64,
    /// How often the store's change log is read, so contact, block, room
    /// and token changes made by another process sharing the store take
    /// effect here (default 500 ms; 0 = never).
    pub change_poll_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            bcrypt_cost: 12,
            token_ttl_days: 30,
            login_failures_per_user: 10,
            login_failures_per_peer: 100,
            register_per_peer: 60,
            rate_window_secs: 60,
            suspension_poll_secs: 2,
            change_poll_ms: 500,
        }
    }
}

/// Limits on what a client can make the server hold or do.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Longest client frame in bytes, terminator excluded (default 65536).
    pub max_frame: usize,
    /// Longest message body in bytes (default 16384).
    pub max_body: usize,
    /// A connection silent this long is closed (default 90).
    pub idle_timeout_secs: u64,
    /// A connection not logged in this long after connecting is closed
    /// (default 30); `ping` does not extend it.
    pub login_timeout_secs: u64,
    /// Connections served at once; one more gets `closing` `server_full`
    /// (default 10000).
    pub max_connections: usize,
    /// Connections served at once from one peer address (default 64).
    pub max_connections_per_peer: usize,
    /// Requests per second one connection may send, on average (default 50).
    pub frames_per_sec: u32,
    /// Requests one connection may send in a burst above that rate
    /// (default 200).
    pub frames_burst: u32,
    /// Refusals for the rate in a row after which the connection is closed
    /// (`closing` `rate_limited`; default 500).
    pub flood_close_after: u32,
    /// Bytes queued towards one connection, replies included, before it
    /// counts as too slow and is disconnected (default 8 MiB).
    pub outbound_bytes: usize,
    /// Rooms one user may own (default 100); over it `room.create` is a
    /// `conflict`.
    pub max_rooms_owned: usize,
    /// Devices with a live token per user (default 20); a login on a new
    /// device over it is a `conflict` (revoke one first).
    pub max_devices: usize,
    /// Contact requests one user may have waiting for an answer
    /// (default 200); over it `contact.add` is `rate_limited`.
    pub max_pending_requests: usize,
    /// Room invitations one user may have waiting (default 200); over it
    /// `room.invite` to that user is `rate_limited`.
    pub max_pending_invites: usize,
    /// Most messages replayed per conversation at login (default 500).
    pub replay_max: u64,
    /// Most messages replayed in all at login (default 5000).
    pub replay_total_max: u64,
    /// Largest file upload in bytes (default 25 MiB).
    pub max_file: u64,
    /// Storage quota per user in bytes (default 1 GiB).
    pub user_quota: u64,
    /// Unfinished uploads one user may have at once; `file.begin` past it
    /// is `rate_limited` (default 20).
    pub max_open_uploads: u64,
    /// Frames queued towards one connection before it counts as too slow
    /// and is disconnected (default 1024).
    pub outbound_queue: usize,
    /// Requests one connection may have in progress before the server stops
    /// reading from it (default 64).
    pub max_in_flight: usize,
    /// Live events held for a session while its login replay is written
    /// (default 4096); past that the session is disconnected.
    pub sync_buffer: usize,
    /// Seconds an idle conversation actor lives before stopping (default 60).
    pub conv_idle_secs: u64,
    /// Unfinished uploads, and finished files never sent, are removed after
    /// this many seconds (default 3600).
    pub upload_ttl_secs: u64,
    /// At shutdown, how long requests in progress may take to be answered
    /// and clients to be told, before the process exits anyway (default 10).
    pub shutdown_grace_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 65536,
            max_body: 16384,
            idle_timeout_secs: 90,
            login_timeout_secs: 30,
            max_connections: 10_000,
            max_connections_per_peer: 64,
            frames_per_sec: 50,
            frames_burst: 200,
            flood_close_after: 500,
            outbound_bytes: 8 << 20,
            max_rooms_owned: 100,
            max_devices: 20,
            max_pending_requests: 200,
            max_pending_invites: 200,
            replay_max: 500,
            replay_total_max: 5000,
            max_file: 26_214_400,
            user_quota: 1_073_741_824,
            max_open_uploads: 20,
            outbound_queue: 1024,
            max_in_flight: 64,
            sync_buffer: 4096,
            conv_idle_secs: 60,
            upload_ttl_secs: 3600,
            shutdown_grace_secs: 10,
        }
    }
}

/// Policy switches.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Direct messages only between mutual contacts (default true).
    pub dm_requires_contact: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            dm_requires_contact: true,
        }
    }
}

/// Sizes of the pools that run blocking work off the actor threads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolConfig {
    /// Concurrent store calls (default 8).
    pub store_threads: usize,
    /// Concurrent bcrypt computations (default: half the CPUs, at least 1),
    /// so a login storm leaves CPU for delivering messages.
    pub bcrypt_threads: usize,
    /// A password check that would wait longer than this for a bcrypt
    /// thread is answered `unavailable` at once instead of queueing
    /// (default 3000 ms; 0 = no bound).
    pub bcrypt_max_wait_ms: u64,
    /// Most messages written in one store transaction (default 2048).
    pub max_batch: usize,
    /// Threads running actors and connections (default: the number of
    /// CPUs; 0 keeps everything on the thread that started the hub).
    pub arbiters: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        PoolConfig {
            store_threads: 8,
            bcrypt_threads: (cpus / 2).max(1),
            bcrypt_max_wait_ms: 3000,
            max_batch: 2048,
            arbiters: cpus,
        }
    }
}
