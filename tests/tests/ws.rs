//! The protocol suite over WebSocket (one frame per text message at `/ws`)
//! on the memory store.

use im_tests::{StoreKind, Transport};

const TRANSPORT: Transport = Transport::Ws;
const STORE: StoreKind = StoreKind::Memory;

/// A WebSocket text message is one whole frame of UTF-8: the suite's tests
/// of CRLF, empty lines and invalid UTF-8 in a byte stream cannot be sent
/// over it, so they are left out rather than reported as passing.
macro_rules! tcp_only {
    ($($test:item)*) => {};
}

#[path = "../suite/mod.rs"]
mod suite;
