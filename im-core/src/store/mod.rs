//! The storage boundary: a synchronous trait the core calls only from its
//! blocking pool and its group-commit writer thread, never from an actor.
//!
//! Per-conversation `seq` numbers and `client_id` deduplication are the
//! store's job, inside the transaction that writes the message, so that
//! several server processes sharing one database can never hand out the same
//! number twice. [`Store::write_batch`] takes many messages from many
//! conversations plus cursor updates and commits them together (group
//! commit): a durable store turns it into one transaction.

mod memory;

pub use memory::MemoryStore;

use crate::error::StoreError;
use crate::error::StoreResult;
use crate::ids::{ConvId, Millis, RoomName, UserId};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Normalised name, unique.
    pub name: UserId,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// Suspended accounts cannot log in.
    pub suspended: bool,
    /// Creation time.
    pub created_at: Millis,
    /// When the user's last session ended, if ever.
    pub last_seen: Option<Millis>,
}

/// One device of a user: its token hash and last login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device name, unique per user.
    pub device: String,
    /// SHA-256 (hex) of the device's current token; `None` once revoked.
    pub token_hash: Option<String>,
    /// When the current token was issued.
    pub token_issued_at: Millis,
    /// Last successful login of this device.
    pub last_login: Millis,
}

/// The contact relation between two users, seen from neither side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Nothing.
    None,
    /// `by` asked the other user, who has not answered.
    Requested {
        /// Who asked.
        by: UserId,
    },
    /// Both agreed.
    Mutual,
}

/// A contact as seen by one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactState {
    /// Both agreed.
    Mutual,
    /// This user asked.
    PendingOut,
    /// The other user asked.
    PendingIn,
}

/// A message to append.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Target conversation.
    pub conv: ConvId,
    /// Sender.
    pub from: UserId,
    /// Sending device: its delivered cursor follows the message when it was
    /// just below it (and so does the sender's read cursor).
    pub device: String,
    /// Text, possibly empty.
    pub body: String,
    /// Idempotency key; (conv, from, client_id) is unique.
    pub client_id: Option<String>,
    /// Attached file id.
    pub attachment: Option<String>,
    /// Server time when the message was received; the stored `ts` is at
    /// least this and never below the conversation's previous `ts`.
    pub now: Millis,
}

/// Where an appended message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Assigned sequence number.
    pub seq: u64,
    /// Assigned timestamp.
    pub ts: Millis,
    /// True when the `client_id` had been seen: nothing new was written.
    pub duplicate: bool,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Conversation.
    pub conv: ConvId,
    /// Sequence number.
    pub seq: u64,
    /// Sender.
    pub from: UserId,
    /// Text.
    pub body: String,
    /// Timestamp.
    pub ts: Millis,
    /// Idempotency key.
    pub client_id: Option<String>,
    /// Attached file id.
    pub attachment: Option<String>,
}

/// Moves a device's delivered cursor and/or a user's read cursor forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorUpdate {
    /// The user.
    pub user: UserId,
    /// The device whose delivered cursor moves.
    pub device: String,
    /// The conversation.
    pub conv: ConvId,
    /// New delivered cursor (clamped to the last seq; never moves back).
    pub delivered: u64,
    /// Also move the user's read cursor there.
    pub read: bool,
}

/// What a cursor update changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CursorOutcome {
    /// The new read cursor when it moved forward.
    pub read_advanced_to: Option<u64>,
}

/// A conversation as listed for one user and device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSummary {
    /// Conversation.
    pub conv: ConvId,
    /// Highest seq (0 when empty).
    pub last_seq: u64,
    /// Time of last activity, for ordering (last message, else joining).
    pub activity: Millis,
    /// The user's read cursor.
    pub read_seq: u64,
    /// The device's delivered cursor.
    pub delivered_seq: u64,
    /// Messages from others after `read_seq`.
    pub unread: u64,
    /// The other member's read cursor (direct conversations only).
    pub peer_read_seq: Option<u64>,
    /// The newest message.
    pub last: Option<StoredMessage>,
}

/// A room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// Normalised name, unique among rooms.
    pub name: RoomName,
    /// What the room is about (at most 256 characters).
    pub topic: String,
    /// Public rooms are listed and open to anyone not banned.
    pub public: bool,
    /// Creation time.
    pub created_at: Millis,
}

/// A member's role in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomRole {
    /// Sets the topic, kicks and unbans; one per room.
    Owner,
    /// Everyone else.
    Member,
}

/// A member of a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomMember {
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: RoomRole,
    /// When they joined (the longest-standing member inherits ownership).
    pub joined_at: Millis,
}

/// A room in a listing, with its member count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomListing {
    /// The room.
    pub room: RoomRecord,
    /// Number of members.
    pub members: u64,
}

/// An uploaded (or uploading) file's metadata. The bytes live in a
/// [`crate::blob::BlobStore`] under `sha256` once finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// Opaque id (`f-` and 32 hex digits), server-generated.
    pub id: String,
    /// Who uploads it.
    pub uploader: UserId,
    /// Display name, 1 to 255 characters; never used as a path.
    pub name: String,
    /// MIME type, `type/subtype`.
    pub mime: String,
    /// Announced size in bytes.
    pub size: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Lowercase hex SHA-256, once finished.
    pub sha256: Option<String>,
    /// When the upload began.
    pub created_at: Millis,
}

fn no_files<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable(
        "this store does not support files".into(),
    ))
}

fn no_rooms<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable(
        "this store does not support rooms".into(),
    ))
}

/// Storage for everything the core keeps. Implementations are synchronous
/// and thread-safe; the core calls them only off the async threads.
pub trait Store: Send + Sync + 'static {
    // --- users ---
    /// Creates an account; `StoreError::Conflict` when the name is taken.
    fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Looks an account up.
    fn user(&self, name: &UserId) -> StoreResult<Option<UserRecord>>;
    /// Lists every account, by name.
    fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Replaces the password hash.
    fn set_password_hash(&self, name: &UserId, hash: &str) -> StoreResult<()>;
    /// Suspends or reinstates an account; `StoreError::NotFound` if unknown.
    fn set_suspended(&self, name: &UserId, suspended: bool) -> StoreResult<()>;
    /// Records when the user's last session ended.
    fn set_last_seen(&self, name: &UserId, at: Millis) -> StoreResult<()>;
    /// Every suspended account, by name. Polled by the hub so that a
    /// suspension made by another process (the admin CLI) closes live
    /// sessions; stores should answer it from an index.
    fn suspended_users(&self) -> StoreResult<Vec<UserId>> {
        Ok(self
            .list_users()?
            .into_iter()
            .filter(|u| u.suspended)
            .map(|u| u.name)
            .collect())
    }

    // --- devices and tokens ---
    /// Creates or updates a device with a new token hash (revoking the old
    /// one) and records a login at `now`.
    fn issue_token(
        &self,
        user: &UserId,
        device: &str,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<()>;
    /// Finds the device whose current token hashes to `token_hash`.
    fn device_by_token(&self, user: &UserId, token_hash: &str)
        -> StoreResult<Option<DeviceRecord>>;
    /// Records a token login of a device.
    fn touch_device(&self, user: &UserId, device: &str, now: Millis) -> StoreResult<()>;
    /// Lists a user's devices, by name.
    fn devices(&self, user: &UserId) -> StoreResult<Vec<DeviceRecord>>;
    /// Revokes one device's token; false when the device is unknown.
    fn revoke_device(&self, user: &UserId, device: &str) -> StoreResult<bool>;
    /// Revokes every token of the user except `keep`'s.
    fn revoke_all_devices(&self, user: &UserId, keep: Option<&str>) -> StoreResult<()>;

    // --- contacts and blocks ---
    /// The relation between two users.
    fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Relation>;
    /// Sets the relation between two users.
    fn set_relation(&self, a: &UserId, b: &UserId, rel: &Relation) -> StoreResult<()>;
    /// A user's contacts and pending requests, by peer name.
    fn contacts(&self, user: &UserId) -> StoreResult<Vec<(UserId, ContactState)>>;
    /// Blocks or unblocks `target` for `by`.
    fn set_block(&self, by: &UserId, target: &UserId, blocked: bool) -> StoreResult<()>;
    /// Users `by` has blocked, sorted.
    fn blocks(&self, by: &UserId) -> StoreResult<Vec<UserId>>;
    /// Users who have blocked `target`, sorted.
    fn blocked_by(&self, target: &UserId) -> StoreResult<Vec<UserId>>;

    // --- messages and cursors ---
    /// Appends messages and applies cursor updates in one transaction:
    /// assigns gapless per-conversation `seq`, deduplicates by
    /// (conv, from, client_id), adds both users of a direct conversation as
    /// members on its first message. Results are in input order.
    fn write_batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> StoreResult<(Vec<Appended>, Vec<CursorOutcome>)>;
    /// The original result of an earlier send with this `client_id`.
    fn find_client_id(
        &self,
        conv: &ConvId,
        from: &UserId,
        client_id: &str,
    ) -> StoreResult<Option<Appended>>;
    /// Up to `limit` messages with `seq > after`, ascending.
    fn messages_after(
        &self,
        conv: &ConvId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// The newest `limit` messages with `seq < before` (all when `None`), ascending.
    fn messages_before(
        &self,
        conv: &ConvId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// Whether `user` belongs to `conv` (direct conversations: once it has a message).
    fn is_member(&self, conv: &ConvId, user: &UserId) -> StoreResult<bool>;
    /// Every conversation of `user` with cursors for `device`, most recently
    /// active first.
    fn conversations(&self, user: &UserId, device: &str) -> StoreResult<Vec<ConvSummary>>;

    // --- rooms (default: unsupported, so a store can add them later) ---
    /// Creates a room with `owner` as its owner and first member;
    /// `StoreError::Conflict` when the name is taken.
    fn create_room(&self, room: &RoomRecord, owner: &UserId) -> StoreResult<()> {
        let _ = (room, owner);
        no_rooms()
    }
    /// Looks a room up.
    fn room(&self, name: &RoomName) -> StoreResult<Option<RoomRecord>> {
        let _ = name;
        no_rooms()
    }
    /// Public rooms whose name or topic contains `q` (case-insensitive; all
    /// without `q`), most members first, then by name, at most `limit`.
    fn list_rooms(&self, q: Option<&str>, limit: usize) -> StoreResult<Vec<RoomListing>> {
        let _ = (q, limit);
        no_rooms()
    }
    /// A room's members, longest-standing first.
    fn room_members(&self, name: &RoomName) -> StoreResult<Vec<RoomMember>> {
        let _ = name;
        no_rooms()
    }
    /// Adds `user` as a member whose cursors (read, and delivered for every
    /// device) start at the room's last seq, and uses up any invitation.
    /// False (and nothing changed) when already a member.
    fn join_room(&self, name: &RoomName, user: &UserId, now: Millis) -> StoreResult<bool> {
        let _ = (name, user, now);
        no_rooms()
    }
    /// Removes `user` from the room. When they were the owner and members
    /// remain, the longest-standing member becomes owner and is returned.
    fn leave_room(&self, name: &RoomName, user: &UserId) -> StoreResult<Option<UserId>> {
        let _ = (name, user);
        no_rooms()
    }
    /// Replaces the topic.
    fn set_room_topic(&self, name: &RoomName, topic: &str) -> StoreResult<()> {
        let _ = (name, topic);
        no_rooms()
    }
    /// Bans or unbans `user` from the room.
    fn set_room_ban(&self, name: &RoomName, user: &UserId, banned: bool) -> StoreResult<()> {
        let _ = (name, user, banned);
        no_rooms()
    }
    /// Whether `user` is banned from the room.
    fn is_room_banned(&self, name: &RoomName, user: &UserId) -> StoreResult<bool> {
        let _ = (name, user);
        no_rooms()
    }
    /// Records that `from` invited `user` (replacing an earlier invitation).
    fn add_room_invite(&self, name: &RoomName, user: &UserId, from: &UserId) -> StoreResult<()> {
        let _ = (name, user, from);
        no_rooms()
    }
    /// Invitations `user` has not used, by room name: (room, from).
    fn room_invites(&self, user: &UserId) -> StoreResult<Vec<(RoomName, UserId)>> {
        let _ = user;
        no_rooms()
    }

    // --- files (default: unsupported) ---
    /// Records a new upload.
    fn create_file(&self, file: &FileRecord) -> StoreResult<()> {
        let _ = file;
        no_files()
    }
    /// Looks a file up.
    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        let _ = id;
        no_files()
    }
    /// Records upload progress.
    fn set_file_received(&self, id: &str, received: u64) -> StoreResult<()> {
        let _ = (id, received);
        no_files()
    }
    /// Marks an upload finished with its hash.
    fn finish_file(&self, id: &str, sha256: &str) -> StoreResult<()> {
        let _ = (id, sha256);
        no_files()
    }
    /// Records that the file was sent to `conv` (its members may read it).
    fn attach_file(&self, id: &str, conv: &ConvId) -> StoreResult<()> {
        let _ = (id, conv);
        no_files()
    }
    /// The conversations the file was sent to.
    fn file_convs(&self, id: &str) -> StoreResult<Vec<ConvId>> {
        let _ = id;
        no_files()
    }
    /// Bytes a user's files take (announced sizes, unfinished ones included).
    fn user_file_bytes(&self, user: &UserId) -> StoreResult<u64> {
        let _ = user;
        no_files()
    }
    /// Unfinished uploads begun before `before`, and finished files begun
    /// before `before` that no conversation refers to: what cleanup removes.
    fn stale_files(&self, before: Millis) -> StoreResult<Vec<FileRecord>> {
        let _ = before;
        no_files()
    }
    /// Forgets a file's metadata.
    fn delete_file(&self, id: &str) -> StoreResult<()> {
        let _ = id;
        no_files()
    }
    /// Whether another file record still uses the blob `sha256`.
    fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let _ = sha256;
        no_files()
    }
    /// The user and device whose current token hashes to `token_hash`.
    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<(UserId, DeviceRecord)>> {
        let _ = token_hash;
        no_files()
    }
    /// A 32-byte secret kept by the store (created on first use), for
    /// signing download links so they stay valid across restarts and
    /// server processes.
    fn server_secret(&self) -> StoreResult<Vec<u8>> {
        no_files()
    }
}
