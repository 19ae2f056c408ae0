//! # im-core
//!
//! The core of an actor-model instant-messaging server: the client protocol,
//! the actors that route presence and messages, and the storage traits.
//! Transports (TCP, WebSocket, your own) live in other crates and talk to the
//! core through a small boundary, [`Hub::connect`].
//!
//! ## Layout
//! - [`protocol`]: `ClientFrame` / `ServerFrame`, the JSON codec.
//! - [`error`]: error codes and the one mapping from internal errors.
//! - [`hub`]: [`Hub`], the entry point: a directory of live actors.
//! - `session`, `user`, `conversation`: one actor per connection, per
//!   online user, per active conversation (direct or room).
//! - `accounts`, `contacts`, `messages`, `rooms`: request handlers.
//! - [`files`]: uploads, reads, signed links, download authorization;
//!   [`blob`]: the [`blob::BlobStore`] trait for file bytes.
//! - [`store`]: the [`Store`] trait and [`MemoryStore`].
//! - [`transport`]: the transport boundary.
//! - [`auth`]: passwords, tokens, throttling. [`pool`]: bounded blocking pools.
//! - [`testing`]: an in-memory transport for tests.
//!
//! ## Composing a server
//! ```no_run
//! use std::sync::Arc;
//! use im_core::{Config, Hub, MemoryStore};
//!
//! #[actix_rt::main]
//! async fn main() {
//!     let hub = Hub::new(Config::default(), Arc::new(MemoryStore::new()));
//!     // Hand `hub` to one or more transports, e.g.
//!     // im_transport_tcp::serve(listener, hub, shutdown).await
//!     # let _ = hub;
//! }
//! ```
//!
//! ## Writing a transport
//! A transport accepts connections and, for each:
//! 1. calls [`Hub::connect`] with a [`transport::PeerInfo`], getting a
//!    [`transport::Connection`] of two halves;
//! 2. reads client frames and passes each one's bytes to
//!    [`transport::Inbound::frame`] (which waits when the client has too
//!    many requests in progress; an error means the session is over); a
//!    frame over [`transport::Inbound::max_frame`] goes to
//!    [`transport::Inbound::too_large`] instead;
//! 3. writes every [`transport::Outgoing::Frame`] from
//!    [`transport::OutboundRx::recv`] and closes the connection on
//!    [`transport::Outgoing::Close`] or `None`;
//! 4. drops the `Inbound` when the client goes away.
//!
//! Frames are opaque to the transport: it never parses or builds JSON.
//! `examples/custom_transport.rs` is a complete Unix-socket transport.
//!
//! ## Threads
//! Create the hub inside a running actix system. A session actor runs on
//! the arbiter of the transport task that connected it, and user and
//! conversation actors on the arbiter of whoever first needed them, so
//! multi-threaded transports (actix-web workers) spread the actors. Store calls and
//! bcrypt run on bounded blocking pools; messages and cursors are written by
//! one group-commit thread, many per transaction.

#![warn(missing_docs)]

pub mod auth;
pub mod blob;
pub mod config;
pub mod error;
pub mod files;
pub mod hub;
pub mod ids;
pub mod names;
pub mod pool;
pub mod protocol;
pub mod store;
pub mod testing;
pub mod transport;

mod accounts;
mod contacts;
mod conversation;
mod directory;
mod messages;
mod reply;
mod rooms;
mod session;
mod user;
mod writer;

pub use config::Config;
pub use conversation::ConversationActor;
pub use error::{ErrorCode, ProtoError, StoreError};
pub use hub::Hub;
pub use ids::{ConvId, SessionId, UserId};
pub use protocol::{ClientFrame, ServerFrame};
pub use session::SessionActor;
pub use store::{MemoryStore, Store};
pub use user::UserActor;
