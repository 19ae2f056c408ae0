//! Shared code of the example binaries in this directory.
//!
//! # Layout
//! - `server.rs`: the example server (config file + environment, TCP and
//!   HTTP/WebSocket, SQLite by default) and its admin commands
//!   (`user add|suspend|reinstate|list`).
//! - `compose.rs`: the README's "server in 30 lines".
//! - `custom_transport.rs`: a complete Unix-socket transport on the
//!   public boundary.
//! - `bench.rs`: the end-to-end store benchmark (see BENCHMARKS.md).
//! - `src/lib.rs` (this file): what they share: opening a store by URL.
//! - `loadgen.rs`, `src/loadgen/`: the load generator (BENCHMARKS.md).
//! - `charts.rs`: PNG charts of the generator's sweeps (`--csv`).
//! - `src/metrics.rs`: the Prometheus exporter behind `GET /metrics`.
//! - `src/tls.rs`: certificates from PEM files, reloaded on SIGHUP or
//!   when the files change.
//! - `src/settings.rs`: the example server's configuration
//!   (`server.toml` lists every key).

pub mod client;
pub mod loadgen;
pub mod metrics;
pub mod settings;
pub mod tls;

use std::sync::Arc;

use im_core::Store;
pub use im_store::{FsBlobStore, StoreOptions};

/// Opens the store named by a `store.url` (`memory:`, `sqlite://PATH`,
/// `postgres://...` when built with the `postgres` feature).
pub fn open_store(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    Ok(im_store::open(url, options)?)
}
