//! The wire protocol: typed client and server frames and their JSON codec.
//!
//! Transports never look inside a frame: they hand raw text to [`decode`]
//! and write the bytes of an [`Encoded`] frame. Everything about field names,
//! tags and validation of shape lives here.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod error;
pub mod ids;
pub(crate) mod names;

pub use error::{ErrorCode, ProtoError};
use ids::{ConvId, Millis, RoomName, SessionId, UserId};

/// What the server calls itself in `hello`.
pub const SERVER_NAME: &str = concat!("im-server/", env!("CARGO_PKG_VERSION"));

/// Protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest accepted string `id`, in characters.
pub const MAX_ID_CHARS: usize = 64;

/// The `id` a client attaches to a request, echoed in its reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id (fits in i64).
    Int(i64),
    /// A string id of at most [`MAX_ID_CHARS`] characters.
    Str(String),
}

/// A user's chosen presence status (`offline` is never chosen, only observed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Available.
    Online,
    /// Away from the device.
    Away,
    /// Do not disturb.
    Busy,
}

/// Every frame a client may send (docs/PROTOCOL.md). Unknown fields are ignored.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ClientFrame {
    /// Keep-alive; answered by `pong`.
    #[serde(rename = "ping")]
    Ping {},
    /// Create an account (does not log in).
    #[serde(rename = "register")]
    Register {
        /// Requested username (normalised by the server).
        username: String,
        /// Password, 8 to 72 bytes.
        password: String,
    },
    /// Log in with a password or a device token (exactly one).
    #[serde(rename = "login")]
    Login {
        /// Username.
        username: String,
        /// Password.
        password: Option<String>,
        /// Device token from an earlier login.
        token: Option<String>,
        /// Device name, default `default`.
        device: Option<String>,
    },
    /// List this user's devices.
    #[serde(rename = "devices")]
    Devices {},
    /// Revoke a device's token and close its sessions.
    #[serde(rename = "device.revoke")]
    DeviceRevoke {
        /// The device to revoke.
        device: String,
    },
    /// Change the password; other devices are signed out.
    #[serde(rename = "password.change")]
    PasswordChange {
        /// Current password.
        old: String,
        /// New password.
        new: String,
    },
    /// Revoke this device's token and close the connection.
    #[serde(rename = "logout")]
    Logout {},
    /// Ask someone to become a contact (or accept their request).
    #[serde(rename = "contact.add")]
    ContactAdd {
        /// The other user.
        user: String,
    },
    /// Accept a pending request.
    #[serde(rename = "contact.accept")]
    ContactAccept {
        /// The requester.
        user: String,
    },
    /// Decline a pending request.
    #[serde(rename = "contact.decline")]
    ContactDecline {
        /// The requester.
        user: String,
    },
    /// Remove a contact or cancel a request either way.
    #[serde(rename = "contact.remove")]
    ContactRemove {
        /// The other user.
        user: String,
    },
    /// Block a user.
    #[serde(rename = "contact.block")]
    ContactBlock {
        /// The user to block.
        user: String,
    },
    /// Unblock a user.
    #[serde(rename = "contact.unblock")]
    ContactUnblock {
        /// The user to unblock.
        user: String,
    },
    /// List blocked users.
    #[serde(rename = "contact.blocks")]
    ContactBlocks {},
    /// List contacts (same as the roster).
    #[serde(rename = "contact.list")]
    ContactList {},
    /// Set own status and note.
    #[serde(rename = "presence.set")]
    PresenceSet {
        /// New status.
        status: Status,
        /// Free text, at most 256 characters; absent clears it.
        note: Option<String>,
    },
    /// Send a message to a user or a room.
    #[serde(rename = "msg.send")]
    MsgSend {
        /// Recipient user (direct).
        to: Option<String>,
        /// Recipient room.
        room: Option<String>,
        /// Text.
        body: Option<String>,
        /// Idempotency key, at most 64 characters.
        client_id: Option<String>,
        /// An uploaded file id.
        attachment: Option<String>,
    },
    /// Typing notification.
    #[serde(rename = "typing")]
    Typing {
        /// Recipient user.
        to: Option<String>,
        /// Recipient room.
        room: Option<String>,
    },
    /// Acknowledge delivery (and optionally reading) up to `seq`.
    #[serde(rename = "msg.ack")]
    MsgAck {
        /// Conversation id.
        conv: String,
        /// Highest acknowledged sequence number.
        seq: u64,
        /// Also mark as read.
        read: Option<bool>,
    },
    /// Page through a conversation's history.
    #[serde(rename = "history")]
    History {
        /// Conversation id.
        conv: String,
        /// Only messages below this seq.
        before: Option<u64>,
        /// Page size (1..; above 200 served as 200).
        limit: Option<i64>,
    },
    /// List conversations with unread counts.
    #[serde(rename = "convs")]
    Convs {},
    /// Create a room.
    #[serde(rename = "room.create")]
    RoomCreate {
        /// Room name (normalised like usernames).
        name: String,
        /// Topic, at most 256 characters.
        topic: Option<String>,
        /// Listed and open to all (default true).
        public: Option<bool>,
    },
    /// Search public rooms.
    #[serde(rename = "room.list")]
    RoomList {
        /// Substring of name or topic.
        q: Option<String>,
    },
    /// Join a room.
    #[serde(rename = "room.join")]
    RoomJoin {
        /// Room name.
        name: String,
    },
    /// Leave a room.
    #[serde(rename = "room.leave")]
    RoomLeave {
        /// Room name.
        name: String,
    },
    /// Invite a user to a room.
    #[serde(rename = "room.invite")]
    RoomInvite {
        /// Room name.
        name: String,
        /// Invitee.
        user: String,
    },
    /// List unused invitations.
    #[serde(rename = "room.invites")]
    RoomInvites {},
    /// List a room's members.
    #[serde(rename = "room.members")]
    RoomMembers {
        /// Room name.
        name: String,
    },
    /// Set a room's topic (owner).
    #[serde(rename = "room.topic")]
    RoomTopic {
        /// Room name.
        name: String,
        /// New topic.
        topic: String,
    },
    /// Remove and ban a member (owner).
    #[serde(rename = "room.kick")]
    RoomKick {
        /// Room name.
        name: String,
        /// Member to remove.
        user: String,
    },
    /// Lift a ban (owner).
    #[serde(rename = "room.unban")]
    RoomUnban {
        /// Room name.
        name: String,
        /// Banned user.
        user: String,
    },
    /// Start an upload.
    #[serde(rename = "file.begin")]
    FileBegin {
        /// Display name, 1 to 255 characters.
        name: String,
        /// `type/subtype`, default `application/octet-stream`.
        mime: Option<String>,
        /// Size in bytes.
        size: u64,
    },
    /// Upload bytes at `offset`.
    #[serde(rename = "file.chunk")]
    FileChunk {
        /// File id.
        file: String,
        /// Where these bytes go: the bytes received so far.
        offset: u64,
        /// Standard base64, at most 32768 decoded bytes.
        data: String,
    },
    /// Where to resume an upload.
    #[serde(rename = "file.status")]
    FileStatus {
        /// File id.
        file: String,
    },
    /// Finish an upload.
    #[serde(rename = "file.end")]
    FileEnd {
        /// File id.
        file: String,
    },
    /// Read part of a file.
    #[serde(rename = "file.read")]
    FileRead {
        /// File id.
        file: String,
        /// Start (default 0).
        offset: Option<u64>,
        /// Bytes wanted (at most 32768 served).
        len: Option<u64>,
    },
    /// A signed download link.
    #[serde(rename = "file.url")]
    FileUrl {
        /// File id.
        file: String,
    },
}

impl ClientFrame {
    /// The frame's `type`, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Ping { .. } => "ping",
            ClientFrame::Register { .. } => "register",
            ClientFrame::Login { .. } => "login",
            ClientFrame::Devices { .. } => "devices",
            ClientFrame::DeviceRevoke { .. } => "device.revoke",
            ClientFrame::PasswordChange { .. } => "password.change",
            ClientFrame::Logout { .. } => "logout",
            ClientFrame::ContactAdd { .. } => "contact.add",
            ClientFrame::ContactAccept { .. } => "contact.accept",
            ClientFrame::ContactDecline { .. } => "contact.decline",
            ClientFrame::ContactRemove { .. } => "contact.remove",
            ClientFrame::ContactBlock { .. } => "contact.block",
            ClientFrame::ContactUnblock { .. } => "contact.unblock",
            ClientFrame::ContactBlocks { .. } => "contact.blocks",
            ClientFrame::ContactList { .. } => "contact.list",
            ClientFrame::PresenceSet { .. } => "presence.set",
            ClientFrame::MsgSend { .. } => "msg.send",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::MsgAck { .. } => "msg.ack",
            ClientFrame::History { .. } => "history",
            ClientFrame::Convs { .. } => "convs",
            ClientFrame::RoomCreate { .. } => "room.create",
            ClientFrame::RoomList { .. } => "room.list",
            ClientFrame::RoomJoin { .. } => "room.join",
            ClientFrame::RoomLeave { .. } => "room.leave",
            ClientFrame::RoomInvite { .. } => "room.invite",
            ClientFrame::RoomInvites { .. } => "room.invites",
            ClientFrame::RoomMembers { .. } => "room.members",
            ClientFrame::RoomTopic { .. } => "room.topic",
            ClientFrame::RoomKick { .. } => "room.kick",
            ClientFrame::RoomUnban { .. } => "room.unban",
            ClientFrame::FileBegin { .. } => "file.begin",
            ClientFrame::FileChunk { .. } => "file.chunk",
            ClientFrame::FileStatus { .. } => "file.status",
            ClientFrame::FileEnd { .. } => "file.end",
            ClientFrame::FileRead { .. } => "file.read",
            ClientFrame::FileUrl { .. } => "file.url",
        }
    }
}

impl ClientFrame {
    /// Whether the frame is accepted before login.
    pub fn allowed_before_login(&self) -> bool {
        matches!(
            self,
            ClientFrame::Ping {} | ClientFrame::Register { .. } | ClientFrame::Login { .. }
        )
    }
}

/// A decoded client request: the frame and the `id` to echo.
#[derive(Clone, Debug)]
pub struct Request {
    /// The client's id, if any.
    pub id: Option<RequestId>,
    /// The frame.
    pub frame: ClientFrame,
}

/// A frame that could not be decoded; the reply is `bad_request`.
#[derive(Clone, Debug)]
pub struct BadFrame {
    /// The `id`, when it could be read.
    pub id: Option<RequestId>,
    /// Why it was refused.
    pub message: String,
}

/// Decodes one client frame from its raw bytes (without line terminator).
///
/// Refuses invalid UTF-8, invalid JSON, duplicate keys at any depth,
/// non-objects, a bad `id`, an unknown `type` and missing or mistyped fields.
pub fn decode(raw: &[u8]) -> Result<Request, BadFrame> {
    let bad = |id: Option<RequestId>, message: String| BadFrame { id, message };
    let text =
        std::str::from_utf8(raw).map_err(|_| bad(None, "frame is not valid UTF-8".into()))?;
    let StrictValue(value) =
        serde_json::from_str(text).map_err(|e| bad(None, format!("invalid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad(None, "frame is not a JSON object".into()));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(RequestId::Int(i)),
            None => return Err(bad(None, "id must be a string or a 64-bit integer".into())),
        },
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => {
            Some(RequestId::Str(s.clone()))
        }
        Some(_) => {
            return Err(bad(
                None,
                "id must be a string of at most 64 characters or a 64-bit integer".into(),
            ))
        }
    };
    match map.get("type") {
        Some(Value::String(_)) => {}
        _ => return Err(bad(id, "frame has no string field `type`".into())),
    }
    match ClientFrame::deserialize(Value::Object(map)) {
        Ok(frame) => match frame.nul_field() {
            Some(field) => Err(bad(id, format!("`{field}` must not contain U+0000"))),
            None => Ok(Request { id, frame }),
        },
        Err(e) => {
            let m = e.to_string();
            let m = if m.starts_with("unknown variant") {
                "unknown frame type".to_owned()
            } else {
                m
            };
            Err(bad(id, m))
        }
    }
}

/// A JSON value parsed with duplicate keys refused at every depth.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(v) = access.next_value()?;
            if map.insert(key.clone(), v).is_some() {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
        }
        Ok(Value::Object(map))
    }
}

/// A server frame encoded once as JSON text, cheap to clone and share
/// between every recipient of a fan-out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded(Bytes);

impl Encoded {
    /// The JSON text as bytes (always valid UTF-8, no terminator).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        // Built only from serde_json output, which is UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// A frame encoded elsewhere (another node), as JSON text.
    pub(crate) fn from_text(s: String) -> Encoded {
        Encoded(Bytes::from(s))
    }

    /// The underlying shared buffer.
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for a real frame).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One entry of a roster or `contact.list`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ContactEntry {
    /// The other user.
    pub user: UserId,
    /// `mutual`, `pending_out` or `pending_in`.
    pub state: ContactStateName,
    /// Presence, only for mutual contacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceName>,
    /// Status note, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Last time seen online, for offline mutual contacts ever online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Millis>,
}

/// Contact state names on the wire.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ContactStateName {
    /// Both agreed.
    Mutual,
    /// I asked them.
    PendingOut,
    /// They asked me.
    PendingIn,
}

/// Presence names on the wire, `offline` included.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PresenceName {
    /// Available.
    Online,
    /// Away.
    Away,
    /// Busy.
    Busy,
    /// No session.
    Offline,
}

impl From<Status> for PresenceName {
    fn from(s: Status) -> PresenceName {
        match s {
            Status::Online => PresenceName::Online,
            Status::Away => PresenceName::Away,
            Status::Busy => PresenceName::Busy,
        }
    }
}

/// A message as clients see it (`msg` frames, history, replay, `convs.last`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MsgFrame {
    /// Conversation.
    pub conv: ConvId,
    /// Position in the conversation, from 1, gapless.
    pub seq: u64,
    /// Sender.
    pub from: UserId,
    /// Text (`""` when none).
    pub body: String,
    /// Server time, ms since epoch.
    pub ts: Millis,
    /// The sender's idempotency key, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The attached file, when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentMeta>,
}

/// One device in a `devices` reply.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceEntry {
    /// Device name.
    pub device: String,
    /// Last password or token login, ms.
    pub last_login: Millis,
    /// Whether a session of this device is connected.
    pub online: bool,
}

/// One entry of a `convs` reply.
#[derive(Clone, Debug, Serialize)]
pub struct ConvEntry {
    /// Conversation.
    pub conv: ConvId,
    /// Last message seq.
    pub last_seq: u64,
    /// The user's read cursor.
    pub read_seq: u64,
    /// Others' messages after `read_seq`.
    pub unread: u64,
    /// The last message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<ServerFrame>,
    /// How far the other member has read (direct conversations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_read_seq: Option<u64>,
}

/// One room of a `room.list` reply.
#[derive(Clone, Debug, Serialize)]
pub struct RoomEntry {
    /// Room name.
    pub name: RoomName,
    /// Topic.
    pub topic: String,
    /// Member count.
    pub members: u64,
    /// Members online now.
    pub online: u64,
}

/// One member of a `room.members` reply.
#[derive(Clone, Debug, Serialize)]
pub struct MemberEntry {
    /// The member.
    pub user: UserId,
    /// `owner` or `member`.
    pub role: &'static str,
    /// Whether they have a session.
    pub online: bool,
}

/// One invitation of a `room.invites` reply.
#[derive(Clone, Debug, Serialize)]
pub struct InviteEntry {
    /// Room name.
    pub room: RoomName,
    /// Who invited.
    pub from: UserId,
}

/// The result fields of an `ok` reply, flattened into it.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Reply {
    /// Nothing beyond `type` and `id`.
    Empty,
    /// `register`.
    Registered {
        /// Normalised username.
        user: UserId,
    },
    /// `login`.
    LoggedIn {
        /// Normalised username.
        user: UserId,
        /// This connection's id.
        session: SessionId,
        /// The device token.
        token: String,
    },
    /// `devices`.
    Devices {
        /// The user's devices.
        devices: Vec<DeviceEntry>,
    },
    /// `contact.list`.
    Contacts {
        /// Contacts, sorted by user.
        contacts: Vec<ContactEntry>,
    },
    /// `contact.blocks`.
    Users {
        /// Blocked users, sorted.
        users: Vec<UserId>,
    },
    /// `msg.send`.
    Sent {
        /// Conversation.
        conv: ConvId,
        /// Assigned seq.
        seq: u64,
        /// Server time.
        ts: Millis,
    },
    /// `history`.
    History {
        /// `msg` frames ascending by seq.
        messages: Vec<ServerFrame>,
        /// Whether older messages exist.
        more: bool,
    },
    /// `convs`.
    Convs {
        /// Conversations, most recently active first.
        convs: Vec<ConvEntry>,
    },
    /// `room.create`, `room.join`.
    Conv {
        /// The room's conversation id.
        conv: ConvId,
    },
    /// `room.list`.
    Rooms {
        /// Matching public rooms, most members first.
        rooms: Vec<RoomEntry>,
    },
    /// `room.members`.
    Members {
        /// Members, longest-standing first.
        members: Vec<MemberEntry>,
    },
    /// `room.invites`.
    Invites {
        /// Unused invitations.
        invites: Vec<InviteEntry>,
    },
    /// `file.begin`.
    FileBegun {
        /// The new file's id.
        file: String,
    },
    /// `file.status`.
    FileStatus {
        /// Bytes received.
        received: u64,
        /// Announced size.
        size: u64,
        /// Whether `file.end` succeeded.
        done: bool,
    },
    /// `file.end`.
    FileEnded {
        /// File id.
        file: String,
        /// Size.
        size: u64,
        /// Lowercase hex SHA-256.
        sha256: String,
    },
    /// `file.read`.
    FileData {
        /// Base64 of the bytes.
        data: String,
        /// Whether these reach the end of the file.
        eof: bool,
    },
    /// `file.url`.
    FileUrl {
        /// Path with signature.
        url: String,
        /// Expiry, ms since epoch.
        expires: i64,
    },
}

/// Every frame the server sends.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ServerFrame {
    /// First frame on every connection.
    #[serde(rename = "hello")]
    Hello {
        /// Protocol version.
        protocol: u32,
        /// `<name>/<version>`.
        server: String,
    },
    /// Success reply.
    #[serde(rename = "ok")]
    Ok {
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Result fields.
        #[serde(flatten)]
        result: Reply,
    },
    /// Failure reply, or a server-initiated error before a close.
    #[serde(rename = "error")]
    Error {
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable text.
        message: String,
    },
    /// Reply to `ping`.
    #[serde(rename = "pong")]
    Pong {
        /// Echoed request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Contact list with presence, first frame after login.
    #[serde(rename = "roster")]
    Roster {
        /// Contacts sorted by user.
        contacts: Vec<ContactEntry>,
    },
    /// End of the login replay.
    #[serde(rename = "synced")]
    Synced {},
    /// The server is about to close the connection, and why (one of
    /// `shutdown`, `idle_timeout`, `login_timeout`, `too_slow`,
    /// `too_many_errors`, `rate_limited`, `server_full`, `device_revoked`,
    /// `password_changed`).
    #[serde(rename = "closing")]
    Closing {
        /// Why.
        reason: &'static str,
    },
    /// The replay of a conversation was cut.
    #[serde(rename = "gap")]
    Gap {
        /// Conversation.
        conv: ConvId,
        /// First replayed seq, or last seq + 1 when none.
        before: u64,
    },
    /// A message.
    #[serde(rename = "msg")]
    Msg(MsgFrame),
    /// A contact's presence.
    #[serde(rename = "presence")]
    Presence {
        /// Whose.
        user: UserId,
        /// Status.
        status: PresenceName,
        /// Note, when set.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// For `offline`: when last seen.
        #[serde(skip_serializing_if = "Option::is_none")]
        last_seen: Option<Millis>,
    },
    /// Someone asks to become a contact.
    #[serde(rename = "contact.request")]
    ContactRequest {
        /// The requester.
        from: UserId,
    },
    /// A contact became mutual.
    #[serde(rename = "contact.added")]
    ContactAdded {
        /// The other user.
        user: UserId,
    },
    /// A contact or request ended.
    #[serde(rename = "contact.removed")]
    ContactRemoved {
        /// The other user.
        user: UserId,
    },
    /// Read receipt.
    #[serde(rename = "receipt")]
    Receipt {
        /// Conversation.
        conv: ConvId,
        /// Who read.
        user: UserId,
        /// Up to which seq.
        seq: u64,
        /// Always true for read receipts.
        read: bool,
    },
    /// Someone joined a room.
    #[serde(rename = "room.joined")]
    RoomJoined {
        /// Room name.
        room: RoomName,
        /// Who.
        user: UserId,
    },
    /// Someone left a room or was kicked.
    #[serde(rename = "room.left")]
    RoomLeft {
        /// Room name.
        room: RoomName,
        /// Who.
        user: UserId,
        /// True when kicked (and banned) by the owner.
        #[serde(skip_serializing_if = "Option::is_none")]
        kicked: Option<bool>,
    },
    /// An invitation.
    #[serde(rename = "room.invited")]
    RoomInvited {
        /// Room name.
        room: RoomName,
        /// Who invited.
        from: UserId,
    },
    /// A room's topic changed.
    #[serde(rename = "room.topic")]
    RoomTopic {
        /// Room name.
        room: RoomName,
        /// The new topic.
        topic: String,
    },
    /// Someone is typing.
    #[serde(rename = "typing")]
    Typing {
        /// Conversation.
        conv: ConvId,
        /// Who.
        user: UserId,
    },
}

impl ClientFrame {
    /// The first field the server would store (bodies, notes, topics,
    /// names, `client_id`, file names) that contains U+0000: such a frame
    /// is a `bad_request`, refused before anything else looks at it.
    pub fn nul_field(&self) -> Option<&'static str> {
        let has = |s: &str| s.contains('\0');
        let some = |s: &Option<String>| s.as_deref().is_some_and(has);
        match self {
            ClientFrame::Register { username, .. } if has(username) => Some("username"),
            ClientFrame::Login { username, .. } if has(username) => Some("username"),
            ClientFrame::Login { device, .. } if some(device) => Some("device"),
            ClientFrame::PresenceSet { note, .. } if some(note) => Some("note"),
            ClientFrame::MsgSend { body, .. } if some(body) => Some("body"),
            ClientFrame::MsgSend { client_id, .. } if some(client_id) => Some("client_id"),
            ClientFrame::RoomCreate { name, .. } if has(name) => Some("name"),
            ClientFrame::RoomCreate { topic, .. } if some(topic) => Some("topic"),
            ClientFrame::RoomTopic { topic, .. } if has(topic) => Some("topic"),
            ClientFrame::FileBegin { name, .. } if has(name) => Some("name"),
            ClientFrame::FileBegin { mime, .. } if some(mime) => Some("mime"),
            _ => None,
        }
    }
}

impl ServerFrame {
    /// `presence` of a user with a live session.
    pub fn online(user: UserId, status: Status, note: Option<String>) -> ServerFrame {
        ServerFrame::Presence {
            user,
            status: status.into(),
            note,
            last_seen: None,
        }
    }

    /// `presence` of a user whose last session ended at `last_seen` (never
    /// online: `None`).
    pub fn offline(user: UserId, last_seen: Option<Millis>) -> ServerFrame {
        ServerFrame::Presence {
            user,
            status: PresenceName::Offline,
            note: None,
            last_seen,
        }
    }

    /// A success reply.
    pub fn ok(id: Option<RequestId>, result: Reply) -> ServerFrame {
        ServerFrame::Ok { id, result }
    }

    /// A failure reply.
    pub fn error(id: Option<RequestId>, e: ProtoError) -> ServerFrame {
        ServerFrame::Error {
            id,
            code: e.code,
            message: e.message,
        }
    }

    /// Encodes the frame as JSON once.
    pub fn encode(&self) -> Encoded {
        match serde_json::to_vec(self) {
            Ok(v) => Encoded(Bytes::from(v)),
            Err(e) => {
                // Unreachable with these types (string keys only); never panic on it.
                tracing::error!(error = %e, "failed to encode a server frame");
                Encoded(Bytes::from_static(
                    br#"{"type":"error","code":"internal","message":"encoding failed"}"#,
                ))
            }
        }
    }
}

impl From<ErrorCode> for ProtoError {
    fn from(code: ErrorCode) -> ProtoError {
        ProtoError::new(code, format!("{code:?}"))
    }
}

/// What receivers of a message see of its attachment.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AttachmentMeta {
    /// File id.
    pub file: String,
    /// Display name.
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &ServerFrame) -> Value {
        serde_json::from_slice(f.encode().as_bytes()).unwrap()
    }

    #[test]
    fn decode_accepts_and_refuses() {
        let r = decode(br#"{"type":"ping","id":7}"#).unwrap();
        assert_eq!(r.id, Some(RequestId::Int(7)));
        assert!(matches!(r.frame, ClientFrame::Ping {}));
        let r = decode(br#"{"type":"contact.add","user":"bob","extra":1,"id":"x"}"#).unwrap();
        assert!(matches!(r.frame, ClientFrame::ContactAdd { .. }));
        assert!(decode(br#"{"type":"ping","type":"ping"}"#).is_err());
        assert!(decode(br#"{"type":"ping","x":{"a":1,"a":2}}"#).is_err());
        assert!(decode(br#"[1]"#).is_err());
        assert!(decode(b"\xff").is_err());
        let e = decode(br#"{"type":"nope","id":3}"#).unwrap_err();
        assert_eq!(e.id, Some(RequestId::Int(3)));
        let e = decode(br#"{"type":"msg.ack","conv":"x","seq":"1","id":"a"}"#).unwrap_err();
        assert_eq!(e.id, Some(RequestId::Str("a".into())));
        assert!(decode(br#"{"type":"ping","id":1.5}"#).is_err());
        assert!(decode(br#"{"type":"ping","id":18446744073709551615}"#).is_err());
        assert!(decode(br#"{"type":"contact.add","user":null}"#).is_err());
        let r = decode(br#"{"type":"login","username":"a","password":null,"token":"t"}"#).unwrap();
        assert!(matches!(r.frame, ClientFrame::Login { password: None, .. }));
    }

    #[test]
    fn encode_flattens_reply() {
        let v = enc(&ServerFrame::ok(Some(RequestId::Int(1)), Reply::Empty));
        assert_eq!(v, serde_json::json!({"type":"ok","id":1}));
        let u = UserId::parse("alice").unwrap();
        let v = enc(&ServerFrame::ok(
            None,
            Reply::Registered { user: u.clone() },
        ));
        assert_eq!(v, serde_json::json!({"type":"ok","user":"alice"}));
        let m = ServerFrame::Msg(MsgFrame {
            conv: ConvId::Room(ids::RoomName::parse("rust").unwrap()),
            seq: 1,
            from: u,
            body: String::new(),
            ts: 5,
            client_id: None,
            attachment: None,
        });
        assert_eq!(
            enc(&m),
            serde_json::json!({"type":"msg","conv":"room:rust","seq":1,"from":"alice","body":"","ts":5})
        );
    }
}
