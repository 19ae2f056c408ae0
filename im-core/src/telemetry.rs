//! Metrics, through the [`metrics`] facade: without a recorder installed
//! (a binary's job: the example server installs a Prometheus exporter)
//! every call here is a no-op. The names are a contract operators'
//! dashboards rely on:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `im_sessions` | gauge | `transport` |
//! | `im_users_online` | gauge | |
//! | `im_frames_in_total` | counter | `type` (the request's `type`; `invalid` when it could not be decoded) |
//! | `im_frames_out_total` | counter | |
//! | `im_errors_total` | counter | `code` |
//! | `im_messages_stored_total` | counter | |
//! | `im_store_batch_size` | histogram | (messages and cursor updates per commit) |
//! | `im_store_batch_seconds` | histogram | |
//! | `im_slow_consumer_disconnects_total` | counter | |
//! | `im_login_throttled_total` | counter | |
//! | `im_logins_total` | counter | `method` (`password` or `token`) |
//! | `im_cluster_sent_total` | counter | (bus messages sent to other nodes) |
//! | `im_cluster_received_total` | counter | (bus messages from other nodes) |
//! | `im_cluster_nodes` | gauge | (other nodes heard from lately) |

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::error::ErrorCode;

/// `im_frames_out_total`, registered once: it counts every frame of every
/// fan-out, too often to look the counter up each time.
static FRAMES_OUT: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();

/// Describes every metric and shows the unlabelled ones at zero, so a
/// dashboard sees them before the first event. Called when a hub starts:
/// install the recorder before starting a hub.
pub fn describe() {
    describe_gauge!("im_sessions", "Live sessions, by transport.");
    describe_gauge!("im_users_online", "Users with at least one live session.");
    describe_counter!("im_frames_in_total", "Client frames received, by type.");
    describe_counter!("im_frames_out_total", "Frames queued towards clients.");
    describe_counter!("im_errors_total", "Error frames sent, by code.");
    describe_counter!("im_messages_stored_total", "Messages durably stored.");
    describe_histogram!(
        "im_store_batch_size",
        "Messages and cursor updates per store commit."
    );
    describe_histogram!("im_store_batch_seconds", "Duration of one store commit.");
    describe_counter!(
        "im_slow_consumer_disconnects_total",
        "Connections cut off for not reading their frames."
    );
    describe_counter!(
        "im_login_throttled_total",
        "Logins and registrations refused by a throttle."
    );
    describe_counter!("im_logins_total", "Successful logins, by method.");
    describe_counter!("im_cluster_sent_total", "Bus messages sent to other nodes.");
    describe_counter!(
        "im_cluster_received_total",
        "Bus messages received from other nodes."
    );
    describe_gauge!("im_cluster_nodes", "Other nodes heard from lately.");
    for name in [
        "im_frames_out_total",
        "im_messages_stored_total",
        "im_slow_consumer_disconnects_total",
        "im_login_throttled_total",
    ] {
        counter!(name).increment(0);
    }
    gauge!("im_users_online").increment(0.0);
    let _ = FRAMES_OUT.set(counter!("im_frames_out_total"));
}

/// A session started (`+1`) or ended (`-1`) on `transport`.
pub(crate) fn session(transport: &'static str, delta: f64) {
    gauge!("im_sessions", "transport" => transport).increment(delta);
}

/// A user came online (`+1`) or went offline (`-1`).
pub(crate) fn user_online(delta: f64) {
    gauge!("im_users_online").increment(delta);
}

/// A request of `kind` arrived.
pub(crate) fn frame_in(kind: &'static str) {
    counter!("im_frames_in_total", "type" => kind).increment(1);
}

/// A frame was queued towards a client.
pub(crate) fn frame_out() {
    FRAMES_OUT
        .get_or_init(|| counter!("im_frames_out_total"))
        .increment(1);
}

/// An `error` frame with `code` was sent.
pub(crate) fn error(code: ErrorCode) {
    counter!("im_errors_total", "code" => code.as_str()).increment(1);
}

/// One commit of the group-commit writer.
pub(crate) fn batch(items: usize, stored: usize, seconds: f64) {
    histogram!("im_store_batch_size").record(items as f64);
    histogram!("im_store_batch_seconds").record(seconds);
    counter!("im_messages_stored_total").increment(stored as u64);
}

/// A connection was cut off for not reading fast enough.
pub(crate) fn slow_consumer() {
    counter!("im_slow_consumer_disconnects_total").increment(1);
}

/// A login or registration was refused by a throttle.
pub(crate) fn login_throttled() {
    counter!("im_login_throttled_total").increment(1);
}

/// A successful login by `method` (`password` or `token`).
pub(crate) fn login(method: &'static str) {
    counter!("im_logins_total", "method" => method).increment(1);
}

/// A bus message was sent to other nodes.
pub(crate) fn cluster_sent() {
    counter!("im_cluster_sent_total").increment(1);
}

/// A bus message arrived from another node.
pub(crate) fn cluster_received() {
    counter!("im_cluster_received_total").increment(1);
}

/// How many other nodes are alive.
pub(crate) fn cluster_nodes(n: usize) {
    gauge!("im_cluster_nodes").set(n as f64);
}
