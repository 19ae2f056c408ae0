//! The protocol suite, shared by every transport and store: each test
//! binary in `tests/` that includes these modules defines `TRANSPORT` and
//! `STORE` (what [`server`] starts) and the `tcp_only!` macro (which keeps
//! or drops the tests of raw TCP line framing: CRLF, empty lines, bytes that
//! are not UTF-8, none of which a WebSocket text message can carry).

use im_tests::{TestServer, TestServerBuilder};

mod accounts;
mod contacts;
mod delivery;
mod files;
mod framing;
mod messages;
mod presence;
mod rooms;

/// A server for this binary's transport and store; change the
/// configuration with `.config(...)`, then `.start()`.
pub fn server() -> TestServerBuilder {
    TestServer::builder()
        .transport(crate::TRANSPORT)
        .store(crate::STORE)
}
