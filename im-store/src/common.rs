//! The [`im_core::Store`] methods whose diesel queries are the same on both
//! backends, written once as a macro and expanded inside each backend's
//! `impl Store`. The expanding type provides
//! `fn read<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, DbError>) -> StoreResult<T>`,
//! a matching `write`, a `write_raw` that returns the [`DbError`] unmapped,
//! a `txn` that runs its closure in a write transaction (returning the
//! [`DbError`]), the backend-specific `batch` and `list_convs`, and in its
//! module a `lock_conv_row(conn, name)` that locks a conversation's counter
//! row and returns its id and `last_seq`.

use im_core::error::{StoreError, StoreResult};
use im_core::ids::{ConvId, RoomName, UserId};
use im_core::store::{
    ConvSummary, DeviceRecord, FileRecord, RoomListing, RoomMember, RoomRecord, RoomRole,
    StoredMessage, UserRecord,
};

use crate::error::{seq_u64, DbError};

/// Columns of `users`, in table order.
pub(crate) type UserTuple = (String, String, bool, i64, Option<i64>);
/// Columns of `devices` without `user_name`.
pub(crate) type DeviceTuple = (String, Option<String>, i64, i64);
/// Columns of `messages` without `conv_id`.
pub(crate) type MessageTuple = (i64, String, String, i64, Option<String>, Option<String>);

pub(crate) fn user_record(t: UserTuple) -> UserRecord {
    UserRecord {
        name: UserId::from_stored(&t.0),
        password_hash: t.1,
        suspended: t.2,
        created_at: t.3,
        last_seen: t.4,
    }
}

pub(crate) fn device_record(t: DeviceTuple) -> DeviceRecord {
    DeviceRecord {
        device: t.0,
        token_hash: t.1,
        token_issued_at: t.2,
        last_login: t.3,
    }
}

pub(crate) fn stored_message(conv: &ConvId, t: MessageTuple) -> Result<StoredMessage, DbError> {
    Ok(StoredMessage {
        conv: conv.clone(),
        seq: seq_u64(t.0)?,
        from: UserId::from_stored(&t.1),
        body: t.2,
        ts: t.3,
        client_id: t.4,
        attachment: t.5,
    })
}

/// Orders conversation summaries as the in-memory store does: most recent
/// activity first, then by conversation id.
pub(crate) fn sort_summaries(v: &mut [ConvSummary]) {
    v.sort_by(|a, b| {
        b.activity
            .cmp(&a.activity)
            .then_with(|| a.conv.cmp(&b.conv))
    });
}

/// Parses a conversation name read back from the database.
pub(crate) fn parse_conv(name: &str) -> Result<ConvId, DbError> {
    ConvId::parse(name).ok_or_else(|| DbError::Corrupt(format!("bad conversation name {name:?}")))
}

/// The `(smaller, larger)` pair a relation is stored under.
pub(crate) fn pair<'a>(a: &'a UserId, b: &'a UserId) -> (&'a str, &'a str) {
    if a < b {
        (a.as_str(), b.as_str())
    } else {
        (b.as_str(), a.as_str())
    }
}

/// Expands to every [`im_core::Store`] method but `write_batch` and
/// `conversations`, which delegate to the backend's `batch` and
/// `list_convs`.
macro_rules! common_store_methods {
    () => {
        fn create_user(
            &self,
            user: &::im_core::store::UserRecord,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            let r = self.write_raw(|c| {
                ::diesel::insert_into(u::users)
                    .values((
                        u::name.eq(user.name.as_str()),
                        u::password_hash.eq(&user.password_hash),
                        u::suspended.eq(user.suspended),
                        u::created_at.eq(user.created_at),
                        u::last_seen.eq(user.last_seen),
                    ))
                    .execute(c)?;
                Ok(())
            });
            match r {
                Ok(()) => Ok(()),
                Err(e) if e.is_unique_violation() => Err(::im_core::error::StoreError::Conflict),
                Err(e) => Err(e.into()),
            }
        }

        fn user(
            &self,
            name: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<Option<::im_core::store::UserRecord>> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            self.read(|c| {
                Ok(u::users
                    .filter(u::name.eq(name.as_str()))
                    .select((
                        u::name,
                        u::password_hash,
                        u::suspended,
                        u::created_at,
                        u::last_seen,
                    ))
                    .first::<crate::common::UserTuple>(c)
                    .optional()?
                    .map(crate::common::user_record))
            })
        }

        fn list_users(&self) -> ::im_core::error::StoreResult<Vec<::im_core::store::UserRecord>> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            self.read(|c| {
                Ok(u::users
                    .order(u::name.asc())
                    .select((
                        u::name,
                        u::password_hash,
                        u::suspended,
                        u::created_at,
                        u::last_seen,
                    ))
                    .load::<crate::common::UserTuple>(c)?
                    .into_iter()
                    .map(crate::common::user_record)
                    .collect())
            })
        }

        fn set_password_hash(
            &self,
            name: &::im_core::ids::UserId,
            hash: &str,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            let n = self.write(|c| {
                Ok(::diesel::update(u::users.filter(u::name.eq(name.as_str())))
                    .set(u::password_hash.eq(hash))
                    .execute(c)?)
            })?;
            if n == 0 {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn set_suspended(
            &self,
            name: &::im_core::ids::UserId,
            suspended: bool,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            let n = self.write(|c| {
                Ok(::diesel::update(u::users.filter(u::name.eq(name.as_str())))
                    .set(u::suspended.eq(suspended))
                    .execute(c)?)
            })?;
            if n == 0 {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn set_last_seen(
            &self,
            name: &::im_core::ids::UserId,
            at: ::im_core::ids::Millis,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            self.write(|c| {
                ::diesel::update(u::users.filter(u::name.eq(name.as_str())))
                    .set(u::last_seen.eq(Some(at)))
                    .execute(c)?;
                Ok(())
            })
        }

        fn issue_token(
            &self,
            user: &::im_core::ids::UserId,
            device: &str,
            token_hash: &str,
            now: ::im_core::ids::Millis,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            self.write(|c| {
                ::diesel::insert_into(d::devices)
                    .values((
                        d::user_name.eq(user.as_str()),
                        d::device.eq(device),
                        d::token_hash.eq(Some(token_hash)),
                        d::token_issued_at.eq(now),
                        d::last_login.eq(now),
                    ))
                    .on_conflict((d::user_name, d::device))
                    .do_update()
                    .set((
                        d::token_hash.eq(Some(token_hash)),
                        d::token_issued_at.eq(now),
                        d::last_login.eq(now),
                    ))
                    .execute(c)?;
                Ok(())
            })
        }

        fn device_by_token(
            &self,
            user: &::im_core::ids::UserId,
            token_hash: &str,
        ) -> ::im_core::error::StoreResult<Option<::im_core::store::DeviceRecord>> {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            self.read(|c| {
                Ok(d::devices
                    .filter(d::user_name.eq(user.as_str()))
                    .filter(d::token_hash.eq(token_hash))
                    .order(d::device.asc())
                    .select((d::device, d::token_hash, d::token_issued_at, d::last_login))
                    .first::<crate::common::DeviceTuple>(c)
                    .optional()?
                    .map(crate::common::device_record))
            })
        }

        fn touch_device(
            &self,
            user: &::im_core::ids::UserId,
            device: &str,
            now: ::im_core::ids::Millis,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            self.write(|c| {
                ::diesel::update(
                    d::devices
                        .filter(d::user_name.eq(user.as_str()))
                        .filter(d::device.eq(device)),
                )
                .set(d::last_login.eq(now))
                .execute(c)?;
                Ok(())
            })
        }

        fn devices(
            &self,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::DeviceRecord>> {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            self.read(|c| {
                Ok(d::devices
                    .filter(d::user_name.eq(user.as_str()))
                    .order(d::device.asc())
                    .select((d::device, d::token_hash, d::token_issued_at, d::last_login))
                    .load::<crate::common::DeviceTuple>(c)?
                    .into_iter()
                    .map(crate::common::device_record)
                    .collect())
            })
        }

        fn revoke_device(
            &self,
            user: &::im_core::ids::UserId,
            device: &str,
        ) -> ::im_core::error::StoreResult<bool> {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            self.write(|c| {
                let n = ::diesel::update(
                    d::devices
                        .filter(d::user_name.eq(user.as_str()))
                        .filter(d::device.eq(device)),
                )
                .set(d::token_hash.eq(None::<String>))
                .execute(c)?;
                Ok(n > 0)
            })
        }

        fn revoke_all_devices(
            &self,
            user: &::im_core::ids::UserId,
            keep: Option<&str>,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            self.write(|c| {
                match keep {
                    Some(k) => ::diesel::update(
                        d::devices
                            .filter(d::user_name.eq(user.as_str()))
                            .filter(d::device.ne(k)),
                    )
                    .set(d::token_hash.eq(None::<String>))
                    .execute(c)?,
                    None => ::diesel::update(d::devices.filter(d::user_name.eq(user.as_str())))
                        .set(d::token_hash.eq(None::<String>))
                        .execute(c)?,
                };
                Ok(())
            })
        }

        fn relation(
            &self,
            a: &::im_core::ids::UserId,
            b: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<::im_core::store::Relation> {
            use crate::schema::relations::dsl as r;
            use ::diesel::prelude::*;
            let (x, y) = crate::common::pair(a, b);
            let row = self.read(|c| {
                Ok(r::relations
                    .filter(r::user_a.eq(x))
                    .filter(r::user_b.eq(y))
                    .select(r::requested_by)
                    .first::<Option<String>>(c)
                    .optional()?)
            })?;
            Ok(match row {
                None => ::im_core::store::Relation::None,
                Some(None) => ::im_core::store::Relation::Mutual,
                Some(Some(by)) => ::im_core::store::Relation::Requested {
                    by: ::im_core::ids::UserId::from_stored(&by),
                },
            })
        }

        fn set_relation(
            &self,
            a: &::im_core::ids::UserId,
            b: &::im_core::ids::UserId,
            rel: &::im_core::store::Relation,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::relations::dsl as r;
            use ::diesel::prelude::*;
            let (x, y) = crate::common::pair(a, b);
            let by: Option<&str> = match rel {
                ::im_core::store::Relation::None => None,
                ::im_core::store::Relation::Mutual => None,
                ::im_core::store::Relation::Requested { by } => Some(by.as_str()),
            };
            let none = matches!(rel, ::im_core::store::Relation::None);
            self.write(|c| {
                if none {
                    ::diesel::delete(r::relations.filter(r::user_a.eq(x)).filter(r::user_b.eq(y)))
                        .execute(c)?;
                } else {
                    ::diesel::insert_into(r::relations)
                        .values((r::user_a.eq(x), r::user_b.eq(y), r::requested_by.eq(by)))
                        .on_conflict((r::user_a, r::user_b))
                        .do_update()
                        .set(r::requested_by.eq(by))
                        .execute(c)?;
                }
                Ok(())
            })
        }

        fn contacts(
            &self,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<
            Vec<(::im_core::ids::UserId, ::im_core::store::ContactState)>,
        > {
            use crate::schema::relations::dsl as r;
            use ::diesel::prelude::*;
            let me = user.as_str();
            let rows = self.read(|c| {
                Ok(r::relations
                    .filter(r::user_a.eq(me).or(r::user_b.eq(me)))
                    .select((r::user_a, r::user_b, r::requested_by))
                    .load::<(String, String, Option<String>)>(c)?)
            })?;
            let mut out: Vec<(::im_core::ids::UserId, ::im_core::store::ContactState)> = rows
                .into_iter()
                .map(|(a, b, by)| {
                    let peer = if a == me { b } else { a };
                    let state = match by {
                        None => ::im_core::store::ContactState::Mutual,
                        Some(by) if by == me => ::im_core::store::ContactState::PendingOut,
                        Some(_) => ::im_core::store::ContactState::PendingIn,
                    };
                    (::im_core::ids::UserId::from_stored(&peer), state)
                })
                .collect();
            out.sort_by(|x, y| x.0.cmp(&y.0));
            Ok(out)
        }

        fn set_block(
            &self,
            by: &::im_core::ids::UserId,
            target: &::im_core::ids::UserId,
            blocked: bool,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::blocks::dsl as k;
            use ::diesel::prelude::*;
            self.write(|c| {
                if blocked {
                    ::diesel::insert_into(k::blocks)
                        .values((k::by_user.eq(by.as_str()), k::target.eq(target.as_str())))
                        .on_conflict_do_nothing()
                        .execute(c)?;
                } else {
                    ::diesel::delete(
                        k::blocks
                            .filter(k::by_user.eq(by.as_str()))
                            .filter(k::target.eq(target.as_str())),
                    )
                    .execute(c)?;
                }
                Ok(())
            })
        }

        fn blocks(
            &self,
            by: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::ids::UserId>> {
            use crate::schema::blocks::dsl as k;
            use ::diesel::prelude::*;
            let mut v: Vec<::im_core::ids::UserId> = self
                .read(|c| {
                    Ok(k::blocks
                        .filter(k::by_user.eq(by.as_str()))
                        .select(k::target)
                        .load::<String>(c)?)
                })?
                .iter()
                .map(|s| ::im_core::ids::UserId::from_stored(s))
                .collect();
            v.sort();
            Ok(v)
        }

        fn blocked_by(
            &self,
            target: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::ids::UserId>> {
            use crate::schema::blocks::dsl as k;
            use ::diesel::prelude::*;
            let mut v: Vec<::im_core::ids::UserId> = self
                .read(|c| {
                    Ok(k::blocks
                        .filter(k::target.eq(target.as_str()))
                        .select(k::by_user)
                        .load::<String>(c)?)
                })?
                .iter()
                .map(|s| ::im_core::ids::UserId::from_stored(s))
                .collect();
            v.sort();
            Ok(v)
        }

        fn write_batch(
            &self,
            messages: &[::im_core::store::NewMessage],
            cursors: &[::im_core::store::CursorUpdate],
        ) -> ::im_core::error::StoreResult<(
            Vec<::im_core::store::Appended>,
            Vec<::im_core::store::CursorOutcome>,
        )> {
            if messages.is_empty() && cursors.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            self.batch(messages, cursors)
        }

        fn find_client_id(
            &self,
            conv: &::im_core::ids::ConvId,
            from: &::im_core::ids::UserId,
            client_id: &str,
        ) -> ::im_core::error::StoreResult<Option<::im_core::store::Appended>> {
            use crate::schema::{client_ids as k, conversations as cv};
            use ::diesel::prelude::*;
            let name = conv.to_string();
            let row = self.read(|c| {
                Ok(k::table
                    .inner_join(cv::table)
                    .filter(cv::name.eq(&name))
                    .filter(k::sender.eq(from.as_str()))
                    .filter(k::client_id.eq(client_id))
                    .select((k::seq, k::ts))
                    .first::<(i64, i64)>(c)
                    .optional()?)
            })?;
            match row {
                None => Ok(None),
                Some((seq, ts)) => Ok(Some(::im_core::store::Appended {
                    seq: crate::error::seq_u64(seq)?,
                    ts,
                    duplicate: true,
                })),
            }
        }

        fn messages_after(
            &self,
            conv: &::im_core::ids::ConvId,
            after: u64,
            limit: usize,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::StoredMessage>> {
            use crate::schema::{conversations as cv, messages as m};
            use ::diesel::prelude::*;
            if limit == 0 {
                return Ok(Vec::new());
            }
            let name = conv.to_string();
            self.read(|c| {
                m::table
                    .inner_join(cv::table)
                    .filter(cv::name.eq(&name))
                    .filter(m::seq.gt(crate::error::seq_i64(after)))
                    .order(m::seq.asc())
                    .limit(crate::error::limit_i64(limit))
                    .select((
                        m::seq,
                        m::sender,
                        m::body,
                        m::ts,
                        m::client_id,
                        m::attachment,
                    ))
                    .load::<crate::common::MessageTuple>(c)?
                    .into_iter()
                    .map(|t| crate::common::stored_message(conv, t))
                    .collect()
            })
        }

        fn messages_before(
            &self,
            conv: &::im_core::ids::ConvId,
            before: Option<u64>,
            limit: usize,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::StoredMessage>> {
            use crate::schema::{conversations as cv, messages as m};
            use ::diesel::prelude::*;
            if limit == 0 || before == Some(0) {
                return Ok(Vec::new());
            }
            let name = conv.to_string();
            let before = before.map_or(i64::MAX, crate::error::seq_i64);
            let mut v: Vec<::im_core::store::StoredMessage> = self.read(|c| {
                m::table
                    .inner_join(cv::table)
                    .filter(cv::name.eq(&name))
                    .filter(m::seq.lt(before))
                    .order(m::seq.desc())
                    .limit(crate::error::limit_i64(limit))
                    .select((
                        m::seq,
                        m::sender,
                        m::body,
                        m::ts,
                        m::client_id,
                        m::attachment,
                    ))
                    .load::<crate::common::MessageTuple>(c)?
                    .into_iter()
                    .map(|t| crate::common::stored_message(conv, t))
                    .collect()
            })?;
            v.reverse();
            Ok(v)
        }

        fn is_member(
            &self,
            conv: &::im_core::ids::ConvId,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<bool> {
            use crate::schema::{conv_users as cu, conversations as cv};
            use ::diesel::prelude::*;
            let name = conv.to_string();
            self.read(|c| {
                Ok(cu::table
                    .inner_join(cv::table)
                    .filter(cv::name.eq(&name))
                    .filter(cu::user_name.eq(user.as_str()))
                    .filter(cu::member.eq(true))
                    .select(cu::conv_id)
                    .first::<i64>(c)
                    .optional()?
                    .is_some())
            })
        }

        fn conversations(
            &self,
            user: &::im_core::ids::UserId,
            device: &str,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::ConvSummary>> {
            let mut v = self.list_convs(user, device)?;
            crate::common::sort_summaries(&mut v);
            Ok(v)
        }

        fn create_room(
            &self,
            room: &::im_core::store::RoomRecord,
            owner: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::{room_members as rm, rooms as r};
            use crate::sql::sql;
            use ::diesel::prelude::*;
            use ::diesel::sql_types::{BigInt, Text};
            let name = room.name.as_str();
            let conv = ::im_core::ids::ConvId::Room(room.name.clone()).to_string();
            let created = self.txn(|c| {
                if crate::common::room_exists!(c, name)? {
                    return Ok(false);
                }
                ::diesel::insert_into(r::table)
                    .values((
                        r::name.eq(name),
                        r::topic.eq(&room.topic),
                        r::public.eq(room.public),
                        r::created_at.eq(room.created_at),
                    ))
                    .execute(c)?;
                ::diesel::insert_into(rm::table)
                    .values((
                        rm::room.eq(name),
                        rm::user_name.eq(owner.as_str()),
                        rm::owner.eq(true),
                        rm::joined_at.eq(room.created_at),
                    ))
                    .execute(c)?;
                sql::<crate::common::CreateRoomConv>()
                    .bind::<Text, _>(&conv)
                    .bind::<BigInt, _>(room.created_at)
                    .execute(c)?;
                let (id, _) = lock_conv_row(c, &conv)?
                    .ok_or_else(|| crate::error::DbError::Corrupt(format!("{conv} vanished")))?;
                sql::<crate::common::JoinConv>()
                    .bind::<BigInt, _>(id)
                    .bind::<Text, _>(owner.as_str())
                    .bind::<BigInt, _>(0)
                    .bind::<BigInt, _>(0)
                    .execute(c)?;
                Ok(true)
            });
            match created {
                Ok(true) => Ok(()),
                Ok(false) => Err(::im_core::error::StoreError::Conflict),
                Err(e) if e.is_unique_violation() => Err(::im_core::error::StoreError::Conflict),
                Err(e) => Err(e.into()),
            }
        }

        fn room(
            &self,
            name: &::im_core::ids::RoomName,
        ) -> ::im_core::error::StoreResult<Option<::im_core::store::RoomRecord>> {
            use crate::schema::rooms as r;
            use ::diesel::prelude::*;
            let row = self.read(|c| {
                Ok(r::table
                    .filter(r::name.eq(name.as_str()))
                    .select((r::name, r::topic, r::public, r::created_at))
                    .first::<(String, String, bool, i64)>(c)
                    .optional()?)
            })?;
            Ok(row.map(crate::common::room_record))
        }

        fn list_rooms(
            &self,
            q: Option<&str>,
            limit: usize,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::RoomListing>> {
            use crate::sql::sql;
            use ::diesel::prelude::*;
            let rows = self.read(|c| {
                Ok(sql::<crate::common::PublicRooms>().load::<crate::common::RoomListRow>(c)?)
            })?;
            Ok(crate::common::room_listing(rows, q, limit))
        }

        fn room_members(
            &self,
            name: &::im_core::ids::RoomName,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::RoomMember>> {
            use crate::schema::room_members as rm;
            use ::diesel::prelude::*;
            let rows = self.read(|c| {
                Ok(rm::table
                    .filter(rm::room.eq(name.as_str()))
                    .order(rm::pos.asc())
                    .select((rm::user_name, rm::owner, rm::joined_at))
                    .load::<(String, bool, i64)>(c)?)
            })?;
            Ok(rows.into_iter().map(crate::common::room_member).collect())
        }

        fn join_room(
            &self,
            name: &::im_core::ids::RoomName,
            user: &::im_core::ids::UserId,
            now: ::im_core::ids::Millis,
        ) -> ::im_core::error::StoreResult<bool> {
            use crate::schema::{room_invites as ri, room_members as rm};
            use crate::sql::sql;
            use ::diesel::prelude::*;
            use ::diesel::sql_types::{BigInt, Text};
            let room = name.as_str();
            let conv = ::im_core::ids::ConvId::Room(name.clone()).to_string();
            let joined = self.txn(|c| {
                if !crate::common::room_exists!(c, room)? {
                    return Ok(None);
                }
                let already = rm::table
                    .filter(rm::room.eq(room))
                    .filter(rm::user_name.eq(user.as_str()))
                    .count()
                    .get_result::<i64>(c)?;
                if already > 0 {
                    return Ok(Some(false));
                }
                ::diesel::insert_into(rm::table)
                    .values((
                        rm::room.eq(room),
                        rm::user_name.eq(user.as_str()),
                        rm::owner.eq(false),
                        rm::joined_at.eq(now),
                    ))
                    .execute(c)?;
                ::diesel::delete(
                    ri::table
                        .filter(ri::user_name.eq(user.as_str()))
                        .filter(ri::room.eq(room)),
                )
                .execute(c)?;
                sql::<crate::common::EnsureConv>()
                    .bind::<Text, _>(&conv)
                    .execute(c)?;
                let (id, last) = lock_conv_row(c, &conv)?
                    .ok_or_else(|| crate::error::DbError::Corrupt(format!("{conv} vanished")))?;
                // Both cursors start at the room's last message.
                sql::<crate::common::JoinConv>()
                    .bind::<BigInt, _>(id)
                    .bind::<Text, _>(user.as_str())
                    .bind::<BigInt, _>(last)
                    .bind::<BigInt, _>(last)
                    .execute(c)?;
                Ok(Some(true))
            });
            match joined {
                Ok(Some(j)) => Ok(j),
                Ok(None) => Err(::im_core::error::StoreError::NotFound),
                // Joined by another process at the same moment.
                Err(e) if e.is_unique_violation() => Ok(false),
                Err(e) => Err(e.into()),
            }
        }

        fn leave_room(
            &self,
            name: &::im_core::ids::RoomName,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<Option<::im_core::ids::UserId>> {
            use crate::schema::{conv_users as cu, room_members as rm};
            use ::diesel::prelude::*;
            let room = name.as_str();
            let conv = ::im_core::ids::ConvId::Room(name.clone()).to_string();
            let left = self.txn(|c| {
                if !crate::common::room_exists!(c, room)? {
                    return Ok(None);
                }
                let Some((pos, owner)) = rm::table
                    .filter(rm::room.eq(room))
                    .filter(rm::user_name.eq(user.as_str()))
                    .select((rm::pos, rm::owner))
                    .first::<(i64, bool)>(c)
                    .optional()?
                else {
                    return Ok(Some(None));
                };
                ::diesel::delete(rm::table.filter(rm::pos.eq(pos))).execute(c)?;
                let mut new_owner = None;
                if owner {
                    let next = rm::table
                        .filter(rm::room.eq(room))
                        .order(rm::pos.asc())
                        .select((rm::pos, rm::user_name))
                        .first::<(i64, String)>(c)
                        .optional()?;
                    if let Some((p, u)) = next {
                        ::diesel::update(rm::table.filter(rm::pos.eq(p)))
                            .set(rm::owner.eq(true))
                            .execute(c)?;
                        new_owner = Some(::im_core::ids::UserId::from_stored(&u));
                    }
                }
                if let Some((id, _)) = lock_conv_row(c, &conv)? {
                    ::diesel::update(
                        cu::table
                            .filter(cu::conv_id.eq(id))
                            .filter(cu::user_name.eq(user.as_str())),
                    )
                    .set((cu::member.eq(false), cu::joined_seq.eq(0i64)))
                    .execute(c)?;
                }
                Ok(Some(new_owner))
            })?;
            left.ok_or(::im_core::error::StoreError::NotFound)
        }

        fn set_room_topic(
            &self,
            name: &::im_core::ids::RoomName,
            topic: &str,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::rooms as r;
            use ::diesel::prelude::*;
            let n = self.write(|c| {
                Ok(::diesel::update(r::table.filter(r::name.eq(name.as_str())))
                    .set(r::topic.eq(topic))
                    .execute(c)?)
            })?;
            if n == 0 {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn set_room_ban(
            &self,
            name: &::im_core::ids::RoomName,
            user: &::im_core::ids::UserId,
            banned: bool,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::room_bans as b;
            use ::diesel::prelude::*;
            let room = name.as_str();
            let found = self.txn(|c| {
                if !crate::common::room_exists!(c, room)? {
                    return Ok(false);
                }
                if banned {
                    ::diesel::insert_into(b::table)
                        .values((b::room.eq(room), b::user_name.eq(user.as_str())))
                        .on_conflict_do_nothing()
                        .execute(c)?;
                } else {
                    ::diesel::delete(
                        b::table
                            .filter(b::room.eq(room))
                            .filter(b::user_name.eq(user.as_str())),
                    )
                    .execute(c)?;
                }
                Ok(true)
            })?;
            if !found {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn is_room_banned(
            &self,
            name: &::im_core::ids::RoomName,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<bool> {
            use crate::schema::room_bans as b;
            use ::diesel::prelude::*;
            self.read(|c| {
                Ok(b::table
                    .filter(b::room.eq(name.as_str()))
                    .filter(b::user_name.eq(user.as_str()))
                    .count()
                    .get_result::<i64>(c)?
                    > 0)
            })
        }

        fn add_room_invite(
            &self,
            name: &::im_core::ids::RoomName,
            user: &::im_core::ids::UserId,
            from: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::room_invites as ri;
            use ::diesel::prelude::*;
            let room = name.as_str();
            let found = self.txn(|c| {
                if !crate::common::room_exists!(c, room)? {
                    return Ok(false);
                }
                ::diesel::insert_into(ri::table)
                    .values((
                        ri::user_name.eq(user.as_str()),
                        ri::room.eq(room),
                        ri::from_user.eq(from.as_str()),
                    ))
                    .on_conflict((ri::user_name, ri::room))
                    .do_update()
                    .set(ri::from_user.eq(from.as_str()))
                    .execute(c)?;
                Ok(true)
            })?;
            if !found {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn room_invites(
            &self,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<Vec<(::im_core::ids::RoomName, ::im_core::ids::UserId)>>
        {
            use crate::schema::room_invites as ri;
            use ::diesel::prelude::*;
            let rows = self.read(|c| {
                Ok(ri::table
                    .filter(ri::user_name.eq(user.as_str()))
                    .order(ri::room.asc())
                    .select((ri::room, ri::from_user))
                    .load::<(String, String)>(c)?)
            })?;
            Ok(rows
                .into_iter()
                .map(|(r, f)| {
                    (
                        ::im_core::ids::RoomName::from_stored(&r),
                        ::im_core::ids::UserId::from_stored(&f),
                    )
                })
                .collect())
        }

        fn suspended_users(&self) -> ::im_core::error::StoreResult<Vec<::im_core::ids::UserId>> {
            use crate::schema::users::dsl as u;
            use ::diesel::prelude::*;
            // `WHERE suspended`, word for word the predicate of the partial
            // index `users_suspended`.
            let names = self.read(|c| {
                Ok(u::users
                    .filter(u::suspended)
                    .order(u::name.asc())
                    .select(u::name)
                    .load::<String>(c)?)
            })?;
            Ok(names
                .iter()
                .map(|s| ::im_core::ids::UserId::from_stored(s))
                .collect())
        }

        fn create_file(
            &self,
            file: &::im_core::store::FileRecord,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::files::dsl as f;
            use ::diesel::prelude::*;
            let size = crate::common::bytes_i64(file.size, "file size")?;
            let received = crate::common::bytes_i64(file.received, "received bytes")?;
            let r = self.write_raw(|c| {
                ::diesel::insert_into(f::files)
                    .values((
                        f::id.eq(&file.id),
                        f::uploader.eq(file.uploader.as_str()),
                        f::name.eq(&file.name),
                        f::mime.eq(&file.mime),
                        f::size.eq(size),
                        f::received.eq(received),
                        f::sha256.eq(file.sha256.as_deref()),
                        f::created_at.eq(file.created_at),
                    ))
                    .execute(c)?;
                Ok(())
            });
            match r {
                Ok(()) => Ok(()),
                Err(e) if e.is_unique_violation() => Err(::im_core::error::StoreError::Conflict),
                Err(e) => Err(e.into()),
            }
        }

        fn file(
            &self,
            id: &str,
        ) -> ::im_core::error::StoreResult<Option<::im_core::store::FileRecord>> {
            use crate::schema::files::dsl as f;
            use ::diesel::prelude::*;
            self.read(|c| {
                f::files
                    .filter(f::id.eq(id))
                    .select((
                        f::id,
                        f::uploader,
                        f::name,
                        f::mime,
                        f::size,
                        f::received,
                        f::sha256,
                        f::created_at,
                    ))
                    .first::<crate::common::FileTuple>(c)
                    .optional()?
                    .map(crate::common::file_record)
                    .transpose()
            })
        }

        fn set_file_received(&self, id: &str, received: u64) -> ::im_core::error::StoreResult<()> {
            use crate::schema::files::dsl as f;
            use ::diesel::prelude::*;
            let received = crate::common::bytes_i64(received, "received bytes")?;
            let n = self.write(|c| {
                Ok(::diesel::update(f::files.filter(f::id.eq(id)))
                    .set(f::received.eq(received))
                    .execute(c)?)
            })?;
            if n == 0 {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn finish_file(&self, id: &str, sha256: &str) -> ::im_core::error::StoreResult<()> {
            use crate::schema::files::dsl as f;
            use ::diesel::prelude::*;
            let n = self.write(|c| {
                Ok(::diesel::update(f::files.filter(f::id.eq(id)))
                    .set(f::sha256.eq(Some(sha256)))
                    .execute(c)?)
            })?;
            if n == 0 {
                return Err(::im_core::error::StoreError::NotFound);
            }
            Ok(())
        }

        fn attach_file(
            &self,
            id: &str,
            conv: &::im_core::ids::ConvId,
        ) -> ::im_core::error::StoreResult<()> {
            use crate::schema::file_convs::dsl as fc;
            use ::diesel::prelude::*;
            let conv = conv.to_string();
            self.write(|c| {
                ::diesel::insert_into(fc::file_convs)
                    .values((fc::file_id.eq(id), fc::conv.eq(&conv)))
                    .on_conflict_do_nothing()
                    .execute(c)?;
                Ok(())
            })
        }

        fn file_convs(
            &self,
            id: &str,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::ids::ConvId>> {
            use crate::schema::file_convs::dsl as fc;
            use ::diesel::prelude::*;
            let names = self.read(|c| {
                Ok(fc::file_convs
                    .filter(fc::file_id.eq(id))
                    .select(fc::conv)
                    .load::<String>(c)?)
            })?;
            let mut v = names
                .iter()
                .map(|n| crate::common::parse_conv(n))
                .collect::<Result<Vec<_>, _>>()?;
            // In `ConvId` order, as the in-memory store lists them (which is
            // not the byte order of their names).
            v.sort();
            Ok(v)
        }

        fn user_file_bytes(
            &self,
            user: &::im_core::ids::UserId,
        ) -> ::im_core::error::StoreResult<u64> {
            use crate::sql::sql;
            use ::diesel::prelude::*;
            use ::diesel::sql_types::Text;
            let total = self.read(|c| {
                Ok(sql::<crate::common::UserFileBytes>()
                    .bind::<Text, _>(user.as_str())
                    .get_result::<crate::common::Total>(c)?
                    .v)
            })?;
            u64::try_from(total).map_err(|_| {
                ::im_core::error::StoreError::Corrupt(format!(
                    "negative file bytes {total} for {user}"
                ))
            })
        }

        fn stale_files(
            &self,
            before: ::im_core::ids::Millis,
        ) -> ::im_core::error::StoreResult<Vec<::im_core::store::FileRecord>> {
            use crate::schema::{file_convs as fc, files as f};
            use ::diesel::dsl::{exists, not};
            use ::diesel::prelude::*;
            // Sorted here rather than by `ORDER BY id`, which would lead
            // SQLite to walk the whole table in id order instead of the
            // `created_at` range.
            let mut v: Vec<::im_core::store::FileRecord> = self.read(|c| {
                f::table
                    .filter(f::created_at.lt(before))
                    .filter(
                        f::sha256
                            .is_null()
                            .or(not(exists(fc::table.filter(fc::file_id.eq(f::id))))),
                    )
                    .select((
                        f::id,
                        f::uploader,
                        f::name,
                        f::mime,
                        f::size,
                        f::received,
                        f::sha256,
                        f::created_at,
                    ))
                    .load::<crate::common::FileTuple>(c)?
                    .into_iter()
                    .map(crate::common::file_record)
                    .collect()
            })?;
            // By id in byte order, as the in-memory store lists them.
            v.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(v)
        }

        fn delete_file(&self, id: &str) -> ::im_core::error::StoreResult<()> {
            use crate::schema::{file_convs as fc, files as f};
            use ::diesel::prelude::*;
            self.txn(|c| {
                ::diesel::delete(fc::table.filter(fc::file_id.eq(id))).execute(c)?;
                ::diesel::delete(f::table.filter(f::id.eq(id))).execute(c)?;
                Ok(())
            })?;
            Ok(())
        }

        fn blob_in_use(&self, sha256: &str) -> ::im_core::error::StoreResult<bool> {
            use crate::schema::files::dsl as f;
            use ::diesel::dsl::exists;
            use ::diesel::prelude::*;
            self.read(|c| {
                Ok(
                    ::diesel::select(exists(f::files.filter(f::sha256.eq(sha256))))
                        .get_result::<bool>(c)?,
                )
            })
        }

        fn user_by_token(
            &self,
            token_hash: &str,
        ) -> ::im_core::error::StoreResult<
            Option<(::im_core::ids::UserId, ::im_core::store::DeviceRecord)>,
        > {
            use crate::schema::devices::dsl as d;
            use ::diesel::prelude::*;
            let row = self.read(|c| {
                Ok(d::devices
                    .filter(d::token_hash.eq(token_hash))
                    .order((d::user_name.asc(), d::device.asc()))
                    .select((
                        d::user_name,
                        (d::device, d::token_hash, d::token_issued_at, d::last_login),
                    ))
                    .first::<(String, crate::common::DeviceTuple)>(c)
                    .optional()?)
            })?;
            Ok(row.map(|(u, d)| {
                (
                    ::im_core::ids::UserId::from_stored(&u),
                    crate::common::device_record(d),
                )
            }))
        }

        fn server_secret(&self) -> ::im_core::error::StoreResult<Vec<u8>> {
            use crate::common::SECRET_KEY;
            use crate::schema::server_settings::dsl as s;
            use ::diesel::prelude::*;
            let stored = self.read(|c| {
                Ok(s::server_settings
                    .filter(s::key.eq(SECRET_KEY))
                    .select(s::value)
                    .first::<Vec<u8>>(c)
                    .optional()?)
            })?;
            let secret = match stored {
                Some(v) => v,
                None => {
                    let fresh = crate::common::fresh_secret()?;
                    // Whoever inserts first wins; everyone reads the winner's.
                    self.write(|c| {
                        ::diesel::insert_into(s::server_settings)
                            .values((s::key.eq(SECRET_KEY), s::value.eq(&fresh)))
                            .on_conflict_do_nothing()
                            .execute(c)?;
                        s::server_settings
                            .filter(s::key.eq(SECRET_KEY))
                            .select(s::value)
                            .first::<Vec<u8>>(c)
                            .optional()?
                            .ok_or_else(|| {
                                crate::error::DbError::Corrupt("server secret vanished".into())
                            })
                    })?
                }
            };
            if secret.len() != crate::common::SECRET_LEN {
                return Err(::im_core::error::StoreError::Corrupt(format!(
                    "server secret is {} bytes, not {}",
                    secret.len(),
                    crate::common::SECRET_LEN
                )));
            }
            Ok(secret)
        }
    };
}

pub(crate) use common_store_methods;

/// Columns of `files`, in table order.
pub(crate) type FileTuple = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
);

pub(crate) fn file_record(t: FileTuple) -> Result<FileRecord, DbError> {
    let bytes = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| DbError::Corrupt(format!("file {}: negative {what} {v}", t.0)))
    };
    Ok(FileRecord {
        size: bytes(t.4, "size")?,
        received: bytes(t.5, "received")?,
        uploader: UserId::from_stored(&t.1),
        name: t.2,
        mime: t.3,
        sha256: t.6,
        created_at: t.7,
        id: t.0,
    })
}

/// A byte count from the API as a database integer. Counts past
/// `i64::MAX` cannot be stored: refused, nothing is written.
pub(crate) fn bytes_i64(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v)
        .map_err(|_| StoreError::Unavailable(format!("{what} {v} is too large to store")))
}

/// The `server_settings` key of [`im_core::Store::server_secret`].
pub(crate) const SECRET_KEY: &str = "link_secret";
/// Bytes in the server secret.
pub(crate) const SECRET_LEN: usize = 32;

/// A new server secret from the operating system's generator.
pub(crate) fn fresh_secret() -> StoreResult<Vec<u8>> {
    use rand::RngCore;
    let mut b = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.try_fill_bytes(&mut b).map_err(|e| {
        StoreError::Unavailable(format!("no randomness for the server secret: {e}"))
    })?;
    Ok(b)
}

crate::sql::statements! {
    /// Bytes a user's files take (announced sizes). Parameter: uploader.
    /// The cast makes the sum a BIGINT on PostgreSQL too (not NUMERIC).
    UserFileBytes = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS v FROM files \
        WHERE uploader = ?";
}

/// One BIGINT named `v`.
#[derive(diesel::QueryableByName)]
pub(crate) struct Total {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub v: i64,
}

crate::sql::statements! {
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
    /// Public rooms with their member counts.
    PublicRooms = "SELECT r.name, r.topic, r.public, r.created_at, \
        (SELECT COUNT(*) FROM room_members m WHERE m.room = r.name) AS members \
        FROM rooms r WHERE r.public";
}

/// `Ok(true)` when the room exists (an expression over a connection).
macro_rules! room_exists {
    ($c:expr, $name:expr) => {{
        use crate::schema::rooms as r;
        use ::diesel::prelude::*;
        r::table
            .filter(r::name.eq($name))
            .count()
            .get_result::<i64>($c)
            .map(|n| n > 0)
    }};
}

pub(crate) use room_exists;

pub(crate) fn room_record(t: (String, String, bool, i64)) -> RoomRecord {
    RoomRecord {
        name: RoomName::from_stored(&t.0),
        topic: t.1,
        public: t.2,
        created_at: t.3,
    }
}

pub(crate) fn room_member(t: (String, bool, i64)) -> RoomMember {
    RoomMember {
        user: UserId::from_stored(&t.0),
        role: if t.1 {
            RoomRole::Owner
        } else {
            RoomRole::Member
        },
        joined_at: t.2,
    }
}

/// A row of [`PublicRooms`].
#[derive(diesel::QueryableByName)]
pub(crate) struct RoomListRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    topic: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    public: bool,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    created_at: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    members: i64,
}

/// Filters and orders public rooms as the in-memory store does: `q`
/// (lowercased) in the name or the lowercased topic; most members first,
/// then by name; at most `limit`.
pub(crate) fn room_listing(
    rows: Vec<RoomListRow>,
    q: Option<&str>,
    limit: usize,
) -> Vec<RoomListing> {
    let q = q.map(str::to_lowercase);
    let mut out: Vec<RoomListing> = rows
        .into_iter()
        .filter(|r| {
            q.as_ref().is_none_or(|q| {
                r.name.contains(q.as_str()) || r.topic.to_lowercase().contains(q.as_str())
            })
        })
        .map(|r| RoomListing {
            members: u64::try_from(r.members).unwrap_or(0),
            room: room_record((r.name, r.topic, r.public, r.created_at)),
        })
        .collect();
    out.sort_by(|a, b| {
        b.members
            .cmp(&a.members)
            .then_with(|| a.room.name.cmp(&b.room.name))
    });
    out.truncate(limit);
    out
}

/// One row of the conversation listing query (same columns on both backends).
#[derive(diesel::QueryableByName)]
pub(crate) struct ConvListRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub last_seq: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub activity: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub read_seq: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub delivered_seq: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub joined_seq: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub own_after_read: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub peer_read_seq: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub m_seq: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub m_sender: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub m_body: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub m_ts: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub m_client_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub m_attachment: Option<String>,
}

crate::sql::statements! {
    /// The conversation listing query; its parameters are user, device,
    /// user, user, user.
    ///
    /// `unread` = messages after the read cursor minus the user's own ones
    /// there, counted on the `(conv_id, sender, seq)` index: the user's own
    /// messages after their read cursor are few (sending moves the cursor).
    ListConvs = LIST_CONVS_SQL;
}

const LIST_CONVS_SQL: &str = "\
SELECT c.name AS name, c.last_seq AS last_seq, c.activity AS activity, cu.read_seq AS read_seq, \
  COALESCE((SELECT d.seq FROM delivered d \
            WHERE d.user_name = ? AND d.device = ? AND d.conv_id = c.id), 0) AS delivered_seq, \
  cu.joined_seq AS joined_seq, \
  (SELECT COUNT(*) FROM messages o \
   WHERE o.conv_id = c.id AND o.sender = ? AND o.seq > cu.read_seq) AS own_after_read, \
  CASE WHEN c.user_a IS NULL THEN NULL ELSE \
    COALESCE((SELECT p.read_seq FROM conv_users p WHERE p.conv_id = c.id AND p.user_name = \
              CASE WHEN c.user_a = ? THEN c.user_b ELSE c.user_a END), 0) END AS peer_read_seq, \
  m.seq AS m_seq, m.sender AS m_sender, m.body AS m_body, m.ts AS m_ts, \
  m.client_id AS m_client_id, m.attachment AS m_attachment \
FROM conv_users cu \
JOIN conversations c ON c.id = cu.conv_id \
LEFT JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq \
WHERE cu.user_name = ? AND cu.member";

/// Turns listing rows into summaries (unsorted).
pub(crate) fn summaries(rows: Vec<ConvListRow>) -> Result<Vec<ConvSummary>, DbError> {
    rows.into_iter()
        .map(|r| {
            let conv = parse_conv(&r.name)?;
            let last_seq = seq_u64(r.last_seq)?;
            let read_seq = seq_u64(r.read_seq)?;
            let own = seq_u64(r.own_after_read)?;
            let unread = last_seq
                .checked_sub(read_seq)
                .and_then(|n| n.checked_sub(own))
                .ok_or_else(|| {
                    DbError::Corrupt(format!("cursors of {} beyond its last message", r.name))
                })?;
            let last = match (r.m_seq, r.m_sender, r.m_body, r.m_ts) {
                (Some(seq), Some(sender), Some(body), Some(ts)) => Some(stored_message(
                    &conv,
                    (seq, sender, body, ts, r.m_client_id, r.m_attachment),
                )?),
                _ => None,
            };
            Ok(ConvSummary {
                last_seq,
                activity: r.activity,
                read_seq,
                // A room member's delivered cursor starts where they joined.
                delivered_seq: seq_u64(r.delivered_seq.max(r.joined_seq))?,
                unread,
                peer_read_seq: r.peer_read_seq.map(seq_u64).transpose()?,
                last,
                conv,
            })
        })
        .collect()
}
