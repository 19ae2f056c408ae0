//! [`RoomStore`] for [`MemoryStore`]: rooms: members, ownership, bans and invitations.

use super::*;

impl RoomStore for MemoryStore {
    fn create_room(&self, room: &RoomRecord, owner: &UserId) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.rooms.contains_key(&room.name) {
            return Err(StoreError::Conflict);
        }
        g.rooms.insert(
            room.name.clone(),
            Room {
                record: room.clone(),
                members: vec![RoomMember {
                    user: owner.clone(),
                    role: RoomRole::Owner,
                    joined_at: room.created_at,
                }],
                bans: BTreeSet::new(),
            },
        );
        let conv = g.convs.entry(ConvId::Room(room.name.clone())).or_default();
        conv.members.insert(owner.clone());
        conv.activity = room.created_at;
        conv.joined.insert(owner.clone(), 0);
        Ok(())
    }

    fn room(&self, name: &RoomName) -> StoreResult<Option<RoomRecord>> {
        Ok(self.lock()?.rooms.get(name).map(|r| r.record.clone()))
    }

    fn list_rooms(&self, q: Option<&str>, limit: usize) -> StoreResult<Vec<RoomListing>> {
        let g = self.lock()?;
        let q = q.map(str::to_lowercase);
        let mut out: Vec<RoomListing> = g
            .rooms
            .values()
            .filter(|r| r.record.public)
            .filter(|r| {
                q.as_ref().is_none_or(|q| {
                    r.record.name.as_str().contains(q.as_str())
                        || r.record.topic.to_lowercase().contains(q.as_str())
                })
            })
            .map(|r| RoomListing {
                room: r.record.clone(),
                members: r.members.len() as u64,
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

    fn room_members(&self, name: &RoomName) -> StoreResult<Vec<RoomMember>> {
        Ok(self
            .lock()?
            .rooms
            .get(name)
            .map(|r| r.members.clone())
            .unwrap_or_default())
    }

    fn join_room(&self, name: &RoomName, user: &UserId, now: Millis) -> StoreResult<bool> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        if room.bans.contains(user) || room.members.iter().any(|m| &m.user == user) {
            return Ok(false);
        }
        room.members.push(RoomMember {
            user: user.clone(),
            role: RoomRole::Member,
            joined_at: now,
        });
        g.invites.remove(&(user.clone(), name.clone()));
        let conv = g.convs.entry(ConvId::Room(name.clone())).or_default();
        let last = conv.messages.len() as u64;
        conv.members.insert(user.clone());
        conv.joined.insert(user.clone(), last);
        let r = conv.read.entry(user.clone()).or_insert(0);
        *r = (*r).max(last);
        Ok(true)
    }

    fn leave_room(&self, name: &RoomName, user: &UserId) -> StoreResult<Option<UserId>> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        let Some(i) = room.members.iter().position(|m| &m.user == user) else {
            return Ok(None);
        };
        let was_owner = room.members.remove(i).role == RoomRole::Owner;
        let mut new_owner = None;
        if was_owner {
            if let Some(first) = room.members.first_mut() {
                first.role = RoomRole::Owner;
                new_owner = Some(first.user.clone());
            }
        }
        if let Some(conv) = g.convs.get_mut(&ConvId::Room(name.clone())) {
            conv.members.remove(user);
            conv.joined.remove(user);
        }
        Ok(new_owner)
    }

    fn set_room_topic(&self, name: &RoomName, topic: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        room.record.topic = topic.to_owned();
        Ok(())
    }

    fn set_room_ban(&self, name: &RoomName, user: &UserId, banned: bool) -> StoreResult<()> {
        let mut g = self.lock()?;
        let room = g.rooms.get_mut(name).ok_or(StoreError::NotFound)?;
        if banned {
            room.bans.insert(user.clone());
        } else {
            room.bans.remove(user);
        }
        Ok(())
    }

    fn is_room_banned(&self, name: &RoomName, user: &UserId) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .rooms
            .get(name)
            .is_some_and(|r| r.bans.contains(user)))
    }

    fn rooms_owned(&self, user: &UserId) -> StoreResult<u64> {
        let g = self.lock()?;
        let owns = |r: &&Room| {
            r.members
                .iter()
                .any(|m| m.user == *user && m.role == RoomRole::Owner)
        };
        Ok(g.rooms.values().filter(owns).count() as u64)
    }

    fn add_room_invite(&self, name: &RoomName, user: &UserId, from: &UserId) -> StoreResult<()> {
        let mut g = self.lock()?;
        if !g.rooms.contains_key(name) {
            return Err(StoreError::NotFound);
        }
        g.invites.insert((user.clone(), name.clone()), from.clone());
        Ok(())
    }

    fn room_invites(&self, user: &UserId) -> StoreResult<Vec<(RoomName, UserId)>> {
        let g = self.lock()?;
        Ok(g.invites
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|((_, r), from)| (r.clone(), from.clone()))
            .collect())
    }
}
