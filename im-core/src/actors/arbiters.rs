//! Where actors run: a pool of arbiters (one thread and event loop each),
//! so a hub uses every core. User and conversation actors are placed by a
//! hash of their key, so one actor always lives on one thread; transports
//! place each connection (its I/O and its session actor) on the next
//! arbiter in turn ([`crate::Hub::next_arbiter`]).
//!
//! With `pool.arbiters = 0` everything stays on the arbiter that started
//! the hub, as a single-threaded embedding may want.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle};

/// The pool; stopped with the actix system that created it.
pub(crate) struct Arbiters {
    handles: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl Arbiters {
    /// Starts `n` arbiters (none: the current one serves all).
    pub(crate) fn start(n: usize) -> Arbiters {
        let handles = if n == 0 {
            vec![Arbiter::current()]
        } else {
            (0..n).map(|_| Arbiter::new().handle()).collect()
        };
        Arbiters {
            handles,
            next: AtomicUsize::new(0),
        }
    }

    /// The arbiter of `key`: always the same one.
    pub(crate) fn by_key(&self, key: &impl Hash) -> &ArbiterHandle {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.handles[(h.finish() as usize) % self.handles.len()]
    }

    /// The next arbiter in turn.
    pub(crate) fn next(&self) -> &ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[i % self.handles.len()]
    }

    /// Starts an actor on the arbiter of `key`.
    pub(crate) fn run<A, K, F>(&self, key: &K, f: F) -> Addr<A>
    where
        A: Actor<Context = Context<A>>,
        K: Hash,
        F: FnOnce() -> A + Send + 'static,
    {
        A::start_in_arbiter(self.by_key(key), move |_| f())
    }
}
