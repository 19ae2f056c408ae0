//! The protocol suite, shared by every transport: each test binary in
//! `tests/` (one per transport) includes these modules and defines
//! `start`, `start_with` and `start_on` for its transport.

mod accounts;
mod contacts;
mod delivery;
mod files;
mod framing;
mod messages;
mod presence;
mod rooms;
