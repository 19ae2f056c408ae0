//! `ConversationActor`: one per active conversation.
//!
//! Serialises the conversation's sends: it batches whatever arrived while
//! the previous batch was being written, hands the batch to the group-commit
//! writer (which assigns `seq` inside the transaction), and once it is
//! durable replies `ok` to each sender and fans each message out, encoded
//! once and shared by every recipient. Stops itself when idle.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::actors::directory::Ticket;
use crate::actors::typing::TypingThrottle;

use crate::actors::Core;
use crate::error::ProtoError;
use crate::ids::{now_millis, ConvId, SessionId, UserId};
use crate::protocol::{Encoded, MsgFrame, Reply, ServerFrame};
use crate::reply::ReplyTo;
use crate::store::{NewMessage, Refusal, RoomRecord, SendGuard};

/// One message to append, with the reply owed to its sender.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Submit {
    pub from: UserId,
    pub device: String,
    pub session: SessionId,
    pub body: String,
    pub client_id: Option<String>,
    pub attachment: Option<crate::protocol::AttachmentMeta>,
    pub reply: ReplyTo,
    /// Keeps the actor from retiring until this message is answered.
    pub ticket: Option<Ticket>,
    /// The sender's permission was already checked (direct messages, by
    /// the sender's user actor); room sends are checked here.
    pub checked: bool,
}

impl Submit {
    pub(crate) fn with_ticket(mut self, t: Ticket) -> Submit {
        self.ticket = Some(t);
        self
    }
}

/// One active conversation.
pub struct ConversationActor {
    svc: Core,
    conv: ConvId,
    pending: Vec<Submit>,
    writing: bool,
    last_active: Instant,
    /// Who gets each message: the two users of a direct conversation, or
    /// the room's members, kept in step by [`Membership`].
    members: HashSet<UserId>,
    /// The room, for rooms; `None` for a room that does not exist.
    room: Option<RoomRecord>,
    /// Who last had a `typing` relayed here, and when.
    typing: TypingThrottle<UserId>,
}

/// Answers a refused send: with the original `ok` when its `client_id` was
/// already stored (a retry of a send that succeeded before permissions
/// changed), else with `err`.
pub(crate) async fn refused(svc: Core, conv: ConvId, s: Submit, err: ProtoError) {
    let Some(cid) = s.client_id.clone() else {
        return s.reply.err(err);
    };
    let (c, from) = (conv.clone(), s.from.clone());
    match svc.db(move |st| st.find_client_id(&c, &from, &cid)).await {
        Ok(Some(a)) => s.reply.ok(Reply::Sent {
            conv,
            seq: a.seq,
            ts: a.ts,
        }),
        Ok(None) => s.reply.err(err),
        Err(e) => s.reply.err(e),
    }
}

/// Why a room refuses a sender.
fn room_refusal(room: &Option<RoomRecord>) -> ProtoError {
    match room {
        Some(r) if r.public => ProtoError::forbidden("join the room first"),
        _ => ProtoError::not_found("no such room"),
    }
}

impl ConversationActor {
    pub(crate) fn new(svc: Core, conv: ConvId) -> ConversationActor {
        let members = match &conv {
            ConvId::Direct(a, b) => [a.clone(), b.clone()].into_iter().collect(),
            ConvId::Room(_) => HashSet::new(),
        };
        ConversationActor {
            svc,
            conv,
            pending: Vec::new(),
            writing: false,
            last_active: Instant::now(),
            members,
            room: None,
            typing: TypingThrottle::default(),
        }
    }

    /// Loads a room's record and members (under `ctx.wait`: nothing is
    /// handled before).
    fn load_room(&mut self, ctx: &mut Context<Self>) {
        let ConvId::Room(name) = self.conv.clone() else {
            return;
        };
        let svc = self.svc.clone();
        let f = async move {
            svc.db(move |store| {
                let room = store.room(&name)?;
                let members = match room {
                    Some(_) => store.room_members(&name)?,
                    None => Vec::new(),
                };
                Ok((room, members))
            })
            .await
        };
        ctx.wait(f.into_actor(self).map(|r, act, ctx| match r {
            Ok((room, members)) => {
                act.room = room;
                act.members = members.into_iter().map(|m| m.user).collect();
            }
            _ => {
                tracing::warn!(conv = %act.conv, "could not load room; stopping");
                act.room = None;
                act.members.clear();
                act.retire_soon(ctx);
            }
        }));
    }

    fn retire_soon(&mut self, ctx: &mut Context<Self>) {
        if self.writing || !self.pending.is_empty() {
            return;
        }
        if self.svc.actors.convs.try_retire(&self.conv, &ctx.address()) {
            ctx.stop();
        }
    }

    /// Sends an event to every online member, on every node.
    fn broadcast(&self, frame: &Encoded, except: Option<&UserId>) {
        let to = self.members.iter().filter(|m| Some(*m) != except);
        self.svc.emit_to(to, frame, None);
    }

    /// Whether `from` may post here; on refusal, answers (with the original
    /// `ok` when the `client_id` was already stored).
    fn admit(&mut self, s: Submit, ctx: &mut Context<Self>) -> Option<Submit> {
        if s.checked || self.members.contains(&s.from) {
            return Some(s);
        }
        let err = room_refusal(&self.room);
        let f = refused(self.svc.clone(), self.conv.clone(), s, err);
        // An actor for a room that does not exist leaves as soon as it has
        // answered, so made-up names cost nothing lasting.
        ctx.spawn(f.into_actor(self).map(|(), act, ctx| {
            if act.room.is_none() {
                act.retire_soon(ctx);
            }
        }));
        None
    }

    /// The error for a send the store refused: what this process did not
    /// know yet (a change made through another process sharing the store)
    /// it learns from the change log shortly.
    fn refusal(&self, why: Refusal) -> ProtoError {
        match (why, &self.conv) {
            (Refusal::Credentials, _) => ProtoError::new(
                crate::error::ErrorCode::Unauthenticated,
                "this device was signed out",
            ),
            (Refusal::Conversation, ConvId::Direct(..)) => {
                ProtoError::forbidden("not allowed to message this user")
            }
            (Refusal::Conversation, ConvId::Room(_)) => room_refusal(&self.room),
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.pending.is_empty() {
            return;
        }
        self.writing = true;
        let batch = std::mem::take(&mut self.pending);
        let now = now_millis();
        let msgs: Vec<NewMessage> = batch
            .iter()
            .map(|s| NewMessage {
                conv: self.conv.clone(),
                from: s.from.clone(),
                device: s.device.clone(),
                body: s.body.clone(),
                client_id: s.client_id.clone(),
                attachment: s.attachment.as_ref().map(|a| a.file.clone()),
                now,
                guard: Some(SendGuard {
                    require_contact: self.svc.config.policy.dm_requires_contact,
                }),
            })
            .collect();
        let writer = self.svc.writer.clone();
        // Files sent here become readable by the members before anyone is
        // told about them (and, attached, are never collected as unsent).
        let files: Vec<Option<String>> = batch
            .iter()
            .map(|s| s.attachment.as_ref().map(|a| a.file.clone()))
            .collect();
        let attach: Vec<String> = files.iter().flatten().cloned().collect();
        let (svc, conv) = (self.svc.clone(), self.conv.clone());
        let f = async move {
            if !attach.is_empty() {
                let conv = conv.clone();
                svc.db(move |s| attach.iter().try_for_each(|id| s.attach_file(id, &conv)))
                    .await?;
            }
            let appended = writer.append(msgs).await?;
            // A send the store refused was not sent: its file goes back
            // to being readable only where it had been sent before. Done
            // before the next batch of this conversation attaches.
            let refused: Vec<String> = files
                .into_iter()
                .zip(&appended)
                .filter_map(|(f, a)| a.refused.and(f))
                .collect();
            if !refused.is_empty() {
                let detached = svc
                    .db(move |s| refused.iter().try_for_each(|id| s.detach_unsent(id, &conv)))
                    .await;
                if let Err(e) = detached {
                    tracing::warn!(error = %e, "a refused send's file stays attached");
                }
            }
            Ok::<_, ProtoError>(appended)
        };
        ctx.spawn(f.into_actor(self).map(move |r, act, ctx| {
            act.writing = false;
            act.last_active = Instant::now();
            match r {
                Ok(appended) => {
                    let members: Vec<UserId> = act.members.iter().cloned().collect();
                    for (s, a) in batch.into_iter().zip(appended) {
                        if let Some(why) = a.refused {
                            s.reply.err(act.refusal(why));
                            continue;
                        }
                        s.reply.ok(Reply::Sent {
                            conv: act.conv.clone(),
                            seq: a.seq,
                            ts: a.ts,
                        });
                        if a.duplicate {
                            continue;
                        }
                        let frame = ServerFrame::Msg(MsgFrame {
                            conv: act.conv.clone(),
                            seq: a.seq,
                            from: s.from.clone(),
                            body: s.body,
                            ts: a.ts,
                            client_id: s.client_id,
                            attachment: s.attachment,
                        })
                        .encode();
                        act.svc
                            .deliver(&members, &act.conv, a.seq, &frame, (&s.from, s.session));
                    }
                }
                Err(e) => {
                    for s in batch {
                        s.reply.err(e.clone());
                    }
                }
            }
            act.flush(ctx);
        }));
    }
}

impl Actor for ConversationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.load_room(ctx);
        let idle = Duration::from_secs(self.svc.config.limits.conv_idle_secs.max(1));
        ctx.run_interval(idle / 2, move |act, ctx| {
            if act.writing || !act.pending.is_empty() || act.last_active.elapsed() < idle {
                return;
            }
            // Every message to us carries a ticket, so success means our
            // mailbox holds nothing.
            if act.svc.actors.convs.try_retire(&act.conv, &ctx.address()) {
                ctx.stop();
            }
        });
    }
}

impl Handler<Submit> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        self.last_active = Instant::now();
        if let Some(s) = self.admit(msg, ctx) {
            self.pending.push(s);
            self.flush(ctx);
        }
    }
}

/// A room's membership changed (already stored): `frame` (`room.joined` /
/// `room.left`) goes to the members, the leaver included, in order with
/// the room's messages.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Membership {
    pub user: UserId,
    pub joined: bool,
    pub frame: Encoded,
    /// Keeps the actor from retiring until this is handled.
    pub _ticket: Option<Ticket>,
}

impl Handler<Membership> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: Membership, _: &mut Context<Self>) {
        if msg.joined {
            self.members.insert(msg.user.clone());
            self.broadcast(&msg.frame, None);
        } else {
            // The leaver hears it too, even when this actor was started
            // after the store already forgot them.
            self.members.insert(msg.user.clone());
            self.broadcast(&msg.frame, None);
            self.members.remove(&msg.user);
        }
    }
}

/// Answered once the actor has loaded its room: whoever waits for it and
/// then changes the membership in the store knows the actor's member list
/// predates the change, so the event it sends next reaches exactly the
/// members of that moment (the actor may run on another thread).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Settled;

impl Handler<Settled> for ConversationActor {
    type Result = ();

    fn handle(&mut self, _: Settled, _: &mut Context<Self>) {}
}

/// An event for every member (a new topic).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Broadcast {
    pub frame: Encoded,
    /// Keeps the actor from retiring until this is handled.
    pub _ticket: Option<Ticket>,
}

impl Handler<Broadcast> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: Broadcast, _: &mut Context<Self>) {
        self.broadcast(&msg.frame, None);
    }
}

/// The room was created after this actor found it missing: load it again.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reload {
    /// Keeps the actor from retiring until this is handled.
    pub _ticket: Option<Ticket>,
}

impl Handler<Reload> for ConversationActor {
    type Result = ();

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) {
        self.load_room(ctx);
    }
}

/// `typing` in a room: members only; the others get it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct TypingIn {
    pub from: UserId,
    pub reply: ReplyTo,
    /// Keeps the actor from retiring until this is handled.
    pub _ticket: Option<Ticket>,
}

impl Handler<TypingIn> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: TypingIn, ctx: &mut Context<Self>) {
        if !self.members.contains(&msg.from) {
            let TypingIn { reply, _ticket, .. } = msg;
            reply.err(room_refusal(&self.room));
            drop(_ticket);
            if self.room.is_none() {
                self.retire_soon(ctx);
            }
            return;
        }
        msg.reply.ok(Reply::Empty);
        if !self.typing.allow(&msg.from) {
            return;
        }
        let frame = ServerFrame::Typing {
            conv: self.conv.clone(),
            user: msg.from.clone(),
        }
        .encode();
        self.broadcast(&frame, Some(&msg.from));
    }
}
