//! The protocol suite over WebSocket (one frame per text message at `/ws`).

use std::sync::Arc;

use im_core::{Config, Store};
use im_tests::{test_config, TestServer, Transport};

const T: Transport = Transport::Ws;

fn start() -> TestServer {
    TestServer::start_over(T, test_config(), Arc::new(im_core::MemoryStore::new()))
}

fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
    let mut c = test_config();
    f(&mut c);
    TestServer::start_over(T, c, Arc::new(im_core::MemoryStore::new()))
}

fn start_on(config: Config, store: Arc<dyn Store>) -> TestServer {
    TestServer::start_over(T, config, store)
}

#[path = "../suite/mod.rs"]
mod suite;
