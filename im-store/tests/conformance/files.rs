//! Files: upload metadata, quotas, cleanup, and a random sequence compared with the in-memory store.

use im_core::error::{StoreError, StoreResult};
use im_core::store::files::{BeginOutcome, UploadLimits};
use im_core::store::prelude::*;
use im_core::MemoryStore;

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    ("files_lifecycle", files_lifecycle),
    ("files_quota_sum", files_quota_sum),
    (
        "files_detached_only_where_no_message_carries_them",
        files_detached_only_where_no_message_carries_them,
    ),
    ("files_stale_selection", files_stale_selection),
    ("files_blob_in_use", files_blob_in_use),
    ("files_delete", files_delete),
    ("files_begin_within_limits", files_begin_within_limits),
    (
        "files_begin_racing_within_limits",
        files_begin_racing_within_limits,
    ),
    ("files_delete_stale_file", files_delete_stale_file),
    (
        "files_attach_racing_collection",
        files_attach_racing_collection,
    ),
    ("files_differential_random", files_differential_random),
];

fn files_lifecycle(s: &dyn Store) {
    assert_eq!(s.file("f-nope").unwrap(), None);
    let mut f = file_rec("f-01", "alice", 5 << 30, 1000);
    f.name = "ünïcødé ../../etc/passwd \"quoted\" 'x'".to_owned();
    f.mime = "image/png".to_owned();
    s.create_file(&f).unwrap();
    assert_eq!(s.file("f-01").unwrap(), Some(f.clone()));
    assert!(matches!(
        s.create_file(&file_rec("f-01", "bob", 1, 2000)),
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.file("f-01").unwrap(),
        Some(f.clone()),
        "conflict changed nothing"
    );

    s.set_file_received(&f.id, 4096).unwrap();
    s.set_file_received(&f.id, 3 << 30).unwrap();
    f.received = 3 << 30;
    assert_eq!(s.file("f-01").unwrap(), Some(f.clone()));
    assert!(matches!(
        s.set_file_received("f-nope", 1),
        Err(StoreError::NotFound)
    ));
    s.finish_file(&f.id, &sha(7)).unwrap();
    f.sha256 = Some(sha(7));
    assert_eq!(s.file("f-01").unwrap(), Some(f.clone()));
    assert!(matches!(
        s.finish_file("f-nope", &sha(7)),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.file("f-nope").unwrap(), None);

    // A record created finished keeps its hash and counts.
    let mut g = file_rec("f-02", "bob", 0, 1500);
    g.sha256 = Some(sha(0));
    s.create_file(&g).unwrap();
    assert_eq!(s.file("f-02").unwrap(), Some(g));

    // Attachments: idempotent, listed in `ConvId` order, which is not the
    // byte order of the names ("dm:abc:zed" > "dm:abc.d:zed").
    assert!(s.file_convs("f-01").unwrap().is_empty());
    let convs = [
        room("lobby"),
        dm("abc.d", "zed"),
        room("a-room"),
        dm("abc", "zed"),
        dm("alice", "bob"),
    ];
    for c in &convs {
        s.attach_file("f-01", c).unwrap();
    }
    s.attach_file("f-01", &room("lobby")).unwrap();
    s.attach_file("f-01", &dm("abc", "zed")).unwrap();
    let mut want = convs.to_vec();
    want.sort();
    assert_eq!(want[0], dm("abc", "zed"));
    assert_eq!(s.file_convs("f-01").unwrap(), want);
    assert!(s.file_convs("f-02").unwrap().is_empty());
    // Attaching needs a record, and is per file.
    assert!(matches!(
        s.attach_file("f-ghost", &room("lobby")),
        Err(StoreError::NotFound)
    ));
    assert!(s.file_convs("f-ghost").unwrap().is_empty());
    assert_eq!(s.file_convs("f-01").unwrap(), want);
}

/// A send the store refused gives its file back; one stored keeps it.
fn files_detached_only_where_no_message_carries_them(s: &dyn Store) {
    let mut f = file_rec("f-01", "alice", 10, 1);
    f.sha256 = Some(sha(1));
    s.create_file(&f).unwrap();
    let (c, other) = (dm("alice", "bob"), dm("alice", "carol"));
    s.attach_file("f-01", &c).unwrap();
    s.attach_file("f-01", &other).unwrap();
    // Nothing in `c` carries it: gone from `c` only.
    s.detach_unsent("f-01", &c).unwrap();
    assert_eq!(s.file_convs("f-01").unwrap(), std::slice::from_ref(&other));
    // A stored message of `other` carries it: it stays.
    let mut m = msg(&other, "alice", "phone", "see this", 5);
    m.attachment = Some("f-01".into());
    send(s, vec![m]);
    s.detach_unsent("f-01", &other).unwrap();
    assert_eq!(s.file_convs("f-01").unwrap(), [other]);
    // Unknown files and conversations are nothing to do.
    s.detach_unsent("f-ghost", &c).unwrap();
    s.detach_unsent("f-01", &room("nowhere")).unwrap();
}

fn files_quota_sum(s: &dyn Store) {
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 0);
    // Past 2^32 in total, to catch narrow sums.
    s.create_file(&file_rec("f-a1", "alice", 3 << 30, 1))
        .unwrap();
    s.create_file(&file_rec("f-a2", "alice", 4 << 30, 2))
        .unwrap();
    s.create_file(&file_rec("f-a3", "alice", 17, 3)).unwrap();
    s.create_file(&file_rec("f-b1", "bob", 100, 4)).unwrap();
    s.create_file(&file_rec("f-z1", "alice.x", 1000, 5))
        .unwrap();
    let total = (3u64 << 30) + (4 << 30) + 17;
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), total);
    // Finished and unfinished files count alike, by announced size.
    s.set_file_received("f-a1", 10).unwrap();
    s.finish_file("f-a3", &sha(1)).unwrap();
    s.attach_file("f-a3", &dm("alice", "bob")).unwrap();
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), total);
    assert_eq!(s.user_file_bytes(&uid("bob")).unwrap(), 100);
    assert_eq!(s.user_file_bytes(&uid("alice.x")).unwrap(), 1000);
    assert_eq!(s.user_file_bytes(&uid("carol")).unwrap(), 0);
    s.delete_file("f-a2").unwrap();
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), total - (4 << 30));
    s.delete_file("f-a1").unwrap();
    s.delete_file("f-a3").unwrap();
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 0);
    assert_eq!(s.user_file_bytes(&uid("bob")).unwrap(), 100);
}

fn files_stale_selection(s: &dyn Store) {
    assert!(s.stale_files(i64::MAX).unwrap().is_empty());
    let cutoff = 10_000;
    // (id, created_at, finished, attached); ids sort unlike creation times.
    let cases = [
        ("f-9-old-unfinished", 500, false, false),
        ("f-1-old-unsent", 600, true, false),
        ("f-5-old-sent", 700, true, true),
        ("f-3-old-unfinished-attached", 800, false, true),
        ("f-7-at-cutoff-unfinished", cutoff, false, false),
        ("f-0-at-cutoff-unsent", cutoff, true, false),
        ("f-2-new-unsent", cutoff + 500, true, false),
        ("f-8-new-unfinished", cutoff + 1000, false, false),
        ("f-4-new-sent", cutoff + 1, true, true),
    ];
    for (i, (id, at, finished, attached)) in cases.iter().enumerate() {
        let mut f = file_rec(id, if i % 2 == 0 { "alice" } else { "bob" }, 10, *at);
        s.create_file(&f).unwrap();
        s.set_file_received(id, 5).unwrap();
        f.received = 5;
        if *finished {
            s.finish_file(id, &sha(i as u8)).unwrap();
        }
        if *attached {
            s.attach_file(id, &dm("alice", "bob")).unwrap();
        }
    }
    let stale = s.stale_files(cutoff).unwrap();
    assert_eq!(
        ids(&stale),
        [
            "f-1-old-unsent",
            "f-3-old-unfinished-attached",
            "f-9-old-unfinished",
        ]
    );
    // Whole records, as `file` gives them.
    for f in &stale {
        assert_eq!(s.file(&f.id).unwrap().as_ref(), Some(f));
    }
    assert_eq!(stale[0].sha256, Some(sha(1)));
    assert_eq!(stale[0].received, 5);
    assert_eq!(stale[2].sha256, None);

    assert!(s.stale_files(500).unwrap().is_empty(), "strictly before");
    assert_eq!(ids(&s.stale_files(501).unwrap()), ["f-9-old-unfinished"]);
    assert_eq!(
        ids(&s.stale_files(cutoff + 1).unwrap()),
        [
            "f-0-at-cutoff-unsent",
            "f-1-old-unsent",
            "f-3-old-unfinished-attached",
            "f-7-at-cutoff-unfinished",
            "f-9-old-unfinished",
        ]
    );
    assert_eq!(
        ids(&s.stale_files(i64::MAX).unwrap()),
        [
            "f-0-at-cutoff-unsent",
            "f-1-old-unsent",
            "f-2-new-unsent",
            "f-3-old-unfinished-attached",
            "f-7-at-cutoff-unfinished",
            "f-8-new-unfinished",
            "f-9-old-unfinished",
        ]
    );
    // Sending an unsent file keeps it; cleaning up removes what was listed.
    s.attach_file("f-1-old-unsent", &room("lobby")).unwrap();
    for f in s.stale_files(cutoff).unwrap() {
        s.delete_file(&f.id).unwrap();
    }
    assert!(s.stale_files(cutoff).unwrap().is_empty());
    assert_eq!(s.file("f-9-old-unfinished").unwrap(), None);
    assert!(s.file("f-5-old-sent").unwrap().is_some());
    // Deleting a sent file forgets where it was sent: recreated under the
    // same id, it is unsent (and stale) again.
    s.delete_file("f-5-old-sent").unwrap();
    assert!(s.file_convs("f-5-old-sent").unwrap().is_empty());
    let mut f = file_rec("f-5-old-sent", "alice", 10, 700);
    f.sha256 = Some(sha(5));
    s.create_file(&f).unwrap();
    assert_eq!(s.stale_files(cutoff).unwrap(), [f]);
}

fn files_blob_in_use(s: &dyn Store) {
    assert!(!s.blob_in_use(&sha(1)).unwrap());
    s.create_file(&file_rec("f-1", "alice", 3, 1)).unwrap();
    s.create_file(&file_rec("f-2", "bob", 3, 2)).unwrap();
    s.create_file(&file_rec("f-3", "bob", 3, 3)).unwrap();
    assert!(
        !s.blob_in_use(&sha(1)).unwrap(),
        "unfinished files use no blob"
    );
    s.finish_file("f-1", &sha(1)).unwrap();
    s.finish_file("f-2", &sha(1)).unwrap();
    s.finish_file("f-3", &sha(0xcd)).unwrap();
    assert!(s.blob_in_use(&sha(1)).unwrap());
    assert!(s.blob_in_use(&sha(0xcd)).unwrap());
    assert!(!s.blob_in_use(&sha(3)).unwrap());
    assert!(!s.blob_in_use("").unwrap());
    assert!(
        !s.blob_in_use(&sha(0xcd).to_uppercase()).unwrap(),
        "hashes compare exactly"
    );
    s.delete_file("f-1").unwrap();
    assert!(s.blob_in_use(&sha(1)).unwrap(), "f-2 still uses it");
    s.delete_file("f-2").unwrap();
    assert!(!s.blob_in_use(&sha(1)).unwrap());
    assert!(s.blob_in_use(&sha(0xcd)).unwrap());
}

fn files_delete(s: &dyn Store) {
    // Unknown ids are fine.
    s.delete_file("f-nope").unwrap();
    let mut a = file_rec("f-a", "alice", 10, 1);
    a.sha256 = Some(sha(1));
    s.create_file(&a).unwrap();
    s.create_file(&file_rec("f-b", "alice", 20, 2)).unwrap();
    s.attach_file("f-a", &dm("alice", "bob")).unwrap();
    s.attach_file("f-a", &room("lobby")).unwrap();
    s.attach_file("f-b", &room("lobby")).unwrap();
    s.delete_file("f-a").unwrap();
    assert_eq!(s.file("f-a").unwrap(), None);
    assert!(s.file_convs("f-a").unwrap().is_empty());
    assert!(!s.blob_in_use(&sha(1)).unwrap());
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 20);
    // Other files keep theirs.
    assert_eq!(s.file_convs("f-b").unwrap(), [room("lobby")]);
    assert!(s.file("f-b").unwrap().is_some());
    s.delete_file("f-a").unwrap();
    // The id can be used again, from scratch.
    let again = file_rec("f-a", "bob", 5, 3);
    s.create_file(&again).unwrap();
    assert_eq!(s.file("f-a").unwrap(), Some(again));
    assert!(s.file_convs("f-a").unwrap().is_empty());
    // A deleted file cannot be attached any more.
    assert!(matches!(s.attach_file("f-b", &dm("alice", "bob")), Ok(())));
    s.delete_file("f-b").unwrap();
    assert!(matches!(
        s.attach_file("f-b", &dm("alice", "bob")),
        Err(StoreError::NotFound)
    ));
    assert!(s.file_convs("f-b").unwrap().is_empty());
}

fn limits(quota: u64, max_open: u64) -> UploadLimits {
    UploadLimits { quota, max_open }
}

fn files_begin_within_limits(s: &dyn Store) {
    s.create_user(&user("alice", 1)).unwrap();
    let l = limits(1000, 3);
    let begin = |id: &str, size: u64| s.begin_file(&file_rec(id, "alice", size, 10), l);
    assert_eq!(begin("f-1", 1001).unwrap(), BeginOutcome::OverQuota);
    assert_eq!(s.file("f-1").unwrap(), None, "refused: nothing recorded");
    assert_eq!(begin("f-1", 600).unwrap(), BeginOutcome::Begun);
    assert_eq!(
        s.file("f-1").unwrap(),
        Some(file_rec("f-1", "alice", 600, 10))
    );
    assert!(matches!(begin("f-1", 1), Err(StoreError::Conflict)));
    assert_eq!(begin("f-2", 401).unwrap(), BeginOutcome::OverQuota);
    assert_eq!(begin("f-2", 0).unwrap(), BeginOutcome::Begun);
    assert_eq!(begin("f-3", 300).unwrap(), BeginOutcome::Begun);
    // Three unfinished: the quota is checked first, then the count.
    assert_eq!(begin("f-4", 101).unwrap(), BeginOutcome::OverQuota);
    assert_eq!(begin("f-4", 100).unwrap(), BeginOutcome::TooManyOpen);
    s.finish_file("f-2", &sha(1)).unwrap();
    assert_eq!(begin("f-4", 100).unwrap(), BeginOutcome::Begun);
    // The quota used up exactly: even an empty file is refused.
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 1000);
    assert_eq!(begin("f-5", 0).unwrap(), BeginOutcome::OverQuota);
    assert_eq!(s.stale_files(i64::MAX).unwrap().len(), 4);
    // Limits are per user; an upload may begin finished (as `create_file`).
    let mut g = file_rec("f-6", "bob", 1000, 10);
    g.sha256 = Some(sha(2));
    assert_eq!(
        s.begin_file(&g, limits(1000, 1)).unwrap(),
        BeginOutcome::Begun
    );
    assert_eq!(s.file("f-6").unwrap(), Some(g));
    assert_eq!(
        s.begin_file(&file_rec("f-7", "carol", 0, 10), limits(0, 5))
            .unwrap(),
        BeginOutcome::OverQuota
    );
}

/// Begins of one user from many threads at once: between them, never
/// past the quota nor past the count of unfinished uploads.
fn files_begin_racing_within_limits(s: &dyn Store) {
    s.create_user(&user("alice", 1)).unwrap();
    s.create_user(&user("bob", 1)).unwrap();
    let race = |who: &str, size: u64, l: UploadLimits| {
        std::thread::scope(|t| {
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    t.spawn(move || {
                        (0..5)
                            .map(|j| {
                                let id = format!("f-{who}-{i}-{j}");
                                s.begin_file(&file_rec(&id, who, size, 10), l).unwrap()
                            })
                            .filter(|o| *o == BeginOutcome::Begun)
                            .count()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        })
    };
    assert_eq!(
        race("alice", 150, limits(1000, 100)),
        6,
        "quota 1000, 150 each"
    );
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 900);
    assert_eq!(
        race("bob", 1, limits(1 << 40, 7)),
        7,
        "7 unfinished at a time"
    );
    assert_eq!(s.user_file_bytes(&uid("bob")).unwrap(), 7);
}

fn files_delete_stale_file(s: &dyn Store) {
    let cutoff = 1000;
    let mut sent = file_rec("f-sent", "alice", 10, 1);
    sent.sha256 = Some(sha(1));
    let mut unsent = file_rec("f-unsent", "alice", 10, 2);
    unsent.sha256 = Some(sha(2));
    let open = file_rec("f-open", "alice", 10, 3);
    let mut young = file_rec("f-young", "alice", 10, cutoff);
    young.sha256 = Some(sha(3));
    for f in [&sent, &unsent, &open, &young] {
        s.create_file(f).unwrap();
    }
    s.attach_file("f-sent", &room("lobby")).unwrap();
    // Kept: sent, or not old enough; unknown ids are fine.
    for id in ["f-sent", "f-young", "f-nope"] {
        assert_eq!(s.delete_stale_file(id, cutoff).unwrap(), None, "{id}");
    }
    assert!(s.file("f-sent").unwrap().is_some());
    assert_eq!(s.file_convs("f-sent").unwrap(), [room("lobby")]);
    assert!(s.file("f-young").unwrap().is_some());
    // Removed: an unsent file and an unfinished upload, as they were.
    assert_eq!(
        s.delete_stale_file("f-unsent", cutoff).unwrap(),
        Some(unsent)
    );
    assert_eq!(s.delete_stale_file("f-open", cutoff).unwrap(), Some(open));
    assert_eq!(ids(&s.stale_files(i64::MAX).unwrap()), ["f-young"]);
    assert!(!s.blob_in_use(&sha(2)).unwrap());
    assert_eq!(s.delete_stale_file("f-unsent", cutoff).unwrap(), None);
    // An unfinished upload stays stale even if attached, as listed.
    let mut odd = file_rec("f-odd", "alice", 10, 4);
    s.create_file(&odd).unwrap();
    s.attach_file("f-odd", &room("lobby")).unwrap();
    odd.received = 0;
    assert_eq!(s.delete_stale_file("f-odd", cutoff).unwrap(), Some(odd));
    assert!(s.file_convs("f-odd").unwrap().is_empty());
}

/// Files attached from one thread while another collects them: each is
/// either attached and kept, or collected and refused to the attach,
/// never attached and then collected.
fn files_attach_racing_collection(s: &dyn Store) {
    const N: usize = 200;
    let id = |i: usize| format!("f-race-{i:03}");
    for i in 0..N {
        let mut f = file_rec(&id(i), "alice", 10, 1);
        f.sha256 = Some(sha(1));
        s.create_file(&f).unwrap();
    }
    let (attached, collected) = std::thread::scope(|t| {
        let attach = t.spawn(|| {
            (0..N)
                .rev()
                .map(|i| match s.attach_file(&id(i), &room("lobby")) {
                    Ok(()) => true,
                    Err(StoreError::NotFound) => false,
                    Err(e) => panic!("attach {}: {e:?}", id(i)),
                })
                .collect::<Vec<_>>()
        });
        let collect = t.spawn(|| {
            (0..N)
                .map(|i| s.delete_stale_file(&id(i), 1000).unwrap().is_some())
                .collect::<Vec<_>>()
        });
        (attach.join().unwrap(), collect.join().unwrap())
    });
    for i in 0..N {
        let a = attached[N - 1 - i];
        assert_ne!(
            a,
            collected[i],
            "{}: attached {a}, collected {}",
            id(i),
            collected[i]
        );
        assert_eq!(s.file(&id(i)).unwrap().is_some(), a, "{}", id(i));
        let convs = s.file_convs(&id(i)).unwrap();
        assert_eq!(convs.is_empty(), !a, "{}: {convs:?}", id(i));
    }
}

/// Random file operations on the store and on a `MemoryStore`; every
/// answer compared.
fn files_differential_random(s: &dyn Store) {
    let reference = MemoryStore::new();
    let seed = std::env::var("IM_TEST_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1D);
    let mut rng = Rng(seed | 1);
    for round in 0..400 {
        let id = fid(rng.below(25));
        random_op(s, &reference, &mut rng, round, &id);
        assert_eq!(s.file(&id).unwrap(), reference.file(&id).unwrap());
        assert_eq!(
            s.file_convs(&id).unwrap(),
            reference.file_convs(&id).unwrap()
        );
        if round % 20 == 19 {
            compare_everything(s, &reference, round);
        }
    }
}

const RANDOM_USERS: [&str; 3] = ["amy", "ben", "cat"];

fn fid(n: u64) -> String {
    format!("f-{n:02}")
}

/// One random operation on file `id`, on both stores, answers compared.
fn random_op(s: &dyn Store, reference: &MemoryStore, rng: &mut Rng, round: usize, id: &str) {
    let convs = [
        dm("amy", "ben"),
        dm("ben", "cat"),
        room("lobby"),
        room("dev"),
    ];
    let now = rng.below(100) as i64;
    let what = |op: &str| format!("round {round}: {op} {id}");
    match rng.below(11) {
        0 | 1 => {
            let mut f = file_rec(id, rng.pick::<&str>(&RANDOM_USERS), rng.below(1 << 40), now);
            if rng.below(4) == 0 {
                f.sha256 = Some(sha(rng.below(4) as u8));
            }
            let (a, b) = (s.create_file(&f), reference.create_file(&f));
            same_answer(a, b, what("create_file"));
        }
        2 => {
            let n = rng.below(1 << 40);
            let (a, b) = (
                s.set_file_received(id, n),
                reference.set_file_received(id, n),
            );
            same_answer(a, b, what("set_file_received"));
        }
        3 => {
            let h = sha(rng.below(4) as u8);
            let (a, b) = (s.finish_file(id, &h), reference.finish_file(id, &h));
            same_answer(a, b, what("finish_file"));
        }
        4 | 5 => {
            let c = rng.pick(&convs);
            let (a, b) = (s.attach_file(id, c), reference.attach_file(id, c));
            same_answer(a, b, what("attach_file"));
        }
        6 | 7 => {
            let f = file_rec(id, rng.pick::<&str>(&RANDOM_USERS), rng.below(1 << 12), now);
            let l = limits(rng.below(1 << 14), rng.below(6));
            let (a, b) = (s.begin_file(&f, l), reference.begin_file(&f, l));
            same_answer(a, b, what(&format!("begin_file {l:?}")));
        }
        8 => {
            let before = rng.below(110) as i64;
            let (a, b) = (
                s.delete_stale_file(id, before),
                reference.delete_stale_file(id, before),
            );
            same_answer(a, b, what(&format!("delete_stale_file {before}")));
        }
        _ => {
            s.delete_file(id).unwrap();
            reference.delete_file(id).unwrap();
        }
    }
}

/// Both answers equal (errors compared by their debug form).
fn same_answer<T: PartialEq + std::fmt::Debug>(a: StoreResult<T>, b: StoreResult<T>, what: String) {
    let (a, b) = (
        a.map_err(|e| format!("{e:?}")),
        b.map_err(|e| format!("{e:?}")),
    );
    assert_eq!(a, b, "{what}");
}

/// Every listing and sum of both stores, compared.
fn compare_everything(s: &dyn Store, reference: &MemoryStore, round: usize) {
    for cutoff in [0, 30, 60, 100, i64::MAX] {
        assert_eq!(
            s.stale_files(cutoff).unwrap(),
            reference.stale_files(cutoff).unwrap(),
            "round {round}: stale_files({cutoff})"
        );
    }
    for u in RANDOM_USERS {
        assert_eq!(
            s.user_file_bytes(&uid(u)).unwrap(),
            reference.user_file_bytes(&uid(u)).unwrap()
        );
    }
    for h in 0..5 {
        assert_eq!(
            s.blob_in_use(&sha(h)).unwrap(),
            reference.blob_in_use(&sha(h)).unwrap()
        );
    }
    for n in 0..25 {
        assert_eq!(s.file(&fid(n)).unwrap(), reference.file(&fid(n)).unwrap());
    }
}
