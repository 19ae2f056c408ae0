//! The protocol suite over TCP (newline-delimited JSON) on the memory
//! store.

use im_tests::{StoreKind, Transport};

const TRANSPORT: Transport = Transport::Tcp;
const STORE: StoreKind = StoreKind::Memory;

/// Raw line framing is what this transport has: its tests run here.
macro_rules! tcp_only {
    ($($test:item)*) => { $($test)* };
}

#[path = "../suite/mod.rs"]
mod suite;
