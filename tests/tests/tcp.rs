//! The protocol suite over TCP (newline-delimited JSON) on the memory
//! store.

use im_tests::{StoreKind, Transport};

const TRANSPORT: Transport = Transport::Tcp;
const STORE: StoreKind = StoreKind::Memory;

#[path = "../suite/mod.rs"]
mod suite;
