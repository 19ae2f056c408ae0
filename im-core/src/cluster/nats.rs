//! [`NatsBus`]: the nodes of a cluster talk through NATS core subjects,
//! namespaced by the cluster's name so several clusters (or test runs)
//! share one NATS server: `<name>.all` for what every node hears,
//! `<name>.node.<id>` for one node.

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Bus, Dest, Inbox, NodeId};

/// Payloads waiting to be handed to the NATS client.
const OUTBOX: usize = 65_536;

/// Why the bus could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The cluster name cannot be a NATS subject token.
    #[error("cluster name {0:?}: use 1 to 64 characters of A-Z a-z 0-9 _ -")]
    BadName(String),
    /// No connection to NATS.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        #[source]
        source: async_nats::ConnectError,
    },
}

/// A [`Bus`] over a NATS connection.
pub struct NatsBus {
    client: async_nats::Client,
    prefix: String,
    out: mpsc::Sender<(String, Bytes)>,
}

impl NatsBus {
    /// Connects to the NATS server at `url` for the cluster `name`. Call it
    /// inside the runtime the hub will run on. The client reconnects by
    /// itself when NATS restarts; what is sent meanwhile is lost (live
    /// deliveries replay at the next login, control catches up with the
    /// next heartbeat).
    pub async fn connect(url: &str, name: &str) -> Result<NatsBus, NatsError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(NatsError::BadName(name.to_owned()));
        }
        let client = async_nats::ConnectOptions::new()
            .name(format!("im-node-{name}"))
            .connect(url)
            .await
            .map_err(|source| NatsError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let (out, mut rx) = mpsc::channel::<(String, Bytes)>(OUTBOX);
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some((subject, payload)) = rx.recv().await {
                if let Err(e) = publisher.publish(subject, payload).await {
                    tracing::warn!(error = %e, "bus message not published");
                }
            }
        });
        Ok(NatsBus {
            client,
            prefix: name.to_owned(),
            out,
        })
    }

    fn subject(&self, to: Dest) -> String {
        match to {
            Dest::All => format!("{}.all", self.prefix),
            Dest::Node(n) => format!("{}.node.{n}", self.prefix),
        }
    }
}

impl Bus for NatsBus {
    fn send(&self, to: Dest, payload: Bytes) {
        if self.out.try_send((self.subject(to), payload)).is_err() {
            tracing::warn!("bus outbox full: message dropped");
        }
    }

    fn attach(&self, node: NodeId, inbox: Inbox) {
        let client = self.client.clone();
        let (all, mine) = (self.subject(Dest::All), self.subject(Dest::Node(node)));
        tokio::spawn(async move {
            let subs = futures_util::try_join!(client.subscribe(all), client.subscribe(mine));
            let (all, mine) = match subs {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot subscribe to the cluster's subjects");
                    return;
                }
            };
            let mut both = futures_util::stream::select(all, mine);
            while let Some(m) = both.next().await {
                if inbox.send(m.payload).await.is_err() {
                    return;
                }
            }
        });
    }
}
