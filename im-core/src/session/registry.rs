//! Every live session of a hub, so shutdown can reach them all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use actix::Addr;

use super::{SessionActor, Shutdown};
use crate::ids::SessionId;

/// Live sessions by id, and whether the hub is shutting down.
#[derive(Default)]
pub(crate) struct Sessions {
    next: AtomicU64,
    live: Mutex<HashMap<SessionId, Addr<SessionActor>>>,
    shutting_down: AtomicBool,
}

impl Sessions {
    /// A new session id.
    pub(crate) fn next_id(&self) -> SessionId {
        SessionId(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Registers a started session; during shutdown it is told to close.
    pub(crate) fn add(&self, id: SessionId, addr: Addr<SessionActor>) {
        if self.shutting_down.load(Ordering::Acquire) {
            addr.do_send(Shutdown);
        }
        if let Ok(mut s) = self.live.lock() {
            s.insert(id, addr);
        }
    }

    /// Forgets an ended session.
    pub(crate) fn remove(&self, id: SessionId) {
        if let Ok(mut s) = self.live.lock() {
            s.remove(&id);
        }
    }

    /// Number of live sessions.
    pub(crate) fn count(&self) -> usize {
        self.live.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Refuses new sessions and tells every live one to close.
    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let live: Vec<_> = self
            .live
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        for s in live {
            s.do_send(Shutdown);
        }
    }
}
