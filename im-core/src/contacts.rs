//! Contact requests, acceptance, removal and blocks.
//!
//! The store holds the truth; after each change the affected users' actors
//! get the new state and the events for their sessions. The reply is
//! always queued before those events.

use crate::error::{ErrorCode, ProtoError};
use crate::hub::Hub;
use crate::ids::{now_millis, UserId};
use crate::protocol::{Encoded, PresenceName, Reply, ServerFrame};
use crate::reply::ReplyTo;
use crate::session::Me;
use crate::store::{ContactState, Relation};
use crate::user::{ContactChanged, GetPresence, GetRoster};

/// What a contact request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Accept,
    Decline,
    Remove,
    Block,
    Unblock,
}

struct Notify {
    peer_state: Option<ContactState>,
    my_state: Option<ContactState>,
    peer_events: Vec<Encoded>,
    my_events: Vec<Encoded>,
    block: Option<bool>,
}

/// Applies `op` between `me` and `peer` and replies.
///
/// Changes between the same two users are serialised (read, write and
/// notify under one per-pair lock), so a `contact.remove` racing a
/// `contact.accept` can never leave the actors' books out of step with
/// the store.
pub(crate) async fn apply(me: &Me, op: Op, peer: &str, reply: ReplyTo) {
    let _pair = match UserId::parse(peer) {
        Some(p) => Some(me.hub.inner.pair_locks.lock(&me.user, &p).await),
        None => None,
    };
    match run(me, op, peer).await {
        Ok(Outcome::Nothing) => reply.ok(Reply::Empty),
        Ok(Outcome::Mutual(peer)) => {
            reply.ok(Reply::Empty);
            make_mutual(me, &peer).await;
        }
        Ok(Outcome::Changed(peer, n)) => {
            reply.ok(Reply::Empty);
            tell(
                &me.hub,
                &me.user,
                &peer,
                n.block,
                me,
                n.my_state,
                n.my_events,
                n.peer_state,
                n.peer_events,
            );
        }
        Err(e) => reply.err(e),
    }
}

enum Outcome {
    Nothing,
    Mutual(UserId),
    Changed(UserId, Notify),
}

async fn run(me: &Me, op: Op, peer: &str) -> Result<Outcome, ProtoError> {
    let h = &me.hub.inner;
    let peer = UserId::parse(peer).ok_or_else(|| ProtoError::not_found("no such user"))?;
    if peer == me.user {
        return Err(ProtoError::bad_request("that is you"));
    }
    let store = h.store.clone();
    let (a, b) = (me.user.clone(), peer.clone());
    let state = h
        .pool
        .run(move || -> Result<_, crate::error::StoreError> {
            if store.user(&b)?.is_none() {
                return Ok(None);
            }
            let rel = store.relation(&a, &b)?;
            let i_block = store.blocks(&a)?.contains(&b);
            let they_block = store.blocks(&b)?.contains(&a);
            Ok(Some((rel, i_block, they_block)))
        })
        .await??;
    let Some((rel, i_block, they_block)) = state else {
        return Err(ProtoError::not_found("no such user"));
    };
    let removed = |who: &UserId| ServerFrame::ContactRemoved { user: who.clone() }.encode();
    let end = |me: &Me, peer: &UserId| Notify {
        peer_state: None,
        my_state: None,
        peer_events: vec![removed(&me.user)],
        my_events: vec![removed(peer)],
        block: None,
    };
    let outcome = match op {
        Op::Add => {
            // Permission before state: a mutual block is `forbidden`.
            if they_block {
                return Err(ProtoError::forbidden(
                    "this user does not accept requests from you",
                ));
            }
            if i_block {
                return Err(ProtoError::conflict("you blocked this user; unblock first"));
            }
            match &rel {
                Relation::Mutual => Outcome::Nothing,
                Relation::Requested { by } if *by == me.user => Outcome::Nothing,
                Relation::Requested { .. } => Outcome::Mutual(peer.clone()),
                Relation::None => Outcome::Changed(
                    peer.clone(),
                    Notify {
                        peer_state: Some(ContactState::PendingIn),
                        my_state: Some(ContactState::PendingOut),
                        peer_events: vec![ServerFrame::ContactRequest {
                            from: me.user.clone(),
                        }
                        .encode()],
                        my_events: vec![],
                        block: None,
                    },
                ),
            }
        }
        Op::Accept => match &rel {
            Relation::Mutual => Outcome::Nothing,
            Relation::Requested { by } if *by == peer => Outcome::Mutual(peer.clone()),
            _ => return Err(ProtoError::not_found("no pending request from this user")),
        },
        Op::Decline => match &rel {
            Relation::Requested { by } if *by == peer => {
                Outcome::Changed(peer.clone(), end(me, &peer))
            }
            _ => return Err(ProtoError::not_found("no pending request from this user")),
        },
        Op::Remove => match &rel {
            Relation::None => Outcome::Nothing,
            _ => Outcome::Changed(peer.clone(), end(me, &peer)),
        },
        Op::Block => {
            let mut n = if rel == Relation::None {
                Notify {
                    peer_state: None,
                    my_state: None,
                    peer_events: vec![],
                    my_events: vec![],
                    block: None,
                }
            } else {
                end(me, &peer)
            };
            n.block = Some(true);
            if i_block && rel == Relation::None {
                Outcome::Nothing
            } else {
                Outcome::Changed(peer.clone(), n)
            }
        }
        Op::Unblock => {
            if !i_block {
                Outcome::Nothing
            } else {
                Outcome::Changed(
                    peer.clone(),
                    Notify {
                        peer_state: None,
                        my_state: None,
                        peer_events: vec![],
                        my_events: vec![],
                        block: Some(false),
                    },
                )
            }
        }
    };
    // Write what was decided.
    let store = h.store.clone();
    let (a, b) = (me.user.clone(), peer.clone());
    let write = match &outcome {
        Outcome::Nothing => None,
        Outcome::Mutual(_) => Some((Some(Relation::Mutual), None)),
        Outcome::Changed(_, n) => {
            let rel = match (op, n.block) {
                (Op::Add, _) => Some(Relation::Requested {
                    by: me.user.clone(),
                }),
                (Op::Unblock, _) => None,
                _ => Some(Relation::None),
            };
            Some((rel, n.block))
        }
    };
    if let Some((rel, block)) = write {
        h.pool
            .run(move || -> Result<(), crate::error::StoreError> {
                if let Some(b_flag) = block {
                    store.set_block(&a, &b, b_flag)?;
                }
                if let Some(r) = rel {
                    store.set_relation(&a, &b, &r)?;
                }
                Ok(())
            })
            .await??;
    }
    Ok(outcome)
}

/// Updates both users' actors. Our own sessions but the requesting one get
/// `my_events`; every session of the peer gets `peer_events`.
#[allow(clippy::too_many_arguments)]
fn tell(
    hub: &Hub,
    user: &UserId,
    peer: &UserId,
    block: Option<bool>,
    me: &Me,
    my_state: Option<ContactState>,
    my_events: Vec<Encoded>,
    peer_state: Option<ContactState>,
    peer_events: Vec<Encoded>,
) {
    me.user_addr.do_send(ContactChanged {
        peer: peer.clone(),
        state: my_state,
        we_block: block,
        they_block: None,
        events: my_events,
        except: Some(me.session),
    });
    if let Some(l) = hub.inner.users.get(peer) {
        l.addr.do_send(ContactChanged {
            peer: user.clone(),
            state: peer_state,
            we_block: None,
            they_block: block,
            events: peer_events,
            except: None,
        });
    }
}

/// The current presence frame of `user`: from their actor when online,
/// else offline with `last_seen` from the store.
async fn presence_of(hub: &Hub, user: &UserId) -> ServerFrame {
    if let Some(l) = hub.inner.users.get(user) {
        if let Ok(Some((status, note))) = l.addr.send(GetPresence).await {
            return ServerFrame::Presence {
                user: user.clone(),
                status: status.into(),
                note,
                last_seen: None,
            };
        }
    }
    let store = hub.inner.store.clone();
    let u = user.clone();
    let last_seen = hub
        .inner
        .pool
        .run(move || store.user(&u))
        .await
        .ok()
        .and_then(|r| r.ok().flatten())
        .and_then(|r| r.last_seen);
    ServerFrame::Presence {
        user: user.clone(),
        status: PresenceName::Offline,
        note: None,
        last_seen,
    }
}

/// Both users' sessions get `contact.added`, then each other's presence.
async fn make_mutual(me: &Me, peer: &UserId) {
    let mine = presence_of(&me.hub, &me.user).await.encode();
    let theirs = presence_of(&me.hub, peer).await.encode();
    me.user_addr.do_send(ContactChanged {
        peer: peer.clone(),
        state: Some(ContactState::Mutual),
        we_block: None,
        they_block: None,
        events: vec![
            ServerFrame::ContactAdded { user: peer.clone() }.encode(),
            theirs,
        ],
        except: None,
    });
    if let Some(l) = me.hub.inner.users.get(peer) {
        l.addr.do_send(ContactChanged {
            peer: me.user.clone(),
            state: Some(ContactState::Mutual),
            we_block: None,
            they_block: None,
            events: vec![
                ServerFrame::ContactAdded {
                    user: me.user.clone(),
                }
                .encode(),
                mine,
            ],
            except: None,
        });
    }
    let _ = now_millis;
}

/// `contact.blocks`.
pub(crate) async fn blocks(me: &Me) -> Result<Reply, ProtoError> {
    let store = me.hub.inner.store.clone();
    let u = me.user.clone();
    let users = me.hub.inner.pool.run(move || store.blocks(&u)).await??;
    Ok(Reply::Users { users })
}

/// `contact.list`: the same entries as the roster.
pub(crate) async fn list(me: &Me) -> Result<Reply, ProtoError> {
    let contacts = me
        .user_addr
        .send(GetRoster)
        .await
        .map_err(|_| ProtoError::new(ErrorCode::Unavailable, "try again"))??;
    Ok(Reply::Contacts { contacts })
}
