//! Shared code of the example binaries in this directory (`server.rs`,
//! `custom_transport.rs`, `bench.rs`).

use std::sync::Arc;

use im_core::Store;
pub use im_store::{FsBlobStore, StoreOptions};

/// Opens the store named by a `store.url` (`memory:`, `sqlite://PATH`,
/// `postgres://...` when built with the `postgres` feature).
pub fn open_store(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    Ok(im_store::open(url, options)?)
}
