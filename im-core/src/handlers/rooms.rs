//! Room requests: create, list, join, leave, invite, members, topic, kick,
//! unban. The store holds the truth; membership changes and topics then go
//! through the room's conversation actor, so members see them in order
//! with the room's messages.

use crate::actors::conversation::{Broadcast, ConversationActor, Membership, Reload, Settled};
use crate::actors::directory::Lease;
use crate::error::ProtoError;
use crate::handlers::Ctx;
use crate::ids::{now_millis, ConvId, RoomName, UserId};
use crate::protocol::{InviteEntry, MemberEntry, Reply, RoomEntry, ServerFrame};
use crate::services::Services;
use crate::store::{Change, RoomMember, RoomRecord, RoomRole};

/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 256;
/// Most rooms in a `room.list` reply.
const LIST_MAX: usize = 100;

fn no_room() -> ProtoError {
    ProtoError::not_found("no such room")
}

fn too_long_topic(topic: &str) -> Result<(), ProtoError> {
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(ProtoError::too_large("topic is at most 256 characters"));
    }
    Ok(())
}

/// What the caller is to a room.
struct Standing {
    room: RoomRecord,
    members: Vec<RoomMember>,
    banned: bool,
}

impl Standing {
    fn member(&self, u: &UserId) -> Option<&RoomMember> {
        self.members.iter().find(|m| &m.user == u)
    }
}

/// Loads the room and the caller's standing; unknown rooms and names that
/// cannot be rooms are `not_found`.
async fn standing(me: &Ctx, name: &str) -> Result<(RoomName, Standing), ProtoError> {
    let name = RoomName::parse(name).ok_or_else(no_room)?;
    let (n, u) = (name.clone(), me.user.clone());
    let st = me
        .svc
        .db(move |s| {
            let Some(room) = s.room(&n)? else {
                return Ok(None);
            };
            Ok(Some(Standing {
                members: s.room_members(&n)?,
                banned: s.is_room_banned(&n, &u)?,
                room,
            }))
        })
        .await?
        .ok_or_else(no_room)?;
    Ok((name, st))
}

/// Private rooms are invisible to non-members.
fn visible(me: &Ctx, st: &Standing) -> Result<(), ProtoError> {
    if st.room.public || st.member(&me.user).is_some() {
        Ok(())
    } else {
        Err(no_room())
    }
}

/// Owner-only actions: non-members of private rooms get `not_found`,
/// everyone else who is not the owner `forbidden`.
fn owner(me: &Ctx, st: &Standing) -> Result<(), ProtoError> {
    visible(me, st)?;
    match st.member(&me.user) {
        Some(m) if m.role == RoomRole::Owner => Ok(()),
        _ => Err(ProtoError::forbidden("only the room's owner may do this")),
    }
}

/// The room's actor, started if needed and done loading: take it before
/// changing the room's membership in the store, then [`tell_room`].
async fn room_actor(me: &Ctx, name: &RoomName) -> Option<Lease<ConversationActor>> {
    let l = me.svc.conv_actor(&ConvId::Room(name.clone()))?;
    l.addr.send(Settled).await.ok()?;
    Some(l)
}

/// Tells the room's actor (from [`room_actor`]) that `user` joined or left.
fn tell_room(
    room: Option<Lease<ConversationActor>>,
    user: &UserId,
    joined: bool,
    frame: ServerFrame,
) {
    if let Some(l) = room {
        l.addr.do_send(Membership {
            user: user.clone(),
            joined,
            frame: frame.encode(),
            _ticket: Some(l.ticket),
        });
    }
}

/// `room.create`.
pub(crate) async fn create(
    me: &Ctx,
    name: &str,
    topic: Option<String>,
    public: Option<bool>,
) -> Result<Reply, ProtoError> {
    let name = RoomName::parse(name).ok_or_else(|| {
        ProtoError::bad_request(
            "room names are 3 to 32 characters of a-z 0-9 _ . - starting with a letter or digit",
        )
    })?;
    let topic = topic.unwrap_or_default();
    too_long_topic(&topic)?;
    let record = RoomRecord {
        name: name.clone(),
        topic,
        public: public.unwrap_or(true),
        created_at: now_millis(),
    };
    let owner = me.user.clone();
    let max = me.svc.config.limits.max_rooms_owned as u64;
    // Counted and created under the owner's lock, so parallel creates
    // cannot pass the cap together.
    let mine = me.svc.user_locks.lock(me.user.clone()).await;
    let created = me
        .svc
        .db(move |s| {
            if s.rooms_owned(&owner)? >= max {
                return Ok(false);
            }
            s.create_room(&record, &owner).map(|()| true)
        })
        .await;
    drop(mine);
    match created {
        Ok(true) => {}
        Ok(false) => {
            return Err(ProtoError::conflict(format!(
                "you own {max} rooms, the most one user may"
            )))
        }
        Err(e) if e.code == crate::error::ErrorCode::Conflict => {
            return Err(ProtoError::conflict("a room with this name exists"))
        }
        Err(e) => return Err(e),
    }
    let conv = ConvId::Room(name.clone());
    // An actor that looked for this room before it existed must load it.
    if let Some(l) = me.svc.actors.convs.get(&conv) {
        l.addr.do_send(Reload {
            _ticket: Some(l.ticket),
        });
    }
    let frame = ServerFrame::RoomJoined {
        room: name,
        user: me.user.clone(),
    }
    .encode();
    me.svc
        .emit_to(std::iter::once(&me.user), &frame, Some(me.session));
    Ok(Reply::Conv { conv })
}

/// `room.list`.
pub(crate) async fn list(me: &Ctx, q: Option<String>) -> Result<Reply, ProtoError> {
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_TOPIC_CHARS)
    {
        return Err(ProtoError::too_large("query is at most 256 characters"));
    }
    let found = me
        .svc
        .db(move |s| {
            let rooms = s.list_rooms(q.as_deref(), LIST_MAX)?;
            let mut out = Vec::with_capacity(rooms.len());
            for r in rooms {
                let members = s.room_members(&r.room.name)?;
                out.push((r, members));
            }
            Ok(out)
        })
        .await?;
    let rooms = found
        .into_iter()
        .map(|(r, members)| RoomEntry {
            online: members.iter().filter(|m| me.svc.is_online(&m.user)).count() as u64,
            name: r.room.name,
            topic: r.room.topic,
            members: r.members,
        })
        .collect();
    Ok(Reply::Rooms { rooms })
}

/// `room.join`.
pub(crate) async fn join(me: &Ctx, name: &str) -> Result<Reply, ProtoError> {
    let (name, st) = standing(me, name).await?;
    let conv = ConvId::Room(name.clone());
    if st.member(&me.user).is_some() {
        return Ok(Reply::Conv { conv });
    }
    if !st.room.public {
        let (n, u) = (name.clone(), me.user.clone());
        let invited = me
            .svc
            .db(move |s| Ok(s.room_invites(&u)?.iter().any(|(r, _)| *r == n)))
            .await?;
        if !invited {
            return Err(no_room());
        }
    }
    if st.banned {
        return Err(ProtoError::forbidden("you are banned from this room"));
    }
    let _room = me.svc.room_locks.lock(name.clone()).await;
    let room = room_actor(me, &name).await;
    let (n, u, origin) = (name.clone(), me.user.clone(), me.svc.origin);
    let joined = me
        .svc
        .db(move |s| {
            let joined = s.join_room(&n, &u, now_millis())?;
            if !joined && s.is_room_banned(&n, &u)? {
                // Banned since `standing` read the room.
                return Ok(None);
            }
            Services::publish(origin, s, &Change::Room { room: n })?;
            Ok(Some(joined))
        })
        .await?
        .ok_or_else(|| ProtoError::forbidden("you are banned from this room"))?;
    if joined {
        me.svc.changed().await;
        let frame = ServerFrame::RoomJoined {
            room: name.clone(),
            user: me.user.clone(),
        };
        tell_room(room, &me.user, true, frame);
    }
    Ok(Reply::Conv { conv })
}

/// `room.leave`.
pub(crate) async fn leave(me: &Ctx, name: &str) -> Result<Reply, ProtoError> {
    let (name, st) = standing(me, name).await?;
    visible(me, &st)?;
    if st.member(&me.user).is_none() {
        return Err(ProtoError::not_found("you are not in this room"));
    }
    let _room = me.svc.room_locks.lock(name.clone()).await;
    let room = room_actor(me, &name).await;
    let (n, u, origin) = (name.clone(), me.user.clone(), me.svc.origin);
    me.svc
        .db(move |s| {
            s.leave_room(&n, &u)?;
            Services::publish(origin, s, &Change::Room { room: n })
        })
        .await?;
    me.svc.changed().await;
    let frame = ServerFrame::RoomLeft {
        room: name.clone(),
        user: me.user.clone(),
        kicked: None,
    };
    tell_room(room, &me.user, false, frame);
    Ok(Reply::Empty)
}

/// `room.invite`: `room.invited` reaches the invitee now if online; the
/// invitation waits in `room.invites` otherwise.
pub(crate) async fn invite(me: &Ctx, name: &str, user: &str) -> Result<Reply, ProtoError> {
    let (name, st) = standing(me, name).await?;
    visible(me, &st)?;
    let invitee = UserId::parse(user).ok_or_else(|| ProtoError::not_found("no such user"))?;
    let (i, u) = (invitee.clone(), me.user.clone());
    let (exists, blocked) = me
        .svc
        .db(move |s| {
            Ok((
                s.user(&i)?.is_some(),
                s.blocks(&i)?.contains(&u) || s.blocks(&u)?.contains(&i),
            ))
        })
        .await?;
    if !exists {
        return Err(ProtoError::not_found("no such user"));
    }
    me.svc.changed().await;
    if st.member(&me.user).is_none() {
        return Err(ProtoError::forbidden("only members may invite"));
    }
    if blocked {
        return Err(ProtoError::forbidden("not allowed to invite this user"));
    }
    if invitee == me.user || st.member(&invitee).is_some() {
        return Ok(Reply::Empty);
    }
    let (n, i, u) = (name.clone(), invitee.clone(), me.user.clone());
    let max = me.svc.config.limits.max_pending_invites;
    // Counted and stored under the invitee's lock, so invitations from
    // several members at once cannot pass the cap together.
    let theirs = me.svc.user_locks.lock(invitee.clone()).await;
    let added = me
        .svc
        .db(move |s| {
            // A new invitation needs a free place; renewing one does not.
            let held = s.room_invites(&i)?;
            if held.len() >= max && !held.iter().any(|(r, _)| *r == n) {
                return Ok(false);
            }
            s.add_room_invite(&n, &i, &u).map(|()| true)
        })
        .await?;
    drop(theirs);
    if !added {
        return Err(ProtoError::rate_limited(format!(
            "this user has {max} invitations waiting"
        )));
    }
    let frame = ServerFrame::RoomInvited {
        room: name,
        from: me.user.clone(),
    }
    .encode();
    me.svc.emit_to(std::iter::once(&invitee), &frame, None);
    Ok(Reply::Empty)
}

/// `room.invites`.
pub(crate) async fn invites(me: &Ctx) -> Result<Reply, ProtoError> {
    let u = me.user.clone();
    let list = me.svc.db(move |s| s.room_invites(&u)).await?;
    Ok(Reply::Invites {
        invites: list
            .into_iter()
            .map(|(room, from)| InviteEntry { room, from })
            .collect(),
    })
}

/// `room.members`: for members, and for anyone in a public room.
pub(crate) async fn members(me: &Ctx, name: &str) -> Result<Reply, ProtoError> {
    let (_, st) = standing(me, name).await?;
    visible(me, &st)?;
    Ok(Reply::Members {
        members: st
            .members
            .into_iter()
            .map(|m| MemberEntry {
                online: me.svc.is_online(&m.user),
                role: match m.role {
                    RoomRole::Owner => "owner",
                    RoomRole::Member => "member",
                },
                user: m.user,
            })
            .collect(),
    })
}

/// `room.topic` (owner).
pub(crate) async fn topic(me: &Ctx, name: &str, topic: String) -> Result<Reply, ProtoError> {
    too_long_topic(&topic)?;
    let (name, st) = standing(me, name).await?;
    owner(me, &st)?;
    let (n, t) = (name.clone(), topic.clone());
    me.svc.db(move |s| s.set_room_topic(&n, &t)).await?;
    if let Some(l) = me.svc.conv_actor(&ConvId::Room(name.clone())) {
        l.addr.do_send(Broadcast {
            frame: ServerFrame::RoomTopic { room: name, topic }.encode(),
            _ticket: Some(l.ticket),
        });
    }
    Ok(Reply::Empty)
}

/// `room.kick` (owner): removes and bans.
pub(crate) async fn kick(me: &Ctx, name: &str, user: &str) -> Result<Reply, ProtoError> {
    let (name, st) = standing(me, name).await?;
    let target = UserId::parse(user).ok_or_else(|| ProtoError::not_found("no such user"))?;
    owner(me, &st)?;
    if target == me.user {
        return Err(ProtoError::bad_request(
            "the owner cannot kick themselves; leave instead",
        ));
    }
    let _room = me.svc.room_locks.lock(name.clone()).await;
    let room = room_actor(me, &name).await;
    let (n, t, origin) = (name.clone(), target.clone(), me.svc.origin);
    let was_member = me
        .svc
        .db(move |s| {
            if s.user(&t)?.is_none() {
                return Ok(None);
            }
            s.set_room_ban(&n, &t, true)?;
            // Membership read after the ban: a join that `standing` did
            // not see is committed by now (joins and bans take the room's
            // row in turn), and no later one gets past the ban.
            let member = s.room_members(&n)?.iter().any(|m| m.user == t);
            if member {
                s.leave_room(&n, &t)?;
            }
            Services::publish(origin, s, &Change::Room { room: n })?;
            Ok(Some(member))
        })
        .await?
        .ok_or_else(|| ProtoError::not_found("no such user"))?;
    me.svc.changed().await;
    if was_member {
        let frame = ServerFrame::RoomLeft {
            room: name.clone(),
            user: target.clone(),
            kicked: Some(true),
        };
        tell_room(room, &target, false, frame);
    }
    Ok(Reply::Empty)
}

/// `room.unban` (owner).
pub(crate) async fn unban(me: &Ctx, name: &str, user: &str) -> Result<Reply, ProtoError> {
    let (name, st) = standing(me, name).await?;
    let target = UserId::parse(user).ok_or_else(|| ProtoError::not_found("no such user"))?;
    owner(me, &st)?;
    let origin = me.svc.origin;
    me.svc
        .db(move |s| {
            s.set_room_ban(&name, &target, false)?;
            Services::publish(origin, s, &Change::Room { room: name })
        })
        .await?;
    me.svc.changed().await;
    Ok(Reply::Empty)
}
