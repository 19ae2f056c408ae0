//! Support crate for the examples in this directory; see `server.rs` and `custom_transport.rs`.
