//! `ConversationActor`: one per active conversation.
//!
//! Serialises the conversation's sends: it batches whatever arrived while
//! the previous batch was being written, hands the batch to the group-commit
//! writer (which assigns `seq` inside the transaction), and once it is
//! durable replies `ok` to each sender and fans each message out, encoded
//! once and shared by every recipient. Stops itself when idle.

use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::directory::Ticket;
use crate::hub::Hub;
use crate::ids::{now_millis, ConvId, SessionId, UserId};
use crate::protocol::{MsgFrame, Reply, ServerFrame};
use crate::reply::ReplyTo;
use crate::store::NewMessage;
use crate::user::Deliver;

/// One message to append, with the reply owed to its sender.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Submit {
    pub from: UserId,
    pub device: String,
    pub session: SessionId,
    pub body: String,
    pub client_id: Option<String>,
    pub attachment: Option<String>,
    pub reply: ReplyTo,
    /// Keeps the actor from retiring until this message is answered.
    pub ticket: Option<Ticket>,
}

impl Submit {
    pub(crate) fn with_ticket(mut self, t: Ticket) -> Submit {
        self.ticket = Some(t);
        self
    }
}

/// One active conversation.
pub struct ConversationActor {
    hub: Hub,
    conv: ConvId,
    pending: Vec<Submit>,
    writing: bool,
    last_active: Instant,
}

impl ConversationActor {
    pub(crate) fn new(hub: Hub, conv: ConvId) -> ConversationActor {
        ConversationActor {
            hub,
            conv,
            pending: Vec::new(),
            writing: false,
            last_active: Instant::now(),
        }
    }

    /// Members whose user actors get each message.
    fn members(&self) -> Vec<UserId> {
        match &self.conv {
            ConvId::Direct(a, b) => vec![a.clone(), b.clone()],
            ConvId::Room(_) => Vec::new(),
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
                attachment: s.attachment.clone(),
                now,
            })
            .collect();
        let writer = self.hub.inner.writer.clone();
        let f = async move { writer.append(msgs).await };
        ctx.spawn(f.into_actor(self).map(move |r, act, ctx| {
            act.writing = false;
            act.last_active = Instant::now();
            match r {
                Ok(appended) => {
                    let members = act.members();
                    for (s, a) in batch.into_iter().zip(appended) {
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
                        })
                        .encode();
                        for m in &members {
                            if let Some(l) = act.hub.inner.users.get(m) {
                                l.addr.do_send(Deliver {
                                    conv: act.conv.clone(),
                                    seq: a.seq,
                                    frame: frame.clone(),
                                    except: (*m == s.from).then_some(s.session),
                                });
                            }
                        }
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
        let idle = Duration::from_secs(self.hub.config().limits.conv_idle_secs.max(1));
        ctx.run_interval(idle / 2, move |act, ctx| {
            if act.writing || !act.pending.is_empty() || act.last_active.elapsed() < idle {
                return;
            }
            // Every message to us carries a ticket, so success means our
            // mailbox holds nothing.
            if act.hub.inner.convs.try_retire(&act.conv, &ctx.address()) {
                ctx.stop();
            }
        });
    }
}

impl Handler<Submit> for ConversationActor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        self.last_active = Instant::now();
        self.pending.push(msg);
        self.flush(ctx);
    }
}
