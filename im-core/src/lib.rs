//! # im-core
//!
//! The core of an actor-model instant-messaging server: the client protocol,
//! the actors that route presence and messages, and the storage traits.
//! Transports (TCP, WebSocket, your own) live in other crates and talk to the
//! core through a small boundary, [`Hub::connect`].
//!
//! ## Layout
//! Layers point one way: protocol ← transport ← session ← handlers ←
//! actors and services ← store.
//! - [`protocol`]: `ClientFrame` / `ServerFrame` and their JSON codec, with
//!   the ids ([`protocol::ids`]), name rules and error codes
//!   ([`protocol::error`]) they use. Depends on nothing else in the crate.
//! - [`transport`]: the boundary a transport drives: [`transport::Inbound`]
//!   (bytes in), [`transport::OutboundRx`] (frames out), the bounded
//!   [`transport::Outbox`]. Depends only on `protocol`.
//! - [`hub`]: [`Hub`], the public facade: a builder, `connect`, operator
//!   controls, HTTP downloads, `shutdown`.
//! - `session/`: `SessionActor`, one per connection: auth state machine,
//!   idle timer, bad-frame streak (`mod.rs`); after login, the roster,
//!   replay and `synced`, paced by the connection (`login.rs`); the live
//!   sessions of a hub (`registry.rs`).
//! - `handlers/`: one module per domain (`accounts`, `contacts`,
//!   `presence`, `messages`, `rooms`, `files`); `mod.rs` holds the request
//!   context and the one routing table that says which requests run one at
//!   a time per connection and why.
//! - `actors/`: `UserActor` (sessions, contact book, presence, DM
//!   permission), `ConversationActor` (ordering, group commit, fan-out),
//!   each with its messages beside it, and the directory that finds them.
//! - `services.rs`: what handlers and actors share: config, store access
//!   through one async helper on the blocking pool, the writer, the
//!   directories, throttles, the blob store.
//! - `writer.rs`: the group-commit thread for messages and cursors.
//! - [`cluster`]: several hubs as one server: the [`cluster::Bus`] seam
//!   (in-process [`cluster::MemoryBus`], NATS behind the `nats` feature),
//!   routing to other nodes, aggregated presence, heartbeats.
//! - [`store`]: the [`Store`] traits by domain and [`MemoryStore`];
//!   [`blob`]: the [`blob::BlobStore`] trait for file bytes; [`files`]:
//!   who may read a file, signed links, HTTP download authorization.
//! - [`config`], [`error`] (store and pool failures and their mapping to
//!   protocol errors), [`admin`] (operator tasks without a hub),
//!   `testing` (feature `testing`: an in-memory transport for tests).
//! - Private: `auth` (bcrypt, tokens, throttles), `pool` (bounded blocking
//!   pools), `reply` (the promise of exactly one reply per request).
//!
//! ## Life of a message
//! Alice sends `{"type":"msg.send","to":"bob","body":"hi"}` over TCP; Bob is
//! online over WebSocket. Each hop, with the file, the actor or thread, and
//! the message type that crosses it:
//! 1. **Socket read** — `im-transport-tcp/src/connection.rs`, the
//!    connection's reader task, splits the line and calls
//!    [`transport::Inbound::frame`] (`transport.rs`), which takes an
//!    in-flight permit and decodes the JSON (`protocol::decode`) on that
//!    task.
//! 2. **Session** — mailbox 1: `transport::Incoming` to Alice's
//!    `SessionActor` (`session/mod.rs`). It checks the auth state and calls
//!    `handlers::route` (`handlers/mod.rs`): `msg.send` is a serial
//!    hand-off to `handlers::messages::send`, which checks fields and sizes.
//! 3. **Sender's user actor** — mailbox 2: `actors::user::SendDirect` to
//!    Alice's `UserActor` (`actors/user.rs`), which checks the permission
//!    against its contact book (and the store, before refusing).
//! 4. **Conversation actor** — mailbox 3: `actors::conversation::Submit`
//!    to the `ConversationActor` of `dm:alice:bob`
//!    (`actors/conversation.rs`), found or started through the directory
//!    in `services.rs`. It batches what arrived while its previous batch
//!    was being written.
//! 5. **Group commit** — queue 4: a job on the writer's bounded channel
//!    (`writer.rs`, thread `im-writer`), which writes many conversations'
//!    messages in one `Store::write_batch` transaction, assigning `seq`
//!    there; the result comes back on a oneshot channel (5).
//! 6. **Reply** — the conversation actor answers the `ReplyTo`
//!    (`reply.rs`): `ok` with `conv`, `seq`, `ts` goes on Alice's session
//!    [`transport::Outbox`] (queue 6), only now that the message is stored.
//! 7. **Fan-out** — mailbox 7: `actors::user::Deliver`, encoded once and
//!    shared, to Bob's `UserActor` and Alice's (carbons for her other
//!    sessions), which push it on each session's `Outbox` (or hold it
//!    until `synced` during a login replay).
//! 8. **Socket write** — `im-transport-ws/src/socket.rs`, Bob's writer
//!    task, takes it from [`transport::OutboundRx::recv`] and sends a text
//!    frame.
//!
//! A room message takes the same path without hop 3 (the room's
//! conversation actor checks membership) and fans out to every member's
//! user actor. Acks (`msg.ack`) go from the handler straight to the writer
//! (coalesced per cursor), then `receipt` events to the user actors.
//!
//! ## Composing a server
//! ```no_run
//! use im_core::{Config, Hub};
//!
//! #[actix_rt::main]
//! async fn main() {
//!     // In memory; a real server passes its store and blob store to
//!     // `Hub::builder(store, blobs)`.
//!     let hub = Hub::in_memory(Config::default());
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

pub mod blob;
pub mod cluster;
pub mod config;
pub mod error;
pub mod files;
pub mod hub;
pub mod protocol;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

mod actors;
mod auth;
mod handlers;
mod pool;
mod reply;
mod services;
mod session;
mod writer;

pub mod admin;
pub use protocol::ids;

pub use config::Config;
pub use error::{ErrorCode, ProtoError, StoreError};
pub use hub::{Hub, HubBuilder};
pub use ids::{ConvId, SessionId, UserId};
pub use protocol::{ClientFrame, ServerFrame};
pub use store::{MemoryStore, Store};
