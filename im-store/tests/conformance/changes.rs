//! The change log: append, read after a position, newest position, prune.

use im_core::store::prelude::*;
use im_core::store::Change;

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    (
        "changes_log_append_read_prune",
        changes_log_append_read_prune,
    ),
    (
        "a_reader_following_concurrent_appends_misses_none",
        a_reader_following_concurrent_appends_misses_none,
    ),
];

fn changes_log_append_read_prune(s: &dyn Store) {
    let start = s.last_change_id().unwrap();
    let made = [
        Change::Contact {
            a: uid("alice"),
            b: uid("bob"),
        },
        Change::Room {
            room: rname("club"),
        },
        Change::TokenRevoked {
            user: uid("alice"),
            token_hash: "ab12".into(),
        },
        Change::TokensRevoked {
            user: uid("bob"),
            keep: None,
        },
        Change::TokensRevoked {
            user: uid("bob"),
            keep: Some("cd34".into()),
        },
    ];
    for (i, c) in made.iter().enumerate() {
        s.publish_change(7 + i as u64, c, 1000 + i as i64).unwrap();
    }
    let all = s.changes_after(start, 100).unwrap();
    assert_eq!(all.len(), made.len());
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.change, made[i]);
        assert_eq!(r.origin, 7 + i as u64);
        assert!(r.id > start);
    }
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "in order");
    assert_eq!(s.last_change_id().unwrap(), all[4].id);
    let later = s.changes_after(all[1].id, 2).unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].change, made[2]);
    s.prune_changes(1003).unwrap();
    let kept = s.changes_after(start, 100).unwrap();
    assert_eq!(kept.len(), 2, "only those made at 1003 and later: {kept:?}");
    assert_eq!(s.last_change_id().unwrap(), all[4].id, "positions go on");
}

/// Several processes append at once while another follows the log from
/// its last position: ids must become visible in order, or the follower
/// steps past one that commits late and never sees it.
fn a_reader_following_concurrent_appends_misses_none(s: &dyn Store) {
    const WRITERS: u64 = 4;
    const EACH: u64 = 150;
    let start = s.last_change_id().unwrap();
    let done = std::sync::atomic::AtomicU64::new(0);
    let seen = std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let done = &done;
            scope.spawn(move || {
                for i in 0..EACH {
                    let room = rname(&format!("w{w}r{i}"));
                    s.publish_change(w, &Change::Room { room }, 5000).unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            });
        }
        let (mut cursor, mut seen) = (start, 0u64);
        loop {
            // Read the flag first: a read after every writer finished
            // sees everything there is.
            let finished = done.load(std::sync::atomic::Ordering::Acquire) == WRITERS;
            let got = s.changes_after(cursor, 1000).unwrap();
            if let Some(last) = got.last() {
                cursor = last.id;
            }
            seen += got.len() as u64;
            if finished && got.is_empty() {
                break seen;
            }
            if got.is_empty() {
                // Leave the writers the connection and the cores.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    });
    assert_eq!(seen, WRITERS * EACH, "the follower missed changes");
}
