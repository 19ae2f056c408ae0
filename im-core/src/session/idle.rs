//! Idle deadlines of every session on one timer: a sweep every tick checks
//! each session's last activity, instead of a task and a timer per
//! session (with tens of thousands of idle connections, those wake-ups
//! were most of an idle server's CPU, and their state a share of each
//! session's memory).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use actix::WeakAddr;

use super::SessionActor;
use crate::ids::{now_millis, SessionId};
use crate::transport::{CloseReason, Outbox};

/// After an idle timeout, how long queued frames (the `closing`) get to be
/// written before the connection is cut.
const IDLE_GRACE: Duration = Duration::from_secs(10);

/// One session's deadline.
struct Watch {
    activity: Arc<AtomicI64>,
    outbox: Outbox,
    session: WeakAddr<SessionActor>,
}

/// Every session's idle deadline, swept every `tick`.
pub(crate) struct IdleWheel {
    idle_ms: i64,
    tick: Duration,
    watches: Mutex<HashMap<SessionId, Watch>>,
    started: AtomicBool,
}

/// Takes the session off the wheel when dropped (with the session), so
/// the wheel lets go of its outbox at once.
pub(super) struct IdleGuard {
    wheel: Weak<IdleWheel>,
    id: SessionId,
}

impl Drop for IdleGuard {
    fn drop(&mut self) {
        if let Some(w) = self.wheel.upgrade() {
            if let Ok(mut m) = w.watches.lock() {
                m.remove(&self.id);
            }
        }
    }
}

impl IdleWheel {
    /// Sessions silent for `idle_secs` are closed; the sweep runs every
    /// tenth of that (between 50 ms and 5 s).
    pub(crate) fn new(idle_secs: u64) -> IdleWheel {
        let idle_ms = idle_secs.max(1) * 1000;
        IdleWheel {
            idle_ms: idle_ms as i64,
            tick: Duration::from_millis((idle_ms / 10).clamp(50, 5000)),
            watches: Mutex::default(),
            started: AtomicBool::new(false),
        }
    }

    /// Watches a session; the sweeping task starts with the first one.
    pub(super) fn watch(
        self: &Arc<Self>,
        id: SessionId,
        activity: Arc<AtomicI64>,
        outbox: Outbox,
        session: WeakAddr<SessionActor>,
    ) -> IdleGuard {
        if let Ok(mut m) = self.watches.lock() {
            m.insert(
                id,
                Watch {
                    activity,
                    outbox,
                    session,
                },
            );
        }
        self.start();
        IdleGuard {
            wheel: Arc::downgrade(self),
            id,
        }
    }

    /// Starts the sweeping task on the current arbiter (the hub's, when
    /// the hub starts), once.
    pub(crate) fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let wheel = Arc::downgrade(self);
        let tick = self.tick;
        actix_rt::spawn(async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(w) = wheel.upgrade() else { return };
                w.sweep();
            }
        });
    }

    /// Closes the sessions past their deadline.
    fn sweep(&self) {
        let now = now_millis();
        let mut expired = Vec::new();
        if let Ok(mut m) = self.watches.lock() {
            m.retain(|id, w| {
                let live = now - w.activity.load(Ordering::Relaxed) < self.idle_ms;
                if !live {
                    expired.push((*id, w.outbox.clone(), w.session.clone()));
                }
                live
            });
        }
        for (id, outbox, session) in expired {
            tracing::debug!(session = %id, "idle timeout");
            outbox.close(CloseReason::Idle);
            if let Some(addr) = session.upgrade() {
                addr.do_send(super::guard::Expired);
            }
            actix_rt::spawn(async move {
                tokio::time::sleep(IDLE_GRACE).await;
                outbox.kill(CloseReason::Idle);
            });
        }
    }
}
