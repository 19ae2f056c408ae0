//! [`RoomStore`](im_core::store::RoomStore), written once for every
//! backend: rooms, members and ownership, bans and invitations. Joining and
//! leaving also change the room conversation's members and cursors, under
//! the conversation's lock ([`Db::lock_conv`]) as `write_batch` takes it.

use diesel::sql_types::{BigInt, Bool, Text};
use diesel::QueryableByName;

use im_core::error::{StoreError, StoreResult};
use im_core::ids::{ConvId, Millis, RoomName, UserId};
use im_core::store::{RoomListing, RoomMember, RoomRecord, RoomRole};

use crate::accounts::{changed, conflict_or};
use crate::db::Db;
use crate::error::DbError;
use crate::sql::{sql, statements, Conn, Exec, I64Row, Reads};

/// What the room statements need of a connection: the rows they read.
pub(crate) trait RoomsConn:
    Conn<
    Backend: Reads<RoomRow>
                 + Reads<RoomListRow>
                 + Reads<MemberRow>
                 + Reads<PosRow>
                 + Reads<InviteRow>
                 + Reads<I64Row>,
>
{
}

impl<C> RoomsConn for C where
    C: Conn<
        Backend: Reads<RoomRow>
                     + Reads<RoomListRow>
                     + Reads<MemberRow>
                     + Reads<PosRow>
                     + Reads<InviteRow>
                     + Reads<I64Row>,
    >
{
}

/// A `rooms` row.
#[derive(QueryableByName)]
pub(crate) struct RoomRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    topic: String,
    #[diesel(sql_type = Bool)]
    public: bool,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
}

impl From<RoomRow> for RoomRecord {
    fn from(r: RoomRow) -> RoomRecord {
        RoomRecord {
            name: RoomName::from_stored(&r.name),
            topic: r.topic,
            public: r.public,
            created_at: r.created_at,
        }
    }
}

/// A public room with its member count.
#[derive(QueryableByName)]
pub(crate) struct RoomListRow {
    #[diesel(embed)]
    room: RoomRow,
    #[diesel(sql_type = BigInt)]
    members: i64,
}

/// A `room_members` row.
#[derive(QueryableByName)]
pub(crate) struct MemberRow {
    #[diesel(sql_type = Text)]
    user_name: String,
    #[diesel(sql_type = Bool)]
    owner: bool,
    #[diesel(sql_type = BigInt)]
    joined_at: i64,
}

impl From<MemberRow> for RoomMember {
    fn from(r: MemberRow) -> RoomMember {
        RoomMember {
            user: UserId::from_stored(&r.user_name),
            role: if r.owner {
                RoomRole::Owner
            } else {
                RoomRole::Member
            },
            joined_at: r.joined_at,
        }
    }
}

/// A member's place in joining order (`pos`), name and role.
#[derive(QueryableByName)]
pub(crate) struct PosRow {
    #[diesel(sql_type = BigInt)]
    pos: i64,
    #[diesel(sql_type = Text)]
    user_name: String,
    #[diesel(sql_type = Bool)]
    owner: bool,
}

/// A `room_invites` row of one invitee.
#[derive(QueryableByName)]
pub(crate) struct InviteRow {
    #[diesel(sql_type = Text)]
    room: String,
    #[diesel(sql_type = Text)]
    from_user: String,
}

statements! {
    /// Parameter: name.
    RoomCount = "SELECT COUNT(*) AS v FROM rooms WHERE name = ?";
    /// A no-op write that locks the room's row until the transaction
    /// ends, so membership changes and bans of one room take turns
    /// (PostgreSQL; on SQLite the write transaction already excludes
    /// every other writer). Parameter: name.
    LockRoom = "UPDATE rooms SET public = public WHERE name = ?";
    /// Parameters: name, topic, public, created_at.
    InsertRoom = "INSERT INTO rooms (name, topic, public, created_at) VALUES (?, ?, ?, ?)";
    /// Parameters: room, user, owner, joined_at.
    InsertMember = "INSERT INTO room_members (room, user_name, owner, joined_at) \
        VALUES (?, ?, ?, ?)";
    /// A room's conversation row, created or given the room's creation time
    /// as its activity. Parameters: name, created_at.
    CreateRoomConv = "INSERT INTO conversations (name, activity) VALUES (?, ?) \
        ON CONFLICT (name) DO UPDATE SET activity = excluded.activity";
    /// A room's conversation row when missing. Parameter: name.
    EnsureConv = "INSERT INTO conversations (name) VALUES (?) ON CONFLICT (name) DO NOTHING";
    /// Makes a user a member whose cursors start at a seq. Parameters:
    /// conv_id, user, read_seq (raised to it), joined_seq.
    JoinConv = "INSERT INTO conv_users (conv_id, user_name, member, read_seq, joined_seq) \
        VALUES (?, ?, TRUE, ?, ?) ON CONFLICT (conv_id, user_name) DO UPDATE SET \
        member = TRUE, joined_seq = excluded.joined_seq, \
        read_seq = CASE WHEN conv_users.read_seq > excluded.read_seq \
        THEN conv_users.read_seq ELSE excluded.read_seq END";
    /// Parameters: FALSE, 0, conv_id, user.
    LeaveConv = "UPDATE conv_users SET member = ?, joined_seq = ? \
        WHERE conv_id = ? AND user_name = ?";
    /// Parameter: name.
    SelectRoom = "SELECT name, topic, public, created_at FROM rooms WHERE name = ?";
    /// Public rooms with their member counts.
    PublicRooms = "SELECT r.name, r.topic, r.public, r.created_at, \
        (SELECT COUNT(*) FROM room_members m WHERE m.room = r.name) AS members \
        FROM rooms r WHERE r.public";
    /// Parameter: room.
    Members = "SELECT user_name, owner, joined_at FROM room_members WHERE room = ? \
        ORDER BY pos";
    /// Parameters: room, user.
    Member = "SELECT pos, user_name, owner FROM room_members \
        WHERE room = ? AND user_name = ? LIMIT 1";
    /// The longest-standing member. Parameter: room.
    FirstMember = "SELECT pos, user_name, owner FROM room_members WHERE room = ? \
        ORDER BY pos LIMIT 1";
    /// Parameter: pos.
    DeleteMember = "DELETE FROM room_members WHERE pos = ?";
    /// Parameters: owner, pos.
    SetOwner = "UPDATE room_members SET owner = ? WHERE pos = ?";
    /// Parameters: invitee, room.
    DeleteInvite = "DELETE FROM room_invites WHERE user_name = ? AND room = ?";
    /// Parameters: invitee, room, inviter.
    UpsertInvite = "INSERT INTO room_invites (user_name, room, from_user) VALUES (?, ?, ?) \
        ON CONFLICT (user_name, room) DO UPDATE SET from_user = excluded.from_user";
    /// Parameter: invitee.
    Invites = "SELECT room, from_user FROM room_invites WHERE user_name = ? ORDER BY room";
    /// Parameters: topic, name.
    SetTopic = "UPDATE rooms SET topic = ? WHERE name = ?";
    /// Parameters: room, user.
    InsertBan = "INSERT INTO room_bans (room, user_name) VALUES (?, ?) ON CONFLICT DO NOTHING";
    /// Parameters: room, user.
    DeleteBan = "DELETE FROM room_bans WHERE room = ? AND user_name = ?";
    /// Parameters: room, user.
    BanCount = "SELECT COUNT(*) AS v FROM room_bans WHERE room = ? AND user_name = ?";
    /// Parameter: user.
    OwnedCount = "SELECT COUNT(*) AS v FROM room_members WHERE user_name = ? AND owner";
}

/// Whether the room exists.
fn room_exists(c: &mut impl RoomsConn, name: &str) -> Result<bool, DbError> {
    let n = sql::<RoomCount>()
        .bind::<Text, _>(name)
        .row::<I64Row, _>(c)?;
    Ok(n.is_some_and(|r| r.v > 0))
}

/// Runs `f` in a write transaction holding the room's row, if the room
/// exists (`None` if not): a join and a ban of one room never interleave.
fn in_room<D: Db, T>(
    db: &D,
    room: &str,
    f: impl FnOnce(&mut D::Conn) -> Result<T, DbError>,
) -> Result<Option<T>, DbError> {
    db.txn(|c| {
        if sql::<LockRoom>().bind::<Text, _>(room).run(c)? == 0 {
            return Ok(None);
        }
        f(c).map(Some)
    })
}

/// Makes `user` a member of the room conversation `conv` (locked as
/// `write_batch` locks it), with cursors starting at its last seq (`at_last`)
/// or at 0.
fn join_conv<D: Db>(
    c: &mut D::Conn,
    conv: &str,
    user: &UserId,
    at_last: bool,
) -> Result<(), DbError> {
    let (id, last) =
        D::lock_conv(c, conv)?.ok_or_else(|| DbError::Corrupt(format!("{conv} vanished")))?;
    let start = if at_last { last } else { 0 };
    sql::<JoinConv>()
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(user.as_str())
        .bind::<BigInt, _>(start)
        .bind::<BigInt, _>(start)
        .run(c)?;
    Ok(())
}

/// Creates a room with `owner` as owner and first member; `Conflict` when
/// the name is taken.
pub(crate) fn create_room<D: Db>(db: &D, room: &RoomRecord, owner: &UserId) -> StoreResult<()> {
    let name = room.name.as_str();
    let conv = ConvId::Room(room.name.clone()).to_string();
    let created = db.txn(|c| {
        if room_exists(c, name)? {
            return Ok(false);
        }
        sql::<InsertRoom>()
            .bind::<Text, _>(name)
            .bind::<Text, _>(room.topic.as_str())
            .bind::<Bool, _>(room.public)
            .bind::<BigInt, _>(room.created_at)
            .run(c)?;
        sql::<InsertMember>()
            .bind::<Text, _>(name)
            .bind::<Text, _>(owner.as_str())
            .bind::<Bool, _>(true)
            .bind::<BigInt, _>(room.created_at)
            .run(c)?;
        sql::<CreateRoomConv>()
            .bind::<Text, _>(conv.as_str())
            .bind::<BigInt, _>(room.created_at)
            .run(c)?;
        join_conv::<D>(c, &conv, owner, false)?;
        Ok(true)
    });
    match created.map_err(conflict_or)? {
        true => Ok(()),
        false => Err(StoreError::Conflict),
    }
}

/// Looks a room up.
pub(crate) fn room(db: &impl Db, name: &RoomName) -> StoreResult<Option<RoomRecord>> {
    let row = db.read(|c| {
        Ok(sql::<SelectRoom>()
            .bind::<Text, _>(name.as_str())
            .row::<RoomRow, _>(c)?)
    })?;
    Ok(row.map(RoomRecord::from))
}

/// Public rooms matching `q`, most members first, then by name.
pub(crate) fn list_rooms(
    db: &impl Db,
    q: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<RoomListing>> {
    let rows = db.read(|c| Ok(sql::<PublicRooms>().rows::<RoomListRow, _>(c)?))?;
    // Filtered and ordered here, as the in-memory store does: `q`
    // (lowercased) in the name or the lowercased topic.
    let q = q.map(str::to_lowercase);
    let mut out: Vec<RoomListing> = rows
        .into_iter()
        .filter(|r| {
            q.as_ref().is_none_or(|q| {
                r.room.name.contains(q.as_str()) || r.room.topic.to_lowercase().contains(q.as_str())
            })
        })
        .map(|r| RoomListing {
            members: u64::try_from(r.members).unwrap_or(0),
            room: r.room.into(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.members
            .cmp(&a.members)
            .then_with(|| a.room.name.cmp(&b.room.name))
    });
    out.truncate(limit);
    Ok(out)
}

/// A room's members, longest-standing first.
pub(crate) fn room_members(db: &impl Db, name: &RoomName) -> StoreResult<Vec<RoomMember>> {
    let rows = db.read(|c| {
        Ok(sql::<Members>()
            .bind::<Text, _>(name.as_str())
            .rows::<MemberRow, _>(c)?)
    })?;
    Ok(rows.into_iter().map(RoomMember::from).collect())
}

/// Adds `user` as a member whose cursors start at the room's last seq, and
/// uses up any invitation; false when already a member or banned.
pub(crate) fn join_room<D: Db>(
    db: &D,
    name: &RoomName,
    user: &UserId,
    now: Millis,
) -> StoreResult<bool> {
    let room = name.as_str();
    let conv = ConvId::Room(name.clone()).to_string();
    let joined = in_room(db, room, |c| {
        let already = sql::<Member>()
            .bind::<Text, _>(room)
            .bind::<Text, _>(user.as_str())
            .row::<PosRow, _>(c)?;
        if already.is_some() {
            return Ok(false);
        }
        let banned = sql::<BanCount>()
            .bind::<Text, _>(room)
            .bind::<Text, _>(user.as_str())
            .row::<I64Row, _>(c)?;
        if banned.is_some_and(|r| r.v > 0) {
            return Ok(false);
        }
        sql::<InsertMember>()
            .bind::<Text, _>(room)
            .bind::<Text, _>(user.as_str())
            .bind::<Bool, _>(false)
            .bind::<BigInt, _>(now)
            .run(c)?;
        sql::<DeleteInvite>()
            .bind::<Text, _>(user.as_str())
            .bind::<Text, _>(room)
            .run(c)?;
        sql::<EnsureConv>().bind::<Text, _>(conv.as_str()).run(c)?;
        // Both cursors start at the room's last message.
        join_conv::<D>(c, &conv, user, true)?;
        Ok(true)
    });
    match joined {
        Ok(Some(j)) => Ok(j),
        Ok(None) => Err(StoreError::NotFound),
        // Joined by another process at the same moment.
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes `user` from the room; returns the new owner when the owner left
/// and members remain.
pub(crate) fn leave_room<D: Db>(
    db: &D,
    name: &RoomName,
    user: &UserId,
) -> StoreResult<Option<UserId>> {
    let room = name.as_str();
    let conv = ConvId::Room(name.clone()).to_string();
    let left = in_room(db, room, |c| {
        let Some(me) = sql::<Member>()
            .bind::<Text, _>(room)
            .bind::<Text, _>(user.as_str())
            .row::<PosRow, _>(c)?
        else {
            return Ok(None);
        };
        sql::<DeleteMember>().bind::<BigInt, _>(me.pos).run(c)?;
        let mut new_owner = None;
        if me.owner {
            if let Some(next) = sql::<FirstMember>()
                .bind::<Text, _>(room)
                .row::<PosRow, _>(c)?
            {
                sql::<SetOwner>()
                    .bind::<Bool, _>(true)
                    .bind::<BigInt, _>(next.pos)
                    .run(c)?;
                new_owner = Some(UserId::from_stored(&next.user_name));
            }
        }
        if let Some((id, _)) = D::lock_conv(c, &conv)? {
            sql::<LeaveConv>()
                .bind::<Bool, _>(false)
                .bind::<BigInt, _>(0)
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(user.as_str())
                .run(c)?;
        }
        crate::rights::bump(c)?;
        Ok(new_owner)
    })?;
    left.ok_or(StoreError::NotFound)
}

/// Replaces the topic; `NotFound` for an unknown room.
pub(crate) fn set_room_topic(db: &impl Db, name: &RoomName, topic: &str) -> StoreResult<()> {
    changed(db.write(|c| {
        Ok(sql::<SetTopic>()
            .bind::<Text, _>(topic)
            .bind::<Text, _>(name.as_str())
            .run(c)?)
    })?)
}

/// Bans or unbans `user`; `NotFound` for an unknown room.
pub(crate) fn set_room_ban(
    db: &impl Db,
    name: &RoomName,
    user: &UserId,
    banned: bool,
) -> StoreResult<()> {
    let room = name.as_str();
    in_room(db, room, |c| {
        if banned {
            sql::<InsertBan>()
                .bind::<Text, _>(room)
                .bind::<Text, _>(user.as_str())
                .run(c)?;
        } else {
            sql::<DeleteBan>()
                .bind::<Text, _>(room)
                .bind::<Text, _>(user.as_str())
                .run(c)?;
        }
        Ok(())
    })?
    .ok_or(StoreError::NotFound)
}

/// Whether `user` is banned from the room.
pub(crate) fn is_room_banned(db: &impl Db, name: &RoomName, user: &UserId) -> StoreResult<bool> {
    let n = db.read(|c| {
        Ok(sql::<BanCount>()
            .bind::<Text, _>(name.as_str())
            .bind::<Text, _>(user.as_str())
            .row::<I64Row, _>(c)?)
    })?;
    Ok(n.is_some_and(|r| r.v > 0))
}

/// How many rooms `user` owns.
pub(crate) fn rooms_owned(db: &impl Db, user: &UserId) -> StoreResult<u64> {
    let n = db.read(|c| {
        Ok(sql::<OwnedCount>()
            .bind::<Text, _>(user.as_str())
            .row::<I64Row, _>(c)?)
    })?;
    Ok(n.map_or(0, |r| u64::try_from(r.v).unwrap_or(0)))
}

/// Records that `from` invited `user`; `NotFound` for an unknown room.
pub(crate) fn add_room_invite(
    db: &impl Db,
    name: &RoomName,
    user: &UserId,
    from: &UserId,
) -> StoreResult<()> {
    let room = name.as_str();
    in_room(db, room, |c| {
        sql::<UpsertInvite>()
            .bind::<Text, _>(user.as_str())
            .bind::<Text, _>(room)
            .bind::<Text, _>(from.as_str())
            .run(c)?;
        Ok(())
    })?
    .ok_or(StoreError::NotFound)
}

/// Invitations `user` has not used, by room name.
pub(crate) fn room_invites(db: &impl Db, user: &UserId) -> StoreResult<Vec<(RoomName, UserId)>> {
    let rows = db.read(|c| {
        Ok(sql::<Invites>()
            .bind::<Text, _>(user.as_str())
            .rows::<InviteRow, _>(c)?)
    })?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                RoomName::from_stored(&r.room),
                UserId::from_stored(&r.from_user),
            )
        })
        .collect())
}
