//! An in-memory transport on the public boundary: no sockets, no framing.
//! The core's own actor tests use it; integrators can use it to test code
//! that sits on top of the hub.

use crate::hub::Hub;
use crate::transport::{Inbound, OutboundRx, Outgoing, PeerInfo, SessionClosed};

/// One client connected to a hub in memory.
#[derive(Debug)]
pub struct MemoryClient {
    inbound: Option<Inbound>,
    outbound: OutboundRx,
}

impl MemoryClient {
    /// Connects a new client; its first frame is `hello`.
    pub fn connect(hub: &Hub) -> MemoryClient {
        let c = hub.connect(PeerInfo {
            addr: None,
            transport: "memory",
        });
        MemoryClient {
            inbound: Some(c.inbound),
            outbound: c.outbound,
        }
    }

    /// Sends one frame of JSON text.
    pub async fn send(&self, json: &str) -> Result<(), SessionClosed> {
        match &self.inbound {
            Some(i) => i.frame(json.as_bytes()).await,
            None => Err(SessionClosed),
        }
    }

    /// The next server frame as JSON text; `None` once the server closed
    /// the connection.
    pub async fn recv(&mut self) -> Option<String> {
        match self.outbound.recv().await? {
            Outgoing::Frame(f) => Some(f.as_str().to_owned()),
            Outgoing::Close(_) => {
                self.inbound = None;
                None
            }
        }
    }

    /// Hangs up, as a client closing its socket.
    pub fn disconnect(&mut self) {
        self.inbound = None;
    }
}
