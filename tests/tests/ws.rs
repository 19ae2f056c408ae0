//! The protocol suite over WebSocket (one frame per text message at `/ws`)
//! on the memory store.

use im_tests::{StoreKind, Transport};

const TRANSPORT: Transport = Transport::Ws;
const STORE: StoreKind = StoreKind::Memory;

#[path = "../suite/mod.rs"]
mod suite;
