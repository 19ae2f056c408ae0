//! The load generator behind `examples/loadgen.rs`: real protocol
//! connections over TCP or WebSocket, spread over many source addresses
//! (127.0.0.x), paced open-loop with every sender's phase spread evenly
//! over the interval, latencies in HDR histograms, and the generator's own
//! CPU use beside the server's so a figure limited by the generator says
//! so.
//!
//! ## Layout
//! - `conn`: one connection (TCP lines or WebSocket).
//! - `frame`: a frame's top-level `type` and `body` without parsing it
//!   (the receivers' cheap path).
//! - `stats`: histograms and `/proc` readings.
//! - `scenarios`: `idle`, `direct`, `fanout`, `login-storm`, `reconnect`.
//! - `results`: one CSV row per rate run (`--csv`), read back by the
//!   `charts` example.

pub mod conn;
pub mod frame;
pub mod results;
pub mod scenarios;
pub mod stats;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub use conn::Target;

/// What to run.
#[derive(Clone, Debug)]
pub struct Opts {
    /// The server (the first node).
    pub target: Target,
    /// Further nodes of a cluster: connection `i` goes to node
    /// `i % nodes`, so the two ends of a 1:1 pair are on different nodes.
    pub more: Vec<Target>,
    /// Spread connections over 127.0.0.1 .. 127.0.0.N.
    pub sources: u8,
    /// Users (sessions) taking part.
    pub users: usize,
    /// Offered load: messages per second in all (logins per second for
    /// `login-storm`).
    pub rate: f64,
    /// How long the measured phase lasts.
    pub duration: Duration,
    /// Senders (fan-out) or messages per user (reconnect).
    pub senders: usize,
    /// The background 1:1 rate during `login-storm`.
    pub background_rate: f64,
    /// Names are `<prefix><n>`; a fresh prefix per run keeps runs apart.
    pub prefix: String,
    /// The server's pid, to read its CPU and memory.
    pub server_pid: Option<u32>,
    /// Connections set up at once.
    pub concurrency: usize,
}

/// The password of every generated user.
pub const PASSWORD: &str = "load generator password";

impl Opts {
    /// Name of user `i`.
    pub fn user(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// The node connection `i` goes to.
    pub fn target(&self, i: usize) -> &Target {
        match i % (1 + self.more.len()) {
            0 => &self.target,
            k => &self.more[k - 1],
        }
    }

    /// Source address of connection `i`.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        if self.sources <= 1 || !self.target.addr.ip().is_loopback() {
            return None;
        }
        let last = 1 + (i % usize::from(self.sources)) as u8;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }
}

/// Raises this process's open-file limit to its hard limit (many
/// connections need many descriptors).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}
