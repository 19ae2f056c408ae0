//! Following the change log: what other server processes sharing the store
//! changed (contacts and blocks, room members and bans, revoked tokens) is
//! applied to this process's live actors, so it takes effect here within
//! `auth.change_poll_ms`. Changes this process made are skipped: it applied
//! them already, with their `ok`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::conversation::Reload;
use super::user::{KickSessions, Relearn, Tokens};
use super::Core;
use crate::error::ProtoError;
use crate::ids::{now_millis, ConvId};
use crate::store::{Change, ChangeRecord};
use crate::transport::CloseReason;

/// Changes read per poll.
const PAGE: usize = 1000;
/// How long changes stay in the log: every process reads far more often.
const KEEP: Duration = Duration::from_secs(600);

/// Where this process is in the change log.
#[derive(Default)]
pub(crate) struct Feed {
    /// One reader at a time: the poll, the bus and heartbeats all read.
    reading: tokio::sync::Mutex<()>,
    cursor: AtomicU64,
    started: AtomicBool,
    pruned: Mutex<Option<Instant>>,
}

impl Feed {
    /// How far this process has read the log.
    pub(crate) fn position(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }
}

impl Core {
    /// Reads the changes made since the last call and applies those of
    /// other processes. The first call only finds the end of the log.
    pub(crate) async fn follow_changes(&self) -> Result<usize, ProtoError> {
        let feed = &self.actors.feed;
        let _one = feed.reading.lock().await;
        if !feed.started.load(Ordering::Acquire) {
            let last = self.db(|s| s.last_change_id()).await?;
            feed.cursor.store(last, Ordering::Release);
            feed.started.store(true, Ordering::Release);
            return Ok(0);
        }
        let mut applied = 0;
        loop {
            let after = feed.cursor.load(Ordering::Acquire);
            let page = self.db(move |s| s.changes_after(after, PAGE)).await?;
            let Some(last) = page.last().map(|r| r.id) else {
                break;
            };
            for r in &page {
                applied += usize::from(self.apply(r));
            }
            feed.cursor.store(last, Ordering::Release);
            if page.len() < PAGE {
                break;
            }
        }
        self.prune_now_and_then().await;
        Ok(applied)
    }

    /// Applies one change of another process; `false` for our own.
    fn apply(&self, r: &ChangeRecord) -> bool {
        if r.origin == self.origin {
            return false;
        }
        let users = &self.actors.users;
        match &r.change {
            Change::Contact { a, b } => {
                for (u, peer) in [(a, b), (b, a)] {
                    if let Some(l) = users.get(u) {
                        l.addr.do_send(Relearn { peer: peer.clone() });
                    }
                }
            }
            Change::Room { room } => {
                if let Some(l) = self.actors.convs.get(&ConvId::Room(room.clone())) {
                    l.addr.do_send(Reload {
                        _ticket: Some(l.ticket),
                    });
                }
            }
            Change::TokenRevoked { user, token_hash } => {
                let tokens = Tokens::Only(token_hash.as_str().into());
                self.kick_sessions(user, kick(tokens, CloseReason::DeviceRevoked));
            }
            Change::TokensRevoked { user, keep } => {
                let tokens = match keep {
                    Some(k) => Tokens::AllBut(k.as_str().into()),
                    None => Tokens::All,
                };
                self.kick_sessions(user, kick(tokens, CloseReason::PasswordChanged));
            }
        }
        true
    }

    /// Forgets old changes, at most once a minute.
    async fn prune_now_and_then(&self) {
        let due = match self.actors.feed.pruned.lock() {
            Ok(mut at) if at.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) => {
                *at = Some(Instant::now());
                true
            }
            _ => false,
        };
        if due {
            let before = now_millis() - KEEP.as_millis() as i64;
            if let Err(e) = self.db(move |s| s.prune_changes(before)).await {
                tracing::debug!(error = %e, "change log not pruned");
            }
        }
    }
}

fn kick(tokens: Tokens, reason: CloseReason) -> KickSessions {
    KickSessions {
        device: None,
        except: None,
        tokens,
        frame: None,
        reason,
    }
}
