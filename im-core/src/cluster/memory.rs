//! [`MemoryBus`]: hubs in one process as nodes of one cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{Bus, Dest, Inbox, NodeId};

/// A bus inside one process: every hub given a clone is a node. For
/// tests, and for running several hubs in one process.
#[derive(Clone, Default)]
pub struct MemoryBus {
    nodes: Arc<Mutex<HashMap<NodeId, Inbox>>>,
}

impl MemoryBus {
    /// A new, empty network.
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    /// Takes `node` off the network, as if its process had died.
    pub fn cut(&self, node: NodeId) {
        if let Ok(mut n) = self.nodes.lock() {
            n.remove(&node);
        }
    }
}

impl Bus for MemoryBus {
    fn send(&self, to: Dest, payload: Bytes) {
        let Ok(nodes) = self.nodes.lock() else {
            return;
        };
        match to {
            Dest::All => {
                for inbox in nodes.values() {
                    let _ = inbox.try_send(payload.clone());
                }
            }
            Dest::Node(n) => {
                if let Some(inbox) = nodes.get(&n) {
                    let _ = inbox.try_send(payload);
                }
            }
        }
    }

    fn attach(&self, node: NodeId, inbox: Inbox) {
        if let Ok(mut n) = self.nodes.lock() {
            n.insert(node, inbox);
        }
    }
}
