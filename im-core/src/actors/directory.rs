//! A directory of live actors by key, with safe retirement.
//!
//! Callers look an actor up (starting it if needed) and get a [`Lease`];
//! while any lease or [`Ticket`] for an entry is alive the actor may not
//! retire. An idle actor retires by calling [`Directory::try_retire`] and,
//! when that succeeds, stopping after the messages already in its mailbox
//! (it sends itself a final message). So no message sent through the
//! directory is ever dropped by an actor that is stopping, and two actors
//! never serve the same key at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr};

struct Entry<A: Actor> {
    addr: Addr<A>,
    leases: Arc<AtomicUsize>,
}

/// Live actors by key.
pub(crate) struct Directory<K, A: Actor> {
    map: Mutex<HashMap<K, Entry<A>>>,
}

/// Keeps an entry from retiring while held; dropped when the work it
/// stands for is done (e.g. inside a message, when the message is handled).
#[derive(Debug)]
pub(crate) struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An actor's address plus a [`Ticket`].
pub(crate) struct Lease<A: Actor> {
    pub addr: Addr<A>,
    pub ticket: Ticket,
}

impl<K: Eq + Hash + Clone, A: Actor> Directory<K, A> {
    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn new() -> Self {
        Directory {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lease(e: &Entry<A>) -> Lease<A> {
        e.leases.fetch_add(1, Ordering::AcqRel);
        Lease {
            addr: e.addr.clone(),
            ticket: Ticket(e.leases.clone()),
        }
    }

    /// The live actor for `key`, if any.
    pub fn get(&self, key: &K) -> Option<Lease<A>> {
        let map = self.map.lock().ok()?;
        map.get(key).filter(|e| e.addr.connected()).map(Self::lease)
    }

    /// The live actor for `key`, started with `start` if there is none.
    pub fn get_or_start(&self, key: &K, start: impl FnOnce() -> Addr<A>) -> Option<Lease<A>> {
        let mut map = self.map.lock().ok()?;
        if let Some(e) = map.get(key).filter(|e| e.addr.connected()) {
            return Some(Self::lease(e));
        }
        let e = Entry {
            addr: start(),
            leases: Arc::new(AtomicUsize::new(0)),
        };
        let lease = Self::lease(&e);
        map.insert(key.clone(), e);
        Some(lease)
    }

    /// Removes `key` if it still maps to `addr` and nobody holds a lease.
    /// On `true` the actor must stop after its queued messages.
    pub fn try_retire(&self, key: &K, addr: &Addr<A>) -> bool {
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        match map.get(key) {
            Some(e) if &e.addr == addr => {
                if e.leases.load(Ordering::Acquire) == 0 {
                    map.remove(key);
                    true
                } else {
                    false
                }
            }
            // Not ours (already replaced or removed): nothing can reach us
            // through the directory any more.
            _ => true,
        }
    }
}
