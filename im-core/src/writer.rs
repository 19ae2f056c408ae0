//! Group commit: one thread owns every write of messages and cursors.
//!
//! Conversation actors and sessions queue jobs on a bounded channel; the
//! writer takes whatever has queued up (up to `pool.max_batch` messages),
//! writes it with one [`Store::write_batch`] call (one transaction in a
//! durable store) and only then answers each job. Under load many senders'
//! messages share one commit; with no load a message is written at once.
//! Cursor updates for the same (user, device, conversation) in one batch
//! are coalesced: the furthest wins.
//!
//! When a commit fails because the store is unavailable (a database that
//! is down or locked fails only after its timeout), the jobs that queued
//! meanwhile are answered `unavailable` at once instead of making up the
//! next batch: otherwise each batch would wait out the timeout in turn and
//! a send would wait for the failures of every batch queued before it.
//! The next job to arrive tries the store again, so writing resumes with
//! the first commit after the database is back.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::error::{ErrorCode, ProtoError};
use crate::ids::{ConvId, UserId};
use crate::store::{Appended, CursorOutcome, CursorUpdate, NewMessage, Store};

enum Job {
    Append(
        Vec<NewMessage>,
        oneshot::Sender<Result<Vec<Appended>, ProtoError>>,
    ),
    Cursor(
        CursorUpdate,
        oneshot::Sender<Result<CursorOutcome, ProtoError>>,
    ),
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

/// Jobs waiting for the writer before senders wait for room.
const QUEUE: usize = 8192;

impl Writer {
    /// Starts the writer thread. It ends when every handle is dropped.
    pub fn start(store: Arc<dyn Store>, max_batch: usize) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("im-writer".into())
            .spawn(move || run(store, rx, max_batch.max(1)));
        if let Err(e) = spawned {
            // Jobs will fail with `unavailable` as their channel closes.
            tracing::error!(error = %e, "could not start the writer thread");
        }
        Writer { tx }
    }

    /// Appends messages of one conversation; resolves after the commit.
    pub async fn append(&self, msgs: Vec<NewMessage>) -> Result<Vec<Appended>, ProtoError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Append(msgs, tx))
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    /// Moves cursors; resolves after the commit.
    pub async fn cursor(&self, update: CursorUpdate) -> Result<CursorOutcome, ProtoError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Cursor(update, tx))
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }
}

fn unavailable() -> ProtoError {
    ProtoError::new(
        crate::error::ErrorCode::Unavailable,
        "writer unavailable, try again",
    )
}

fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut count = 0usize;
        while count < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    count += match &j {
                        Job::Append(m, _) => m.len(),
                        Job::Cursor(..) => 1,
                    };
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        if let Err(e) = commit(&*store, jobs) {
            if e.code == ErrorCode::Unavailable {
                while let Ok(job) = rx.try_recv() {
                    job.fail(e.clone());
                }
            }
        }
    }
}

impl Job {
    /// Answers the job with `e`, writing nothing.
    fn fail(self, e: ProtoError) {
        match self {
            Job::Append(_, tx) => {
                let _ = tx.send(Err(e));
            }
            Job::Cursor(_, tx) => {
                let _ = tx.send(Err(e));
            }
        }
    }
}

/// What one commit writes: every job's messages in order, and the cursor
/// updates coalesced per (user, device, conversation, read).
struct Batch {
    messages: Vec<NewMessage>,
    cursors: Vec<CursorUpdate>,
    /// For each cursor job in order, its slot in `cursors`.
    cursor_slots: Vec<usize>,
}

fn gather(jobs: &[Job]) -> Batch {
    let mut messages = Vec::new();
    let mut cursors: Vec<CursorUpdate> = Vec::new();
    let mut cursor_index: HashMap<(UserId, String, ConvId, bool), usize> = HashMap::new();
    let mut cursor_slots = Vec::new();
    for job in jobs {
        match job {
            Job::Append(m, _) => messages.extend(m.iter().cloned()),
            Job::Cursor(u, _) => {
                // Read and delivery-only acks stay apart: merging them would
                // mark as read what was only delivered.
                let key = (u.user.clone(), u.device.clone(), u.conv.clone(), u.read);
                let slot = *cursor_index.entry(key).or_insert_with(|| {
                    cursors.push(CursorUpdate {
                        delivered: 0,
                        ..u.clone()
                    });
                    cursors.len() - 1
                });
                let c = &mut cursors[slot];
                c.delivered = c.delivered.max(u.delivered);
                cursor_slots.push(slot);
            }
        }
    }
    Batch {
        messages,
        cursors,
        cursor_slots,
    }
}

/// Writes the jobs in one batch and answers each; returns the batch's
/// error, if it failed.
fn commit(store: &dyn Store, jobs: Vec<Job>) -> Result<(), ProtoError> {
    let Batch {
        messages,
        cursors,
        cursor_slots,
    } = gather(&jobs);
    let started = std::time::Instant::now();
    let result = store
        .write_batch(&messages, &cursors)
        .map_err(ProtoError::from)
        .and_then(|(a, c)| {
            if a.len() == messages.len() && c.len() == cursors.len() {
                Ok((a, c))
            } else {
                tracing::error!("store returned the wrong number of results");
                Err(ProtoError::internal(
                    "store returned the wrong number of results",
                ))
            }
        });
    if let Ok((appended, _)) = &result {
        let stored = appended
            .iter()
            .filter(|a| !a.duplicate && a.refused.is_none())
            .count();
        let items = messages.len() + cursors.len();
        crate::telemetry::batch(items, stored, started.elapsed().as_secs_f64());
    }
    let mut msg_at = 0;
    let mut cursor_at = 0;
    let mut reported = vec![false; cursors.len()];
    // Answer in reverse so the last job per cursor slot reports the advance.
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Append(m, tx) => {
                let n = m.len();
                let r = match &result {
                    Ok((appended, _)) => Ok(appended[msg_at..msg_at + n].to_vec()),
                    Err(e) => Err(e.clone()),
                };
                msg_at += n;
                answers.push(Answer::Append(tx, r));
            }
            Job::Cursor(_, tx) => {
                let slot = cursor_slots[cursor_at];
                cursor_at += 1;
                answers.push(Answer::Cursor(tx, slot));
            }
        }
    }
    for a in answers.into_iter().rev() {
        match a {
            Answer::Append(tx, r) => {
                let _ = tx.send(r);
            }
            Answer::Cursor(tx, slot) => {
                let r = match &result {
                    Ok((_, outcomes)) if !reported[slot] => {
                        reported[slot] = true;
                        Ok(outcomes[slot])
                    }
                    Ok(_) => Ok(CursorOutcome::default()),
                    Err(e) => Err(e.clone()),
                };
                let _ = tx.send(r);
            }
        }
    }
    result.map(|_| ())
}

enum Answer {
    Append(
        oneshot::Sender<Result<Vec<Appended>, ProtoError>>,
        Result<Vec<Appended>, ProtoError>,
    ),
    Cursor(oneshot::Sender<Result<CursorOutcome, ProtoError>>, usize),
}
