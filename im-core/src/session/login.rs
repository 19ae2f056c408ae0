//! After a successful login: join the user's actor, then write `ok`,
//! `roster`, the replay and `synced`, paced by the connection, before any
//! other frame of the session is read.

use actix::prelude::*;

use super::{SessionActor, State};
use crate::actors::user::{Attach, Replayed, Synced};
use crate::error::ProtoError;
use crate::handlers::accounts::LoginOk;
use crate::handlers::messages::{msg_frame, with_metas};
use crate::handlers::Ctx;
use crate::ids::ConvId;
use crate::protocol::{Reply, ServerFrame};
use crate::reply::ReplyTo;
use crate::transport::Outbox;

/// Messages read from the store per replay page.
const REPLAY_PAGE: u64 = 200;

impl SessionActor {
    /// Joins the user's actor, then sends `ok`, `roster`, the replay and
    /// `synced`, all before any other frame is read. `epoch` is the
    /// revocation epoch read before the credentials were checked.
    pub(super) fn attach(
        &mut self,
        ok: LoginOk,
        epoch: u64,
        reply: ReplyTo,
        ctx: &mut Context<Self>,
    ) {
        let token_hash: std::sync::Arc<str> = crate::auth::token_hash(&ok.token).into();
        self.s.span.record("user", ok.user.as_str());
        let Some(lease) = self.s.svc.user_actor(&ok.user) else {
            return reply.err(ProtoError::internal("user directory unavailable"));
        };
        let attach = Attach {
            session: self.s.id,
            device: ok.device.clone(),
            outbox: self.s.outbox.clone(),
            kick: ctx.address().recipient(),
            token_hash: token_hash.clone(),
            epoch,
        };
        let addr = lease.addr.clone();
        let f = async move { addr.send(attach).await };
        ctx.wait(f.into_actor(self).then(move |r, act, _| {
            let roster = match r {
                Ok(Ok(roster)) => roster,
                failed => {
                    reply.err(match failed {
                        Ok(Err(e)) => e,
                        _ => ProtoError::internal("user actor unavailable"),
                    });
                    return fut::ready(()).boxed_local();
                }
            };
            let me = Ctx {
                svc: act.s.svc.clone(),
                user: ok.user.clone(),
                device: ok.device,
                token_hash,
                session: act.s.id,
                user_addr: lease.addr,
                peer: act.s.peer.clone(),
            };
            reply.ok(Reply::LoggedIn {
                user: ok.user,
                session: act.s.id,
                token: ok.token,
            });
            let outbox = act.s.outbox.clone();
            outbox.push(ServerFrame::Roster { contacts: roster }.encode());
            act.state = State::Authed {
                me: me.clone(),
                _ticket: lease.ticket,
            };
            catch_up(me, outbox).into_actor(act).boxed_local()
        }));
    }
}

/// The replay, `synced`, then what was held meanwhile, written as the
/// connection drains; only then are frames read again, so no reply
/// overtakes them.
async fn catch_up(me: Ctx, outbox: Outbox) {
    let replayed = replay(&me, &outbox).await;
    if !outbox.push_wait(ServerFrame::Synced {}.encode()).await {
        return;
    }
    let synced = || Synced {
        session: me.session,
        replayed: replayed.clone(),
    };
    while let Ok(Some(held)) = me.user_addr.send(synced()).await {
        for f in held {
            if !outbox.push_wait(f).await {
                return;
            }
        }
    }
}

/// Writes the login replay for `me`'s device: every conversation with
/// messages after the device's delivered cursor, most recently active
/// first, oldest first within each, capped per conversation and in all
/// (with `gap` frames). Frames are queued as the connection drains, never
/// all at once. Returns the highest seq replayed per conversation.
async fn replay(me: &Ctx, outbox: &Outbox) -> Replayed {
    let mut replayed = Replayed::new();
    let limits = &me.svc.config.limits;
    let (u, d) = (me.user.clone(), me.device.clone());
    let list = match me.svc.db(move |s| s.conversations(&u, &d)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "replay: could not list conversations");
            return replayed;
        }
    };
    let mut left = limits.replay_total_max;
    for c in list {
        if c.last_seq <= c.delivered_seq {
            continue;
        }
        let pending = c.last_seq - c.delivered_seq;
        let n = pending.min(limits.replay_max).min(left);
        left -= n;
        let first = c.last_seq - n + 1;
        if n < pending {
            let gap = ServerFrame::Gap {
                conv: c.conv.clone(),
                before: first,
            };
            if !outbox.push_wait(gap.encode()).await {
                return replayed;
            }
        }
        match replay_conv(me, outbox, &c.conv, first - 1, c.last_seq).await {
            Some(0) => {}
            Some(last) => {
                replayed.insert(c.conv.clone(), last);
            }
            None => return replayed,
        }
    }
    replayed
}

/// Writes one conversation's messages after `after` up to `last`, page by
/// page. Returns the last seq written (0: none), `None` once the
/// connection is gone.
async fn replay_conv(
    me: &Ctx,
    outbox: &Outbox,
    conv: &ConvId,
    mut after: u64,
    last: u64,
) -> Option<u64> {
    let mut written = 0;
    while after < last {
        let c = conv.clone();
        let take = REPLAY_PAGE.min(last - after) as usize;
        let page = me
            .svc
            .db(move |s| with_metas(s, s.messages_after(&c, after, take)?))
            .await;
        let (page, metas) = match page {
            Ok(p) if !p.0.is_empty() => p,
            _ => break,
        };
        for m in page {
            after = m.seq;
            if !outbox.push_wait(msg_frame(m, &metas).encode()).await {
                return None;
            }
        }
        written = after;
    }
    Some(written)
}
