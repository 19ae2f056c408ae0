//! Typed identifiers: users, conversations, sessions, devices.
//!
//! Every name that comes from a client goes through [`super::names`] before it
//! becomes one of these, so holding a [`UserId`] means holding a normalised,
//! valid username.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::names;

/// A normalised, valid username (NFKC, lowercase, `[a-z0-9_.-]{3,32}`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Normalises and validates client input; `None` when it is not a valid name.
    pub fn parse(input: &str) -> Option<UserId> {
        names::normalize(input).map(|n| UserId(n.into()))
    }

    /// Wraps a name read back from the store, which only ever holds valid names.
    pub fn from_stored(name: &str) -> UserId {
        UserId(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A normalised, valid room name (same rules as usernames, separate namespace).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RoomName(Arc<str>);

impl RoomName {
    /// Normalises and validates client input.
    pub fn parse(input: &str) -> Option<RoomName> {
        names::normalize(input).map(|n| RoomName(n.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RoomName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl RoomName {
    /// Wraps a name read back from the store, which only ever holds valid names.
    pub fn from_stored(name: &str) -> RoomName {
        RoomName(name.into())
    }
}

/// A conversation: a direct one between two users, or a room.
///
/// The wire form is `dm:<a>:<b>` with `a < b` in byte order, or `room:<name>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum ConvId {
    /// Direct conversation; invariant: `.0 < .1`.
    Direct(UserId, UserId),
    /// A room.
    Room(RoomName),
}

impl ConvId {
    /// The direct conversation between two distinct users.
    pub fn direct(a: &UserId, b: &UserId) -> ConvId {
        if a < b {
            ConvId::Direct(a.clone(), b.clone())
        } else {
            ConvId::Direct(b.clone(), a.clone())
        }
    }

    /// Parses the wire form; `None` when malformed (including a `dm:` whose
    /// names are not valid, equal or out of order).
    pub fn parse(s: &str) -> Option<ConvId> {
        if let Some(rest) = s.strip_prefix("dm:") {
            let (a, b) = rest.split_once(':')?;
            let (a, b) = (UserId::parse(a)?, UserId::parse(b)?);
            (a < b).then_some(ConvId::Direct(a, b))
        } else {
            s.strip_prefix("room:")
                .and_then(RoomName::parse)
                .map(ConvId::Room)
        }
    }

    /// The other member of a direct conversation, when `me` is one of its two.
    pub fn peer_of(&self, me: &UserId) -> Option<&UserId> {
        match self {
            ConvId::Direct(a, b) if a == me => Some(b),
            ConvId::Direct(a, b) if b == me => Some(a),
            _ => None,
        }
    }

    /// Whether this is a direct conversation.
    pub fn is_direct(&self) -> bool {
        matches!(self, ConvId::Direct(..))
    }
}

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvId::Direct(a, b) => write!(f, "dm:{a}:{b}"),
            ConvId::Room(r) => write!(f, "room:{}", r.as_str()),
        }
    }
}

impl Serialize for ConvId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Identifies one connection for its whole life; unique within a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s-{:x}", self.0)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current wall-clock time in milliseconds since the epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_ids_round_trip_and_order() {
        let a = UserId::parse("Bob").unwrap();
        let b = UserId::parse("alice").unwrap();
        let c = ConvId::direct(&a, &b);
        assert_eq!(c.to_string(), "dm:alice:bob");
        assert_eq!(ConvId::parse("dm:alice:bob"), Some(c.clone()));
        assert_eq!(ConvId::parse("dm:bob:alice"), None);
        assert_eq!(ConvId::parse("dm:bob:bob"), None);
        assert_eq!(c.peer_of(&a), Some(&b));
        assert_eq!(ConvId::parse("room:Rust").unwrap().to_string(), "room:rust");
        assert_eq!(ConvId::parse("nope"), None);
    }
}
