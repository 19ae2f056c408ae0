//! Contact requests, acceptance, removal and blocks.
//!
//! The store holds the truth. A change is read, decided, written and then
//! handed to both users' actors, and the `ok` is sent only once both actors
//! have applied it (docs/PROTOCOL.md: "contact changes take effect with their
//! `ok`, for both users"): a `msg.send` either user sends after the `ok`
//! is checked against the new state. Events for the asking session follow
//! its `ok`; the other sessions may see theirs first.

use crate::actors::user::{ContactChanged, GetPresence, GetRoster};
use crate::actors::Core;
use crate::error::{ErrorCode, ProtoError};
use crate::handlers::Ctx;
use crate::ids::UserId;
use crate::protocol::{Encoded, Reply, ServerFrame};
use crate::reply::ReplyTo;
use crate::services::Services;
use crate::store::{self, ContactState, Relation};

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

/// The change decided for one request: what to store, and what each side's
/// actor learns.
#[derive(Default)]
struct Change {
    /// New relation to store (`None`: unchanged).
    relation: Option<Relation>,
    /// New "I block the peer" flag (`None`: unchanged).
    block: Option<bool>,
    /// My new state towards the peer (`None`: no contact).
    my_state: Option<ContactState>,
    /// The peer's new state towards me.
    peer_state: Option<ContactState>,
    /// Events for my sessions.
    my_events: Vec<Encoded>,
    /// Events for the peer's sessions.
    peer_events: Vec<Encoded>,
    /// The two became mutual: each side also gets the other's presence.
    mutual: bool,
}

/// Where the two users stand before the request.
struct Standing {
    peer: UserId,
    rel: Relation,
    i_block: bool,
    they_block: bool,
    /// Requests I sent that wait for an answer (counted for `Add` only).
    pending_out: usize,
}

/// Applies `op` between `me` and `peer` and replies.
///
/// Changes between the same two users are serialised (read, write and
/// notify under one per-pair lock), so a `contact.remove` racing a
/// `contact.accept` can never leave the actors' books out of step with
/// the store.
pub(crate) async fn apply(me: Ctx, op: Op, peer: String, reply: ReplyTo) {
    // A request counts against `limits.max_pending_requests`: one add of
    // this user's at a time counts and stores.
    let _mine = match op {
        Op::Add => Some(me.svc.user_locks.lock(me.user.clone()).await),
        _ => None,
    };
    let _pair = match UserId::parse(&peer) {
        Some(p) => Some(me.svc.pair_locks.lock_pair(&me.user, &p).await),
        None => None,
    };
    let decided = match standing(&me, &peer, op == Op::Add).await {
        Ok(st) => decide(&me, op, &st).map(|c| (st.peer, c)),
        Err(e) => Err(e),
    };
    match decided {
        Ok((_, None)) => reply.ok(Reply::Empty),
        Ok((peer, Some(change))) => {
            let (a, b) = (me.user.clone(), peer.clone());
            let (rel, block, origin) = (change.relation.clone(), change.block, me.svc.origin);
            let stored = me
                .svc
                .db(move |s| {
                    if let Some(flag) = block {
                        s.set_block(&a, &b, flag)?;
                    }
                    if let Some(r) = rel {
                        s.set_relation(&a, &b, &r)?;
                    }
                    Services::publish(origin, s, &store::Change::Contact { a, b })
                })
                .await;
            // Counted and stored: the next add may count.
            drop(_mine);
            match stored {
                Ok(()) => {
                    me.svc.changed().await;
                    tell(&me, &peer, change, reply).await
                }
                Err(e) => reply.err(e),
            }
        }
        Err(e) => reply.err(e),
    }
}

/// Reads the relation and blocks between `me` and `peer`.
async fn standing(me: &Ctx, peer: &str, count_pending: bool) -> Result<Standing, ProtoError> {
    let peer = UserId::parse(peer).ok_or_else(|| ProtoError::not_found("no such user"))?;
    if peer == me.user {
        return Err(ProtoError::bad_request("that is you"));
    }
    let (a, b) = (me.user.clone(), peer.clone());
    let state = me
        .svc
        .db(move |s| {
            if s.user(&b)?.is_none() {
                return Ok(None);
            }
            let rel = s.relation(&a, &b)?;
            let i_block = s.blocks(&a)?.contains(&b);
            let they_block = s.blocks(&b)?.contains(&a);
            let pending_out = match count_pending {
                true => s
                    .contacts(&a)?
                    .iter()
                    .filter(|(_, st)| *st == ContactState::PendingOut)
                    .count(),
                false => 0,
            };
            Ok(Some((rel, i_block, they_block, pending_out)))
        })
        .await?;
    let (rel, i_block, they_block, pending_out) =
        state.ok_or_else(|| ProtoError::not_found("no such user"))?;
    Ok(Standing {
        peer,
        rel,
        i_block,
        they_block,
        pending_out,
    })
}

/// What `op` does from `st`; `None` when nothing changes (still `ok`).
fn decide(me: &Ctx, op: Op, st: &Standing) -> Result<Option<Change>, ProtoError> {
    let no_request = || ProtoError::not_found("no pending request from this user");
    let asked_by_peer = matches!(&st.rel, Relation::Requested { by } if *by == st.peer);
    Ok(match op {
        Op::Add => return add(me, st),
        Op::Accept if st.rel == Relation::Mutual => None,
        Op::Accept if asked_by_peer => Some(mutual()),
        Op::Accept => return Err(no_request()),
        Op::Decline if asked_by_peer => Some(end(me, st)),
        Op::Decline => return Err(no_request()),
        Op::Remove if st.rel == Relation::None => None,
        Op::Remove => Some(end(me, st)),
        Op::Block if st.i_block && st.rel == Relation::None => None,
        Op::Block if st.rel == Relation::None => Some(Change {
            block: Some(true),
            ..Change::default()
        }),
        Op::Block => Some(Change {
            block: Some(true),
            ..end(me, st)
        }),
        Op::Unblock if !st.i_block => None,
        Op::Unblock => Some(Change {
            block: Some(false),
            ..Change::default()
        }),
    })
}

/// `contact.add`: a request, or the acceptance of the peer's request.
fn add(me: &Ctx, st: &Standing) -> Result<Option<Change>, ProtoError> {
    let max = me.svc.config.limits.max_pending_requests;
    // Permission before state: a mutual block is `forbidden`.
    if st.they_block {
        return Err(ProtoError::forbidden(
            "this user does not accept requests from you",
        ));
    }
    if st.i_block {
        return Err(ProtoError::conflict("you blocked this user; unblock first"));
    }
    Ok(match &st.rel {
        Relation::Mutual => None,
        Relation::Requested { by } if *by == me.user => None,
        Relation::Requested { .. } => Some(mutual()),
        Relation::None if st.pending_out >= max => {
            return Err(ProtoError::rate_limited(format!(
                "{max} of your contact requests wait for an answer"
            )))
        }
        Relation::None => Some(Change {
            relation: Some(Relation::Requested {
                by: me.user.clone(),
            }),
            my_state: Some(ContactState::PendingOut),
            peer_state: Some(ContactState::PendingIn),
            peer_events: vec![ServerFrame::ContactRequest {
                from: me.user.clone(),
            }
            .encode()],
            ..Change::default()
        }),
    })
}

fn mutual() -> Change {
    Change {
        relation: Some(Relation::Mutual),
        my_state: Some(ContactState::Mutual),
        peer_state: Some(ContactState::Mutual),
        mutual: true,
        ..Change::default()
    }
}

/// The contact or request ends: both sides get `contact.removed`.
fn end(me: &Ctx, st: &Standing) -> Change {
    let removed = |who: &UserId| ServerFrame::ContactRemoved { user: who.clone() }.encode();
    Change {
        relation: Some(Relation::None),
        my_events: vec![removed(&st.peer)],
        peer_events: vec![removed(&me.user)],
        ..Change::default()
    }
}

/// Hands a stored change to both users' actors, waits until both applied
/// it, then replies `ok` and sends the asking session its events.
async fn tell(me: &Ctx, peer: &UserId, mut c: Change, reply: ReplyTo) {
    if c.mutual {
        let mine = presence_of(&me.svc, &me.user).await.encode();
        let theirs = presence_of(&me.svc, peer).await.encode();
        let added = |u: &UserId| ServerFrame::ContactAdded { user: u.clone() }.encode();
        c.my_events = vec![added(peer), theirs];
        c.peer_events = vec![added(&me.user), mine];
    }
    let mine = ContactChanged {
        peer: peer.clone(),
        state: c.my_state,
        we_block: c.block,
        they_block: None,
        events: Vec::new(),
        except: None,
    };
    let theirs = ContactChanged {
        peer: me.user.clone(),
        state: c.peer_state,
        we_block: None,
        they_block: c.block,
        events: c.peer_events.clone(),
        except: None,
    };
    // A peer without a live actor loads the stored state when it starts.
    for frame in &c.peer_events {
        me.svc.emit_remote(std::iter::once(peer), frame);
    }
    let peer_actor = me.svc.actors.users.get(peer);
    let peer_done = async {
        if let Some(l) = peer_actor {
            let _ = l.addr.send(theirs).await;
        }
    };
    let (mine_done, ()) = futures_util::join!(me.user_addr.send(mine), peer_done);
    if mine_done.is_err() {
        return reply.err(ProtoError::new(ErrorCode::Unavailable, "try again"));
    }
    reply.ok(Reply::Empty);
    // The mutual pair's events go to every session of mine (the asking one
    // included); other changes' events to my other sessions only.
    let except = (!c.mutual).then_some(me.session);
    for frame in &c.my_events {
        me.svc.emit_to(std::iter::once(&me.user), frame, except);
    }
}

/// The current presence frame of `user`: from their actor when online,
/// else offline with `last_seen` from the store.
async fn presence_of(svc: &Core, user: &UserId) -> ServerFrame {
    if let Some(l) = svc.actors.users.get(user) {
        if let Ok(Some((status, note))) = l.addr.send(GetPresence).await {
            return ServerFrame::online(user.clone(), status, note);
        }
    }
    if let Some((status, note)) = svc.remote_presence(user) {
        return ServerFrame::online(user.clone(), status, note);
    }
    let u = user.clone();
    let last_seen = svc
        .db(move |s| s.user(&u))
        .await
        .ok()
        .flatten()
        .and_then(|r| r.last_seen);
    ServerFrame::offline(user.clone(), last_seen)
}

/// `contact.blocks`.
pub(crate) async fn blocks(me: &Ctx) -> Result<Reply, ProtoError> {
    let u = me.user.clone();
    let users = me.svc.db(move |s| s.blocks(&u)).await?;
    Ok(Reply::Users { users })
}

/// `contact.list`: the same entries as the roster.
pub(crate) async fn list(me: &Ctx) -> Result<Reply, ProtoError> {
    let contacts = me
        .user_addr
        .send(GetRoster)
        .await
        .map_err(|_| ProtoError::new(ErrorCode::Unavailable, "try again"))??;
    Ok(Reply::Contacts { contacts })
}
