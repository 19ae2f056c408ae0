//! The protocol suite, shared by every transport and store: each test
//! binary in `tests/` that includes these modules defines `TRANSPORT` and
//! `STORE`, what [`server`] starts.

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
