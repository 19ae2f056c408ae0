//! Several nodes as one server: the bus seam.
//!
//! Nodes share the store (which orders messages and enforces `seq` and
//! `client_id`) and tell each other, over a [`Bus`], what their live actors
//! must learn: deliveries, events and presence for users with sessions on
//! other nodes, heartbeats, and "the change log moved" for control
//! (contacts, blocks, rooms, revoked tokens).
//!
//! - [`Bus`]: the seam. [`MemoryBus`] links hubs in one process (tests,
//!   embedding); `NatsBus` (feature `nats`) links processes through NATS.
//!   A hub without a bus is a single node and sends nothing anywhere.
//! - `wire`: what nodes say to each other (JSON).
//! - `view`: who is online on which other node, and which nodes are alive.
//! - `route`: the hub's side: fan-out to local actors and remote nodes
//!   (one bus message per node, not per user), the inbound loop,
//!   heartbeats and node death.

mod memory;
#[cfg(feature = "nats")]
mod nats;
pub(crate) mod route;
mod view;
pub(crate) mod wire;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use memory::MemoryBus;
#[cfg(feature = "nats")]
pub use nats::{NatsBus, NatsError};

/// A node's id: random at each start, so a restarted node is a new node.
pub type NodeId = u64;

/// Where a payload goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Every node (the sender may get its own copy back; it is ignored).
    All,
    /// One node.
    Node(NodeId),
}

/// How inbound payloads reach a hub: bounded, so a node that cannot keep
/// up slows the bus down (NATS then drops it as a slow consumer) instead
/// of growing without limit.
pub type Inbox = mpsc::Sender<Bytes>;

/// Capacity of a hub's inbox, in payloads.
pub const INBOX: usize = 65_536;

/// The seam between nodes.
///
/// Payloads sent by one node to one destination arrive in the order sent;
/// nothing else is ordered. Delivery is best effort: a payload lost on the
/// way costs a live delivery (the message is stored and replays at the
/// next login) or, for control, the wait until the next heartbeat.
pub trait Bus: Send + Sync + 'static {
    /// Sends `payload` to `to`. Never blocks.
    fn send(&self, to: Dest, payload: Bytes);
    /// Starts delivering what is sent to [`Dest::All`] and to
    /// `Dest::Node(node)` into `inbox`. A hub calls it once, inside its
    /// runtime.
    fn attach(&self, node: NodeId, inbox: Inbox);
}
