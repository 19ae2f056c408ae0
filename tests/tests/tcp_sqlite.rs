//! The protocol suite over TCP on SQLite (a database and a files directory
//! per test, as the example server keeps them): the store users run by
//! default must behave exactly like the memory store.

use im_tests::{StoreKind, Transport};

const TRANSPORT: Transport = Transport::Tcp;
const STORE: StoreKind = StoreKind::Sqlite;

/// Raw line framing is what this transport has: its tests run here.
macro_rules! tcp_only {
    ($($test:item)*) => { $($test)* };
}

#[path = "../suite/mod.rs"]
mod suite;
