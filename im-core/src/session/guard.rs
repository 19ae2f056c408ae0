//! What a connection is allowed before its requests are even looked at:
//! the request rate (a token bucket), and the timers that close it (login
//! deadline, idle timeout).

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::SessionActor;
use crate::transport::CloseReason;

/// A token bucket: `rate` requests per second on average, `burst` at once.
pub(crate) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    /// Refusals in a row.
    pub refused: u32,
}

impl RateLimit {
    /// A full bucket.
    pub(crate) fn new(rate: u32, burst: u32) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            at: Instant::now(),
            refused: 0,
        }
    }

    /// Takes a token for one request; `false` when the bucket is empty
    /// (the refusal is counted).
    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused = self.refused.saturating_add(1);
            false
        }
    }
}

impl SessionActor {
    /// Closes after what is queued, without waiting for requests in
    /// progress: for a connection whose framing broke (too large, garbage).
    pub(super) fn close_now(&mut self, reason: CloseReason) {
        self.log_close(reason);
        self.state_closing();
        self.s.outbox.close(reason);
    }

    /// Whether the session has not logged in (yet).
    pub(super) fn logged_out(&self) -> bool {
        matches!(self.state, super::State::New)
    }

    /// Logs why the server closes this connection.
    pub(super) fn log_close(&self, reason: CloseReason) {
        tracing::info!(parent: &self.s.span, reason = reason.text(), "closing the connection");
    }

    /// Sends an `error` that answers no request (the framing broke).
    pub(super) fn error_now(&self, e: crate::error::ProtoError) {
        crate::telemetry::error(e.code);
        let frame = crate::protocol::ServerFrame::error(None, e);
        self.s.outbox.push(frame.encode());
    }

    /// Closes the connection if it has not logged in within
    /// `limits.login_timeout_secs` (nothing the client sends extends it).
    pub(super) fn login_deadline(&mut self, ctx: &mut Context<Self>) {
        let secs = self.s.svc.config.limits.login_timeout_secs.max(1);
        ctx.run_later(Duration::from_secs(secs), |act, _| {
            if act.logged_out() {
                tracing::debug!(session = %act.s.id, "login timeout");
                act.close_now(CloseReason::LoginTimeout);
            }
        });
    }

    /// Closes the connection when the client has been silent for
    /// `limits.idle_timeout_secs`, on the hub's one idle timer (not an
    /// actor timer, so it also fires while the session is busy: a login
    /// replay the client does not read).
    pub(super) fn watch_idle(&mut self, ctx: &mut Context<Self>) {
        let (activity, outbox) = (self.s.activity.clone(), self.s.outbox.clone());
        let me = ctx.address().downgrade();
        self.watchdog = Some(self.s.svc.idle.watch(self.s.id, activity, outbox, me));
    }
}

/// The session timed out: it leaves its user and reads nothing more.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Expired;

impl Handler<Expired> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Expired, _: &mut Context<Self>) {
        self.state_closing();
    }
}
