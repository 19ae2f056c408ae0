//! Files: upload metadata, quotas, cleanup, and a random sequence compared with the in-memory store.

use im_core::error::StoreError;
use im_core::store::prelude::*;
use im_core::MemoryStore;

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    ("files_lifecycle", files_lifecycle),
    ("files_quota_sum", files_quota_sum),
    ("files_stale_selection", files_stale_selection),
    ("files_blob_in_use", files_blob_in_use),
    ("files_delete", files_delete),
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
    // Attaching is recorded even for an id without a record (like the
    // in-memory store), and per file.
    s.attach_file("f-ghost", &room("lobby")).unwrap();
    assert_eq!(s.file_convs("f-ghost").unwrap(), [room("lobby")]);
    assert_eq!(s.file_convs("f-01").unwrap(), want);
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
    // Attachments of an id without a record go too.
    s.attach_file("f-ghost", &room("lobby")).unwrap();
    s.delete_file("f-ghost").unwrap();
    assert!(s.file_convs("f-ghost").unwrap().is_empty());
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
    let users = ["amy", "ben", "cat"];
    let convs = [
        dm("amy", "ben"),
        dm("ben", "cat"),
        room("lobby"),
        room("dev"),
    ];
    let fid = |n: u64| format!("f-{n:02}");
    for round in 0..400 {
        let id = fid(rng.below(25));
        let now = rng.below(100) as i64;
        let op = rng.below(8);
        match op {
            0 | 1 => {
                let mut f = file_rec(&id, rng.pick::<&str>(&users), rng.below(1 << 40), now);
                if rng.below(4) == 0 {
                    f.sha256 = Some(sha(rng.below(4) as u8));
                }
                let a = s.create_file(&f).map_err(|e| format!("{e:?}"));
                let b = reference.create_file(&f).map_err(|e| format!("{e:?}"));
                assert_eq!(a, b, "round {round}: create_file {id}");
            }
            2 => {
                let n = rng.below(1 << 40);
                let a = s.set_file_received(&id, n).map_err(|e| format!("{e:?}"));
                let b = reference
                    .set_file_received(&id, n)
                    .map_err(|e| format!("{e:?}"));
                assert_eq!(a, b, "round {round}: set_file_received {id}");
            }
            3 => {
                let h = sha(rng.below(4) as u8);
                let a = s.finish_file(&id, &h).map_err(|e| format!("{e:?}"));
                let b = reference.finish_file(&id, &h).map_err(|e| format!("{e:?}"));
                assert_eq!(a, b, "round {round}: finish_file {id}");
            }
            4 | 5 => {
                let c = rng.pick(&convs);
                s.attach_file(&id, c).unwrap();
                reference.attach_file(&id, c).unwrap();
            }
            _ => {
                s.delete_file(&id).unwrap();
                reference.delete_file(&id).unwrap();
            }
        }
        assert_eq!(s.file(&id).unwrap(), reference.file(&id).unwrap());
        assert_eq!(
            s.file_convs(&id).unwrap(),
            reference.file_convs(&id).unwrap()
        );
        if round % 20 == 19 {
            for cutoff in [0, 30, 60, 100, i64::MAX] {
                assert_eq!(
                    s.stale_files(cutoff).unwrap(),
                    reference.stale_files(cutoff).unwrap(),
                    "round {round}: stale_files({cutoff})"
                );
            }
            for u in users {
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
    }
}
