//! Shared code of the example binaries in this directory (`server.rs`,
//! `custom_transport.rs`, `bench.rs`).

use std::sync::Arc;

use anyhow::bail;
use im_core::{MemoryStore, Store};

/// Opens the store named by a `store.url`.
pub fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    match url {
        "memory:" => Ok(Arc::new(MemoryStore::new())),
        other => bail!("unsupported store.url {other:?} (this build supports \"memory:\")"),
    }
}
