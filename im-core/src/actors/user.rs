//! `UserActor`: one per user with at least one live session.
//!
//! Owns the user's sessions (multi-device), contact book, blocks and
//! presence. Fans presence out to mutual contacts' actors, forwards
//! deliveries to every session, and checks direct-message permissions
//! against the contact book it keeps in step with the store. While a
//! session is still receiving its login replay, live events for it are held
//! here (bounded) and released after `synced`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::conversation::Submit;
use crate::actors::order::{Held, Order, Ready};
use crate::actors::typing::TypingThrottle;
use crate::actors::Core;
use crate::error::ProtoError;
use crate::ids::{now_millis, ConvId, Millis, SessionId, UserId};
use crate::protocol::{
    ContactEntry, ContactStateName, Encoded, PresenceName, Reply, ServerFrame, Status,
};
use crate::reply::ReplyTo;
use crate::store::{ContactState, Relation};
use crate::transport::{CloseReason, Outbox};

struct Slot {
    device: String,
    /// Hash of the token the session logged in with.
    token_hash: Arc<str>,
    outbox: Outbox,
    /// Closes the session.
    kick: Recipient<Kick>,
    /// False until the login replay is written.
    synced: bool,
    /// Events held until `synced`: (conv, seq) for messages, the frame.
    held: Vec<(Option<(ConvId, u64)>, Encoded)>,
}

/// One online user.
pub struct UserActor {
    svc: Core,
    user: UserId,
    sessions: HashMap<SessionId, Slot>,
    contacts: HashMap<UserId, ContactState>,
    blocks: HashSet<UserId>,
    blocked_by: HashSet<UserId>,
    /// Users known to exist (saves a store lookup per message when
    /// `policy.dm_requires_contact` is off).
    known: HashSet<UserId>,
    status: Status,
    note: Option<String>,
    /// Loading the contact book failed: refuse sessions and retire.
    failed: bool,
    /// To whom a `typing` was last relayed, and when.
    typing: TypingThrottle<UserId>,
    /// In a cluster: each conversation's deliveries put in `seq` order.
    order: Option<Box<Order>>,
}

impl UserActor {
    pub(crate) fn new(svc: Core, user: UserId) -> UserActor {
        UserActor {
            user,
            sessions: HashMap::new(),
            contacts: HashMap::new(),
            blocks: HashSet::new(),
            blocked_by: HashSet::new(),
            known: HashSet::new(),
            status: Status::Online,
            note: None,
            failed: false,
            typing: TypingThrottle::default(),
            order: svc.clustered().then(Box::default),
            svc,
        }
    }

    fn presence_frame(&self) -> ServerFrame {
        ServerFrame::online(self.user.clone(), self.status, self.note.clone())
    }

    fn hold_limit(&self) -> usize {
        self.svc.config.limits.sync_buffer
    }

    fn emit_to(slot: &mut Slot, key: Option<(ConvId, u64)>, frame: &Encoded, limit: usize) {
        if slot.synced {
            slot.outbox.push(frame.clone());
        } else if slot.held.len() < limit {
            slot.held.push((key, frame.clone()));
        } else {
            slot.outbox.kill(CloseReason::TooSlow);
        }
    }

    /// Sends a frame to every session except `except`.
    fn emit(&mut self, frame: &Encoded, except: Option<SessionId>) {
        let limit = self.hold_limit();
        for (id, slot) in self.sessions.iter_mut() {
            if Some(*id) != except {
                Self::emit_to(slot, None, frame, limit);
            }
        }
    }

    /// Tells every online mutual contact about our presence, on every
    /// node.
    fn broadcast_presence(&self, frame: &Encoded) {
        let mutual = self
            .contacts
            .iter()
            .filter(|(_, state)| **state == ContactState::Mutual)
            .map(|(peer, _)| peer);
        self.svc.presence_to(mutual, &self.user, frame);
    }

    /// Tells the other nodes of a cluster how we are online here.
    fn announce(&self) {
        let online = (!self.sessions.is_empty()).then(|| (self.status, self.note.clone()));
        self.svc.announce(&self.user, online);
    }

    /// Checks whether we may message or type to `to`; the order of checks
    /// is the protocol's (not_found before forbidden).
    fn dm_check(&self, to: &UserId) -> DmCheck {
        if self.blocks.contains(to) || self.blocked_by.contains(to) {
            return DmCheck::Forbidden;
        }
        match self.contacts.get(to) {
            Some(ContactState::Mutual) => DmCheck::Allowed,
            Some(_) if self.svc.config.policy.dm_requires_contact => DmCheck::Forbidden,
            Some(_) => DmCheck::Allowed,
            None if self.known.contains(to) => {
                if self.svc.config.policy.dm_requires_contact {
                    DmCheck::Forbidden
                } else {
                    DmCheck::Allowed
                }
            }
            None => DmCheck::Lookup,
        }
    }

    /// Resolves a direct message or `typing` the contact book refuses, or
    /// cannot answer, against the store, and updates the book from it. The
    /// store is the truth: a contact accepted through another server
    /// process is seen here, so a send after an accept's `ok` is never
    /// refused for want of the contact. Runs under `ctx.wait`, so this
    /// user's later sends stay in order behind it.
    fn dm_resolve<F>(&mut self, to: UserId, ctx: &mut Context<Self>, then: F)
    where
        F: FnOnce(&mut Self, Result<(), ProtoError>, &mut Context<Self>) + 'static,
    {
        let svc = self.svc.clone();
        let (me, t) = (self.user.clone(), to.clone());
        let f = async move {
            svc.db(move |s| {
                if s.user(&t)?.is_none() {
                    return Ok(None);
                }
                let rel = s.relation(&me, &t)?;
                let we_block = s.blocks(&me)?.contains(&t);
                let they_block = s.blocks(&t)?.contains(&me);
                Ok(Some((rel, we_block, they_block)))
            })
            .await
        };
        ctx.wait(f.into_actor(self).map(move |r, act, ctx| {
            let r = match r {
                Ok(Some((rel, we_block, they_block))) => {
                    act.learn(&to, &rel, we_block, they_block);
                    match act.dm_check(&to) {
                        DmCheck::Allowed => Ok(()),
                        _ => Err(ProtoError::forbidden("not allowed to message this user")),
                    }
                }
                Ok(None) => Err(ProtoError::not_found("no such user")),
                Err(e) => Err(e),
            };
            then(act, r, ctx)
        }));
    }

    /// Puts what the store says about `peer` into the contact book.
    fn learn(&mut self, peer: &UserId, rel: &Relation, we_block: bool, they_block: bool) {
        let state = match rel {
            Relation::Mutual => Some(ContactState::Mutual),
            Relation::Requested { by } if *by == self.user => Some(ContactState::PendingOut),
            Relation::Requested { .. } => Some(ContactState::PendingIn),
            Relation::None => None,
        };
        match state {
            Some(s) => self.contacts.insert(peer.clone(), s),
            None => self.contacts.remove(peer),
        };
        let set = |on: bool, set: &mut HashSet<UserId>| {
            if on {
                set.insert(peer.clone())
            } else {
                set.remove(peer)
            }
        };
        set(we_block, &mut self.blocks);
        set(they_block, &mut self.blocked_by);
        self.known.insert(peer.clone());
    }

    fn go_offline(&mut self, ctx: &mut Context<Self>) {
        crate::telemetry::user_online(-1.0);
        self.svc.set_online(&self.user, false);
        self.announce();
        // Still online on another node: contacts keep seeing us online.
        let elsewhere = self.svc.online_elsewhere(&self.user);
        let now = now_millis();
        let frame = ServerFrame::offline(self.user.clone(), Some(now)).encode();
        let svc = self.svc.clone();
        let user = self.user.clone();
        let f = async move {
            if let Err(e) = svc.db(move |s| s.set_last_seen(&user, now)).await {
                tracing::warn!(error = %e, "could not record last_seen");
            }
            svc.online_users.fetch_sub(1, Ordering::AcqRel);
        };
        // `last_seen` is stored before anyone hears we are offline, so a
        // roster read after the `presence` shows it (nothing is handled
        // meanwhile: a roster asking us waits for the write). We leave the
        // directory only after that, so a quick new login finds this actor
        // instead of starting one whose `online` our `offline` would
        // overtake.
        ctx.wait(f.into_actor(self).map(move |(), act, ctx| {
            if !elsewhere {
                act.broadcast_presence(&frame)
            }
            act.try_retire(ctx);
        }));
    }

    fn try_retire(&mut self, ctx: &mut Context<Self>) {
        if !self.sessions.is_empty() {
            return;
        }
        if self.svc.actors.users.try_retire(&self.user, &ctx.address()) {
            // Stop after whatever is already queued for us.
            ctx.address().do_send(Retire);
        } else {
            ctx.run_later(Duration::from_millis(200), |act, ctx| act.try_retire(ctx));
        }
    }
}

enum DmCheck {
    Allowed,
    Forbidden,
    Lookup,
}

impl Actor for UserActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Load the contact book before handling anything.
        let svc = self.svc.clone();
        let user = self.user.clone();
        let f = async move {
            svc.db(move |store| {
                Ok::<_, crate::error::StoreError>((
                    store.contacts(&user)?,
                    store.blocks(&user)?,
                    store.blocked_by(&user)?,
                ))
            })
            .await
        };
        ctx.wait(f.into_actor(self).map(|r, act, ctx| match r {
            Ok((contacts, blocks, blocked_by)) => {
                act.contacts = contacts.into_iter().collect();
                act.blocks = blocks.into_iter().collect();
                act.blocked_by = blocked_by.into_iter().collect();
            }
            Err(e) => {
                tracing::error!(user = %act.user, error = %e, "could not load contacts");
                act.failed = true;
                act.try_retire(ctx);
            }
        }));
    }
}

/// A session logged in: registers it (held until `synced`) and returns the
/// roster.
#[derive(Message)]
#[rtype(result = "Result<Vec<ContactEntry>, ProtoError>")]
pub(crate) struct Attach {
    pub session: SessionId,
    pub device: String,
    pub outbox: Outbox,
    /// How to close the session (revoked device, suspension).
    pub kick: Recipient<Kick>,
    /// Hash of the token the session holds.
    pub token_hash: Arc<str>,
    /// [`Core::revocation_epoch`] before the login checked its
    /// credentials: if it moved since, the token is checked again.
    pub epoch: u64,
}

impl Handler<Attach> for UserActor {
    type Result = ResponseActFuture<Self, Result<Vec<ContactEntry>, ProtoError>>;

    fn handle(&mut self, msg: Attach, ctx: &mut Context<Self>) -> Self::Result {
        if self.failed {
            self.try_retire(ctx);
            return Box::pin(fut::ready(Err(ProtoError::new(
                crate::error::ErrorCode::Unavailable,
                "could not load your contacts, try again",
            ))));
        }
        let first = self.sessions.is_empty();
        // A revocation from now on finds the slot and closes it; one made
        // since the login checked its credentials moved the epoch, and
        // the token is checked again before the roster.
        let recheck = (self.svc.revocation_epoch() != msg.epoch)
            .then(|| self.still_valid(msg.token_hash.clone()));
        self.sessions.insert(
            msg.session,
            Slot {
                device: msg.device,
                outbox: msg.outbox,
                kick: msg.kick,
                token_hash: msg.token_hash,
                synced: false,
                held: Vec::new(),
            },
        );
        if first {
            crate::telemetry::user_online(1.0);
            self.svc.online_users.fetch_add(1, Ordering::AcqRel);
            self.svc.set_online(&self.user, true);
            // Online on another node already: same status, and contacts
            // know.
            match self.svc.remote_presence(&self.user) {
                Some((status, note)) => (self.status, self.note) = (status, note),
                None => {
                    (self.status, self.note) = (Status::Online, None);
                    let f = self.presence_frame().encode();
                    self.broadcast_presence(&f);
                }
            }
            self.announce();
        }
        // A session whose roster cannot be read never logs in: forget it
        // as its detach would.
        let session = msg.session;
        let roster =
            match recheck {
                None => self.roster(),
                Some(check) => Box::pin(fut::wrap_future::<_, Self>(check).then(
                    |valid, act, _| match valid {
                        Ok(()) => act.roster(),
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    },
                )),
            };
        Box::pin(roster.map(move |r, act, ctx| {
            if r.is_err() && act.sessions.remove(&session).is_some() && act.sessions.is_empty() {
                act.go_offline(ctx);
            }
            r
        }))
    }
}

impl UserActor {
    /// Whether the token hashing to `token_hash` still signs this user in,
    /// as a token login would check it.
    fn still_valid(
        &self,
        token_hash: Arc<str>,
    ) -> impl std::future::Future<Output = Result<(), ProtoError>> + 'static {
        let (svc, user) = (self.svc.clone(), self.user.clone());
        async move {
            svc.token_holder(user, token_hash.to_string(), now_millis())
                .await
                .map(drop)
        }
    }
}

/// The current roster (`contact.list`).
#[derive(Message)]
#[rtype(result = "Result<Vec<ContactEntry>, ProtoError>")]
pub(crate) struct GetRoster;

impl Handler<GetRoster> for UserActor {
    type Result = ResponseActFuture<Self, Result<Vec<ContactEntry>, ProtoError>>;

    fn handle(&mut self, _: GetRoster, _: &mut Context<Self>) -> Self::Result {
        self.roster()
    }
}

impl UserActor {
    /// Contacts with presence: live contacts are asked, the others' last_seen
    /// is read from the store. Sorted by user.
    fn roster(&self) -> ResponseActFuture<Self, Result<Vec<ContactEntry>, ProtoError>> {
        let mut asks = Vec::new();
        let mut entries = Vec::new();
        for (peer, state) in &self.contacts {
            match state {
                ContactState::Mutual => {
                    let live = self.svc.actors.users.get(peer);
                    asks.push((peer.clone(), live.map(|l| l.addr)));
                }
                s => entries.push(ContactEntry {
                    user: peer.clone(),
                    state: if *s == ContactState::PendingOut {
                        ContactStateName::PendingOut
                    } else {
                        ContactStateName::PendingIn
                    },
                    presence: None,
                    note: None,
                    last_seen: None,
                }),
            }
        }
        let svc = self.svc.clone();
        Box::pin(
            async move {
                let mut offline = Vec::new();
                for (peer, addr) in asks {
                    let p = match addr {
                        Some(a) => a.send(GetPresence).await.ok().flatten(),
                        None => None,
                    }
                    .or_else(|| svc.remote_presence(&peer));
                    match p {
                        Some((status, note)) => entries.push(ContactEntry {
                            user: peer,
                            state: ContactStateName::Mutual,
                            presence: Some(status.into()),
                            note,
                            last_seen: None,
                        }),
                        None => offline.push(peer),
                    }
                }
                let seen: Vec<(UserId, Option<Millis>)> = svc
                    .db(move |store| {
                        Ok(offline
                            .into_iter()
                            .map(|u| {
                                let ls = store.user(&u).ok().flatten().and_then(|r| r.last_seen);
                                (u, ls)
                            })
                            .collect())
                    })
                    .await?;
                for (user, last_seen) in seen {
                    entries.push(ContactEntry {
                        user,
                        state: ContactStateName::Mutual,
                        presence: Some(PresenceName::Offline),
                        note: None,
                        last_seen,
                    });
                }
                entries.sort_by(|a, b| a.user.cmp(&b.user));
                Ok(entries)
            }
            .into_actor(self),
        )
    }
}

/// A session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Detach {
    pub session: SessionId,
}

impl Handler<Detach> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Detach, ctx: &mut Context<Self>) {
        if self.sessions.remove(&msg.session).is_some() && self.sessions.is_empty() {
            self.go_offline(ctx);
        }
    }
}

/// A session's login replay and `synced` are written: hand over the events
/// held meanwhile (minus messages the replay already carried). Returns
/// `None`, and from then on delivers live, once nothing is held; the
/// session writes what it gets (waiting for room) and asks again.
#[derive(Message)]
#[rtype(result = "Option<Vec<Encoded>>")]
pub(crate) struct Synced {
    pub session: SessionId,
    pub replayed: Replayed,
}

impl Handler<Synced> for UserActor {
    type Result = Option<Vec<Encoded>>;

    fn handle(&mut self, msg: Synced, _: &mut Context<Self>) -> Self::Result {
        if let Some(order) = self.order.as_mut() {
            for (conv, seq) in &msg.replayed {
                order.seed(conv, *seq);
            }
        }
        let slot = self.sessions.get_mut(&msg.session)?;
        if slot.held.is_empty() {
            slot.synced = true;
            return None;
        }
        let held = std::mem::take(&mut slot.held)
            .into_iter()
            .filter(|(key, _)| {
                key.as_ref()
                    .is_none_or(|(conv, seq)| msg.replayed.get(conv).is_none_or(|r| seq > r))
            })
            .map(|(_, f)| f)
            .collect();
        Some(held)
    }
}

/// Highest seq replayed per conversation, so live copies already sent are
/// not sent again after `synced`.
pub(crate) type Replayed = HashMap<ConvId, u64>;

/// A message to deliver to every session (but `except`, the sending one).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Deliver {
    pub conv: ConvId,
    pub seq: u64,
    pub frame: Encoded,
    pub except: Option<SessionId>,
}

impl Handler<Deliver> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        let Some(order) = self.order.as_mut() else {
            return self.hand_out(&msg.conv, msg.seq, &msg.frame, msg.except);
        };
        let held = Held {
            frame: msg.frame,
            except: msg.except,
        };
        let ready = order.arrive(&msg.conv, msg.seq, held);
        self.hand_out_ready(msg.conv, ready, ctx);
    }
}

impl UserActor {
    /// A message to every session but `except`.
    fn hand_out(&mut self, conv: &ConvId, seq: u64, frame: &Encoded, except: Option<SessionId>) {
        let limit = self.hold_limit();
        for (id, slot) in self.sessions.iter_mut() {
            if Some(*id) != except {
                Self::emit_to(slot, Some((conv.clone(), seq)), frame, limit);
            }
        }
    }

    /// Hands out what is in order; a gap that just opened is given a
    /// moment to close through the bus, then filled from the store.
    fn hand_out_ready(&mut self, conv: ConvId, (ready, gap): Ready, ctx: &mut Context<Self>) {
        for (seq, h) in ready {
            self.hand_out(&conv, seq, &h.frame, h.except);
        }
        if gap.is_some() {
            ctx.run_later(GAP_WAIT, move |act, ctx| act.fill_gap(conv, ctx));
        }
    }

    fn fill_gap(&mut self, conv: ConvId, ctx: &mut Context<Self>) {
        // A new stream's first wait: it starts where the arrivals do.
        if let Some(ready) = self.order.as_mut().and_then(|o| o.settle(&conv)) {
            return self.hand_out_ready(conv, ready, ctx);
        }
        let Some((after, before)) = self.order.as_ref().and_then(|o| o.open_gap(&conv)) else {
            return;
        };
        let (c, user) = (conv.clone(), self.user.clone());
        let take = (before - after - 1).min(1000) as usize;
        let svc = self.svc.clone();
        let fetch = async move {
            svc.db(move |s| {
                let msgs = s.messages_after(&c, after, take)?;
                // Room messages from before the user joined are not theirs.
                let since = match &c {
                    ConvId::Room(r) => s
                        .room_members(r)?
                        .into_iter()
                        .find(|m| m.user == user)
                        .map_or(i64::MAX, |m| m.joined_at),
                    ConvId::Direct(..) => 0,
                };
                let msgs = msgs
                    .into_iter()
                    .filter(|m| m.seq < before && m.ts >= since)
                    .collect();
                crate::files::with_metas(s, msgs)
            })
            .await
        };
        ctx.spawn(fetch.into_actor(self).map(move |r, act, ctx| {
            let found = match r {
                Ok((msgs, metas)) => msgs
                    .into_iter()
                    .map(|m| {
                        let seq = m.seq;
                        let frame = crate::files::msg_frame(m, &metas).encode();
                        (
                            seq,
                            Held {
                                frame,
                                except: None,
                            },
                        )
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e.message, "gap not filled from the store");
                    Vec::new()
                }
            };
            let Some(order) = act.order.as_mut() else {
                return;
            };
            let ready = order.filled(&conv, found);
            act.hand_out_ready(conv, ready, ctx);
        }));
    }
}

/// How long a gap in a conversation's deliveries may stay open before it
/// is filled from the store.
const GAP_WAIT: Duration = Duration::from_millis(100);

/// Any other event for this user's sessions.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Emit {
    pub frame: Encoded,
    pub except: Option<SessionId>,
}

impl Handler<Emit> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Emit, _: &mut Context<Self>) {
        self.emit(&msg.frame, msg.except);
    }
}

/// A contact's presence changed; shown only while the contact is mutual.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PresenceOf {
    pub from: UserId,
    pub frame: Encoded,
}

impl Handler<PresenceOf> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: PresenceOf, _: &mut Context<Self>) {
        if self.contacts.get(&msg.from) == Some(&ContactState::Mutual) {
            self.emit(&msg.frame, None);
        }
    }
}

/// This user's status and note, when online.
#[derive(Message)]
#[rtype(result = "Option<(Status, Option<String>)>")]
pub(crate) struct GetPresence;

impl Handler<GetPresence> for UserActor {
    type Result = Option<(Status, Option<String>)>;

    fn handle(&mut self, _: GetPresence, _: &mut Context<Self>) -> Self::Result {
        (!self.sessions.is_empty()).then(|| (self.status, self.note.clone()))
    }
}

/// `presence.set` from one of our sessions.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetPresence {
    pub status: Status,
    pub note: Option<String>,
    pub session: SessionId,
    pub reply: ReplyTo,
}

impl Handler<SetPresence> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: SetPresence, _: &mut Context<Self>) {
        let changed = self.status != msg.status || self.note != msg.note;
        self.status = msg.status;
        self.note = msg.note;
        msg.reply.ok(Reply::Empty);
        if changed {
            let f = self.presence_frame().encode();
            self.emit(&f, Some(msg.session));
            self.broadcast_presence(&f);
            self.announce();
        }
    }
}

/// The user's status changed on another node: our sessions see it, and
/// rosters read here show it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AdoptPresence {
    pub status: Status,
    pub note: Option<String>,
}

impl Handler<AdoptPresence> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: AdoptPresence, _: &mut Context<Self>) {
        if self.sessions.is_empty() || (self.status, &self.note) == (msg.status, &msg.note) {
            return;
        }
        (self.status, self.note) = (msg.status, msg.note);
        let f = self.presence_frame().encode();
        self.emit(&f, None);
        // Every node's view shows the same status for us.
        self.announce();
    }
}

/// The relation with `peer` changed (already stored): update the book and
/// send `events` to our sessions but `except`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ContactChanged {
    pub peer: UserId,
    /// New state from our side; `None` when there is no contact any more.
    pub state: Option<ContactState>,
    /// New "we block them" flag, when it changed.
    pub we_block: Option<bool>,
    /// New "they block us" flag, when it changed.
    pub they_block: Option<bool>,
    pub events: Vec<Encoded>,
    pub except: Option<SessionId>,
}

impl Handler<ContactChanged> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: ContactChanged, _: &mut Context<Self>) {
        match msg.state {
            Some(s) => self.contacts.insert(msg.peer.clone(), s),
            None => self.contacts.remove(&msg.peer),
        };
        if let Some(b) = msg.we_block {
            if b {
                self.blocks.insert(msg.peer.clone());
            } else {
                self.blocks.remove(&msg.peer);
            }
        }
        if let Some(b) = msg.they_block {
            if b {
                self.blocked_by.insert(msg.peer.clone());
            } else {
                self.blocked_by.remove(&msg.peer);
            }
        }
        self.known.insert(msg.peer);
        for e in &msg.events {
            self.emit(e, msg.except);
        }
    }
}

/// `msg.send` to a user: permission check here, then the conversation actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SendDirect {
    pub to: UserId,
    pub submit: Submit,
}

impl UserActor {
    fn forward(&self, conv: ConvId, mut submit: Submit) {
        submit.checked = true;
        match self.svc.conv_actor(&conv) {
            Some(lease) => lease.addr.do_send(submit.with_ticket(lease.ticket)),
            None => submit
                .reply
                .err(ProtoError::internal("conversation directory unavailable")),
        }
    }

    /// A refused send still gets its original `ok` when its `client_id`
    /// was already stored (the retry of a send that succeeded).
    fn refuse_or_dedup(
        &self,
        conv: ConvId,
        submit: Submit,
        err: ProtoError,
        ctx: &mut Context<Self>,
    ) {
        // Waited for, so this user's later sends stay behind it.
        ctx.wait(
            crate::actors::conversation::refused(self.svc.clone(), conv, submit, err)
                .into_actor(self),
        );
    }
}

impl Handler<SendDirect> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: SendDirect, ctx: &mut Context<Self>) {
        let conv = ConvId::direct(&self.user, &msg.to);
        match self.dm_check(&msg.to) {
            DmCheck::Allowed => self.forward(conv, msg.submit),
            DmCheck::Forbidden | DmCheck::Lookup => {
                self.dm_resolve(msg.to, ctx, move |act, r, ctx| match r {
                    Ok(()) => act.forward(conv, msg.submit),
                    Err(e) if e.code == crate::error::ErrorCode::Forbidden => {
                        act.refuse_or_dedup(conv, msg.submit, e, ctx)
                    }
                    Err(e) => msg.submit.reply.err(e),
                })
            }
        }
    }
}

/// `typing` to a user.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct TypingTo {
    pub to: UserId,
    pub reply: ReplyTo,
}

impl Handler<TypingTo> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: TypingTo, ctx: &mut Context<Self>) {
        let frame = ServerFrame::Typing {
            conv: ConvId::direct(&self.user, &msg.to),
            user: self.user.clone(),
        }
        .encode();
        let send = move |act: &mut UserActor, to: &UserId, reply: ReplyTo| {
            reply.ok(Reply::Empty);
            if !act.typing.allow(to) {
                return;
            }
            act.svc.emit_to(std::iter::once(to), &frame, None);
        };
        match self.dm_check(&msg.to) {
            DmCheck::Allowed => send(self, &msg.to, msg.reply),
            DmCheck::Forbidden | DmCheck::Lookup => {
                let to = msg.to.clone();
                self.dm_resolve(msg.to, ctx, move |act, r, _| match r {
                    Ok(()) => send(act, &to, msg.reply),
                    Err(e) => msg.reply.err(e),
                })
            }
        }
    }
}

/// Which devices have a live session.
#[derive(Message)]
#[rtype(result = "HashSet<String>")]
pub(crate) struct OnlineDevices;

impl Handler<OnlineDevices> for UserActor {
    type Result = MessageResult<OnlineDevices>;

    fn handle(&mut self, _: OnlineDevices, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.sessions.values().map(|s| s.device.clone()).collect())
    }
}

/// Sent to a session of this user: close, after an optional final frame
/// (revoked device, suspended account, changed password). Sessions handle
/// it; the user actor holds them only as `Recipient<Kick>`.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub(crate) struct Kick {
    /// Sent before closing.
    pub frame: Option<ServerFrame>,
    /// Why (the `closing` frame's reason).
    pub reason: CloseReason,
}

/// Which sessions a [`KickSessions`] closes, by the token they hold.
#[derive(Clone, Debug)]
pub(crate) enum Tokens {
    /// Whatever token.
    All,
    /// Those holding the token with this hash.
    Only(Arc<str>),
    /// All but those holding the token with this hash.
    AllBut(Arc<str>),
}

/// The relation with `peer` may have changed in another process: read it
/// (and the blocks) again from the store.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Relearn {
    pub peer: UserId,
}

impl Handler<Relearn> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: Relearn, ctx: &mut Context<Self>) {
        self.dm_resolve(msg.peer, ctx, |_, _, _| {});
    }
}

/// Close sessions: of one device, or all but one session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub(crate) struct KickSessions {
    /// Only this device's sessions (`None`: every device).
    pub device: Option<String>,
    /// Spare this session (the one that asked).
    pub except: Option<SessionId>,
    /// Which tokens' sessions: all, only those holding one token, or all
    /// but those holding one token.
    pub tokens: Tokens,
    /// Frame sent before closing.
    pub frame: Option<ServerFrame>,
    /// Why.
    pub reason: CloseReason,
}

impl KickSessions {
    /// Every session of a device whose token was revoked.
    pub(crate) fn device(device: String) -> KickSessions {
        KickSessions {
            device: Some(device),
            except: None,
            tokens: Tokens::All,
            frame: None,
            reason: CloseReason::DeviceRevoked,
        }
    }

    /// Every session but `except`, after a password change.
    pub(crate) fn password_changed(except: SessionId) -> KickSessions {
        KickSessions {
            device: None,
            except: Some(except),
            tokens: Tokens::All,
            frame: None,
            reason: CloseReason::PasswordChanged,
        }
    }

    /// Every session of a suspended account.
    pub(crate) fn suspended() -> KickSessions {
        KickSessions {
            device: None,
            except: None,
            tokens: Tokens::All,
            reason: CloseReason::Suspended,
            frame: Some(ServerFrame::error(
                None,
                ProtoError::new(
                    crate::error::ErrorCode::AccountSuspended,
                    "account suspended",
                ),
            )),
        }
    }
}

impl Handler<KickSessions> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: KickSessions, _: &mut Context<Self>) {
        for (id, slot) in &self.sessions {
            let token = match &msg.tokens {
                Tokens::All => true,
                Tokens::Only(h) => *h == slot.token_hash,
                Tokens::AllBut(h) => *h != slot.token_hash,
            };
            let hit = msg.device.as_ref().is_none_or(|d| *d == slot.device)
                && msg.except != Some(*id)
                && token;
            if hit {
                slot.kick.do_send(Kick {
                    frame: msg.frame.clone(),
                    reason: msg.reason,
                });
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Retire;

impl Handler<Retire> for UserActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
