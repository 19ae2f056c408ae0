//! Every live session of a hub, so shutdown can reach them all, and the
//! connection caps (overall and per peer address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use actix::Addr;

use super::{SessionActor, Shutdown};
use crate::ids::SessionId;
use crate::transport::PeerInfo;

/// Live sessions by id, and whether the hub is shutting down.
#[derive(Default)]
pub(crate) struct Sessions {
    next: AtomicU64,
    live: Mutex<HashMap<SessionId, Addr<SessionActor>>>,
    shutting_down: AtomicBool,
    admitted: Mutex<Admitted>,
}

/// Connections counted against the caps.
#[derive(Default)]
struct Admitted {
    total: usize,
    /// By peer address; an address leaves the map at 0.
    per_peer: HashMap<IpAddr, usize>,
}

impl Sessions {
    /// A new session id.
    pub(crate) fn next_id(&self) -> SessionId {
        SessionId(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Registers a started session; during shutdown it is told to close.
    pub(crate) fn add(&self, id: SessionId, addr: Addr<SessionActor>) {
        // Under the lock `shut_down` takes: a session added while it runs
        // is either in its list or sees the flag.
        if let Ok(mut s) = self.live.lock() {
            if self.shutting_down.load(Ordering::Acquire) {
                addr.do_send(Shutdown);
            }
            s.insert(id, addr);
        }
    }

    /// Counts a new connection from `peer` against the caps; `false` (and
    /// nothing counted) when it is over one.
    pub(crate) fn admit(&self, info: &PeerInfo, max: usize, max_per_peer: usize) -> bool {
        let peer = info.addr.map(|a| a.ip());
        let Ok(mut a) = self.admitted.lock() else {
            return false;
        };
        let from_peer = peer.map_or(0, |ip| a.per_peer.get(&ip).copied().unwrap_or(0));
        if a.total >= max || from_peer >= max_per_peer {
            return false;
        }
        a.total += 1;
        if let Some(ip) = peer {
            *a.per_peer.entry(ip).or_default() += 1;
        }
        crate::telemetry::session(info.transport, 1.0);
        true
    }

    /// Forgets an ended session; `admitted` is `Some(peer)` when it was
    /// counted against the caps.
    pub(crate) fn remove(&self, id: SessionId, admitted: Option<&PeerInfo>) {
        if let Ok(mut s) = self.live.lock() {
            s.remove(&id);
        }
        let Some(info) = admitted else {
            return;
        };
        crate::telemetry::session(info.transport, -1.0);
        let peer = info.addr.map(|a| a.ip());
        let Ok(mut a) = self.admitted.lock() else {
            return;
        };
        a.total = a.total.saturating_sub(1);
        if let Some(ip) = peer {
            if let Some(n) = a.per_peer.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    a.per_peer.remove(&ip);
                }
            }
        }
    }

    /// Number of live sessions.
    pub(crate) fn count(&self) -> usize {
        self.live.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Refuses new sessions and tells every live one to close.
    pub(crate) fn shut_down(&self) {
        let live: Vec<_> = self
            .live
            .lock()
            .map(|s| {
                self.shutting_down.store(true, Ordering::Release);
                s.values().cloned().collect()
            })
            .unwrap_or_default();
        for s in live {
            s.do_send(Shutdown);
        }
    }
}
