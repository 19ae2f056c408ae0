//! The harness every end-to-end test uses: a real server on port 0 in its
//! own thread (its own actix system), and clients speaking the real
//! protocol over real sockets.
//!
//! Time-dependent behaviour uses short configured limits, never long
//! sleeps; every wait has a deadline so a broken server fails a test
//! instead of hanging it.
//!
//! ## Layout
//! - [`server`]: [`TestServer`] and its builder: transport, store
//!   ([`StoreKind::Memory`] or [`StoreKind::Sqlite`]), configuration,
//!   restarts, operator actions. The one function building the core lives
//!   here.
//! - [`client`]: [`Client`] over TCP or WebSocket, its request helpers, the
//!   user and contact shortcuts on [`TestServer`], and the file helpers.
//! - [`http`]: raw HTTP requests (`/files`, `/healthz`).
//! - [`process`]: the real example server binary, freshly built, as a child
//!   process to restart or `kill -9`.
//!
//! Everything a test needs is re-exported here: `use im_tests::*;`.

pub mod client;
pub mod http;
pub mod pg;
pub mod process;
pub mod server;

pub use client::{
    b64, random_bytes, sha256_hex, unb64, Client, LoginFrames, CHUNK, PASSWORD, WAIT,
};
pub use http::{http_get, http_request, HttpResponse};
pub use server::{
    OwnServer, StopSignal, StoreKind, TestServer, TestServerBuilder, TestStore, Transport,
};
