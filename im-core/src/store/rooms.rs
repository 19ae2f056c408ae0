//! Rooms: records, members and ownership, bans and invitations.

use crate::error::StoreResult;
use crate::ids::{Millis, RoomName, UserId};

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

/// Rooms, their members, bans and invitations.
pub trait RoomStore {
    /// Creates a room with `owner` as its owner and first member;
    /// `StoreError::Conflict` when the name is taken.
    fn create_room(&self, room: &RoomRecord, owner: &UserId) -> StoreResult<()>;
    /// Looks a room up.
    fn room(&self, name: &RoomName) -> StoreResult<Option<RoomRecord>>;
    /// Public rooms whose name or topic contains `q` (case-insensitive; all
    /// without `q`), most members first, then by name, at most `limit`.
    fn list_rooms(&self, q: Option<&str>, limit: usize) -> StoreResult<Vec<RoomListing>>;
    /// A room's members, longest-standing first.
    fn room_members(&self, name: &RoomName) -> StoreResult<Vec<RoomMember>>;
    /// Adds `user` as a member whose cursors (read, and delivered for every
    /// device) start at the room's last seq, and uses up any invitation;
    /// false (and nothing changed) when already a member or banned (checked
    /// in the same step, so a ban made meanwhile is never overtaken).
    fn join_room(&self, name: &RoomName, user: &UserId, now: Millis) -> StoreResult<bool>;
    /// Removes `user` from the room; when they were the owner and members
    /// remain, the longest-standing member becomes owner and is returned.
    fn leave_room(&self, name: &RoomName, user: &UserId) -> StoreResult<Option<UserId>>;
    /// Replaces the topic.
    fn set_room_topic(&self, name: &RoomName, topic: &str) -> StoreResult<()>;
    /// Bans or unbans `user` from the room.
    fn set_room_ban(&self, name: &RoomName, user: &UserId, banned: bool) -> StoreResult<()>;
    /// Whether `user` is banned from the room.
    fn is_room_banned(&self, name: &RoomName, user: &UserId) -> StoreResult<bool>;
    /// How many rooms `user` owns.
    fn rooms_owned(&self, user: &UserId) -> StoreResult<u64>;
    /// Records that `from` invited `user` (replacing an earlier invitation).
    fn add_room_invite(&self, name: &RoomName, user: &UserId, from: &UserId) -> StoreResult<()>;
    /// Invitations `user` has not used, by room name: (room, from).
    fn room_invites(&self, user: &UserId) -> StoreResult<Vec<(RoomName, UserId)>>;
}
