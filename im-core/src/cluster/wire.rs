//! What nodes say to each other: one JSON object per bus payload, tagged
//! by `t`, with the sending node in `from`. Names travel as strings and
//! are parsed again on arrival; a payload that does not parse is dropped
//! (and counted in the log), never trusted.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::NodeId;
use crate::protocol::Status;

/// Most users named in one payload (snapshots, fan-out lists), so a
/// payload stays well under NATS's default 1 MiB limit.
pub(crate) const PART: usize = 2000;

/// One payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// What it says.
    #[serde(flatten)]
    pub msg: Wire,
}

/// A user's presence on one node: online with a status and note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Online {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The messages.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Wire {
    /// "I am alive" (every second), with the newest change-log position
    /// the sender knows, so a node that missed a [`Wire::Changes`] catches
    /// up at the next beat.
    Heartbeat {
        change_id: u64,
        /// The sender's presence version (see [`Wire::Presence`]).
        #[serde(default)]
        presence: u64,
    },
    /// "Tell me who is online on your node": answered with a
    /// [`Wire::Snapshot`] to the asker.
    Hello,
    /// Everyone online on the sending node, in parts of at most
    /// [`PART`] users; `done` on the last.
    Snapshot {
        users: Vec<(String, Online)>,
        done: bool,
        /// The presence version this snapshot is as of.
        #[serde(default)]
        v: u64,
    },
    /// A user came online on the sending node, changed status there, or
    /// (`None`) has no session there any more.
    Presence {
        user: String,
        online: Option<Online>,
        /// The sender's presence version after this change: one more than
        /// the last; a receiver that sees a jump (a lost or reordered
        /// message), or a heartbeat with another version, asks for a
        /// snapshot again.
        #[serde(default)]
        v: u64,
    },
    /// An event for these users' sessions on the receiving node.
    ToUsers { users: Vec<String>, event: Event },
    /// The change log moved: read it now (and close the sessions of a
    /// user just suspended). With `ack`, answer with [`Wire::Ack`] once
    /// applied.
    Changes {
        ack: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suspended: Option<String>,
    },
    /// A [`Wire::Changes`] was applied.
    Ack { id: u64 },
    /// The sending node is shutting down.
    Bye,
}

/// An event for a user's sessions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A stored message (`frame` is the encoded `msg`).
    Deliver {
        conv: String,
        seq: u64,
        frame: String,
    },
    /// Any other frame (receipts, typing, contact events).
    Emit { frame: String },
    /// A contact's presence frame; shown only to mutual contacts.
    Presence { from: String, frame: String },
}

impl Envelope {
    /// The JSON payload.
    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a payload.
    pub fn decode(b: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(b).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_survive_the_wire() {
        let e = Envelope {
            from: 7,
            msg: Wire::ToUsers {
                users: vec!["bob".into()],
                event: Event::Deliver {
                    conv: "dm:alice:bob".into(),
                    seq: 3,
                    frame: r#"{"type":"msg"}"#.into(),
                },
            },
        };
        let back = Envelope::decode(&e.encode()).expect("decodes");
        assert_eq!(back.from, 7);
        let Wire::ToUsers { users, event } = back.msg else {
            panic!("{back:?}");
        };
        assert_eq!(users, ["bob"]);
        assert!(matches!(event, Event::Deliver { seq: 3, .. }));
        assert!(Envelope::decode(b"{\"from\":1,\"t\":\"nope\"}").is_none());
    }
}
