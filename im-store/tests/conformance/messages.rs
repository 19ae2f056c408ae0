//! Messages and cursors: group commit, paging, listings, and a long random sequence of batches compared with the in-memory store.

use im_core::ids::ConvId;
use im_core::store::prelude::*;
use im_core::store::{CursorOutcome, StoredMessage};
use im_core::MemoryStore;

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    (
        "batch_gapless_across_many_conversations",
        batch_gapless_across_many_conversations,
    ),
    ("batch_ts_never_decreases", batch_ts_never_decreases),
    (
        "batch_dedup_within_and_across_batches",
        batch_dedup_within_and_across_batches,
    ),
    (
        "batch_direct_members_on_first_message",
        batch_direct_members_on_first_message,
    ),
    (
        "batch_sender_cursors_follow_only_from_just_below",
        batch_sender_cursors_follow_only_from_just_below,
    ),
    (
        "cursor_updates_clamp_and_never_move_back",
        cursor_updates_clamp_and_never_move_back,
    ),
    (
        "cursor_updates_in_one_batch_apply_in_order",
        cursor_updates_in_one_batch_apply_in_order,
    ),
    ("messages_paging", messages_paging),
    ("conversations_listing", conversations_listing),
    ("conversations_ordering_ties", conversations_ordering_ties),
    ("empty_batch", empty_batch),
    ("differential_random", differential_random),
];

fn batch_gapless_across_many_conversations(s: &dyn Store) {
    let convs: Vec<ConvId> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                room(&format!("room{i}"))
            } else {
                dm("alice", &format!("peer{i:02}"))
            }
        })
        .collect();
    let mut expected_next = vec![1u64; convs.len()];
    for round in 0..3 {
        let mut batch = Vec::new();
        let mut which = Vec::new();
        for i in 0..600 {
            let k = (i * 7 + round) % convs.len();
            let from = if i % 3 == 0 { "alice" } else { "bob" };
            let from = if convs[k].is_direct() && from == "bob" {
                convs[k].peer_of(&uid("alice")).unwrap().as_str().to_owned()
            } else {
                from.to_owned()
            };
            batch.push(msg(
                &convs[k],
                &from,
                "d",
                &format!("r{round} m{i}"),
                1000 + i as i64,
            ));
            which.push(k);
        }
        let appended = send(s, batch.clone());
        for (a, k) in appended.iter().zip(&which) {
            assert!(!a.duplicate);
            assert_eq!(a.seq, expected_next[*k], "conversation {}", convs[*k]);
            expected_next[*k] += 1;
        }
    }
    for (k, conv) in convs.iter().enumerate() {
        let stored = all_messages(s, conv);
        let want: Vec<u64> = (1..expected_next[k]).collect();
        assert_eq!(seqs(&stored), want, "{conv}");
        assert!(stored.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert!(stored.iter().all(|m| &m.conv == conv));
    }
}

fn batch_ts_never_decreases(s: &dyn Store) {
    let c = dm("alice", "bob");
    let a = send(
        s,
        vec![
            msg(&c, "alice", "d", "1", 100),
            msg(&c, "bob", "d", "2", 50),
            msg(&c, "alice", "d", "3", 200),
            msg(&c, "bob", "d", "4", 150),
        ],
    );
    assert_eq!(a, [new(1, 100), new(2, 100), new(3, 200), new(4, 200)]);
    let a = send(s, vec![msg(&c, "alice", "d", "5", 10)]);
    assert_eq!(a, [new(5, 200)]);
    let a = send(s, vec![msg(&c, "alice", "d", "6", 300)]);
    assert_eq!(a, [new(6, 300)]);
    // Another conversation has its own clock.
    let a = send(s, vec![msg(&dm("alice", "carol"), "alice", "d", "x", 5)]);
    assert_eq!(a, [new(1, 5)]);
    let ts: Vec<i64> = all_messages(s, &c).iter().map(|m| m.ts).collect();
    assert_eq!(ts, [100, 100, 200, 200, 200, 300]);
}

fn batch_dedup_within_and_across_batches(s: &dyn Store) {
    let r = room("lobby");
    let c = dm("alice", "bob");
    let a = send(
        s,
        vec![
            with_cid(msg(&r, "alice", "d", "first", 100), "x"),
            with_cid(msg(&r, "alice", "d2", "again", 150), "x"),
            with_cid(msg(&r, "bob", "d", "bob's x", 160), "x"),
            with_cid(msg(&r, "alice", "d", "y", 170), "y"),
            msg(&r, "alice", "d", "no id", 180),
            with_cid(msg(&c, "alice", "d", "x in dm", 190), "x"),
        ],
    );
    assert_eq!(
        a,
        [
            new(1, 100),
            dup(1, 100),
            new(2, 160),
            new(3, 170),
            new(4, 180),
            new(1, 190)
        ]
    );
    // Across batches: the original seq and ts, even with a later `now`.
    let a = send(
        s,
        vec![
            msg(&r, "carol", "d", "hello", 200),
            with_cid(msg(&r, "alice", "d", "retry", 999), "x"),
            with_cid(msg(&r, "bob", "d", "retry", 999), "x"),
            with_cid(msg(&c, "alice", "d", "retry", 999), "x"),
            with_cid(msg(&c, "bob", "d", "new", 300), "x"),
        ],
    );
    assert_eq!(
        a,
        [
            new(5, 200),
            dup(1, 100),
            dup(2, 160),
            dup(1, 190),
            new(2, 300)
        ]
    );
    let stored = all_messages(s, &r);
    assert_eq!(seqs(&stored), [1, 2, 3, 4, 5]);
    assert_eq!(stored[0].body, "first");
    assert_eq!(stored[0].client_id.as_deref(), Some("x"));
    assert_eq!(stored[4].client_id, None);
    assert_eq!(all_messages(s, &c).len(), 2);

    assert_eq!(
        s.find_client_id(&r, &uid("alice"), "x").unwrap(),
        Some(dup(1, 100))
    );
    assert_eq!(
        s.find_client_id(&r, &uid("bob"), "x").unwrap(),
        Some(dup(2, 160))
    );
    assert_eq!(
        s.find_client_id(&c, &uid("bob"), "x").unwrap(),
        Some(dup(2, 300))
    );
    assert_eq!(s.find_client_id(&r, &uid("carol"), "x").unwrap(), None);
    assert_eq!(s.find_client_id(&r, &uid("alice"), "z").unwrap(), None);
    assert_eq!(
        s.find_client_id(&room("nowhere"), &uid("alice"), "x")
            .unwrap(),
        None
    );
    // Bob's message 2 was not just above his read cursor (0); alice's
    // cursor followed her message 1.
    assert_eq!(summary(s, "bob", "d", &c).read_seq, 0);
    assert_eq!(summary(s, "alice", "d", &c).read_seq, 1);
    // A duplicate moves no cursor.
    send(s, vec![with_cid(msg(&c, "bob", "d", "retry", 999), "x")]);
    assert_eq!(summary(s, "bob", "d", &c).read_seq, 0);
}

fn batch_direct_members_on_first_message(s: &dyn Store) {
    let c = dm("alice", "bob");
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));
    assert!(!s.is_member(&c, &alice).unwrap());
    assert!(!s.is_member(&c, &bob).unwrap());
    assert!(s.conversations(&bob, "d").unwrap().is_empty());
    send(s, vec![msg(&c, "alice", "d", "hi", 1)]);
    assert!(s.is_member(&c, &alice).unwrap());
    assert!(s.is_member(&c, &bob).unwrap(), "the recipient too");
    assert!(!s.is_member(&c, &carol).unwrap());
    assert_eq!(s.conversations(&bob, "d").unwrap().len(), 1);
    send(s, vec![msg(&c, "bob", "d", "hey", 2)]);
    assert!(s.is_member(&c, &alice).unwrap());
    // Rooms get members only by joining, which this trait does not do:
    // sending does not make the sender a member.
    let r = room("lobby");
    send(s, vec![msg(&r, "alice", "d", "hi", 3)]);
    assert!(!s.is_member(&r, &alice).unwrap());
    assert!(s
        .conversations(&alice, "d")
        .unwrap()
        .iter()
        .all(|c| c.conv.is_direct()));
}

fn batch_sender_cursors_follow_only_from_just_below(s: &dyn Store) {
    let c = dm("alice", "bob");
    // Several messages of one sender in the conversation's first batch.
    let a = send(
        s,
        vec![
            msg(&c, "alice", "phone", "1", 1),
            msg(&c, "alice", "phone", "2", 2),
            msg(&c, "bob", "pc", "3", 3),
            msg(&c, "alice", "phone", "4", 4),
        ],
    );
    assert_eq!(a.iter().map(|a| a.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (2, 2));
    assert_eq!(summary(s, "alice", "laptop", &c).delivered_seq, 0);
    let bo = summary(s, "bob", "pc", &c);
    assert_eq!(
        (bo.read_seq, bo.delivered_seq),
        (0, 0),
        "3 is not just above 0"
    );

    // Alice catches up on her phone, then writes from her laptop.
    apply(s, vec![cursor("alice", "phone", &c, 4, true)]);
    send(s, vec![msg(&c, "alice", "laptop", "5", 5)]);
    let al = summary(s, "alice", "laptop", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (5, 0));
    assert_eq!(summary(s, "alice", "phone", &c).delivered_seq, 4);

    // A run from the phone: read follows (5 -> 6 -> 7), the phone's
    // delivered cursor (4) does not; a different device breaks the run
    // for delivered only.
    send(
        s,
        vec![
            msg(&c, "alice", "phone", "6", 6),
            msg(&c, "alice", "phone", "7", 7),
        ],
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (7, 4));
    apply(s, vec![cursor("alice", "phone", &c, 7, false)]);
    send(
        s,
        vec![
            msg(&c, "alice", "phone", "8", 8),
            msg(&c, "alice", "laptop", "9", 9),
            msg(&c, "alice", "phone", "10", 10),
        ],
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (10, 8));
    // Bob's message in between stops the run.
    send(
        s,
        vec![
            msg(&c, "alice", "phone", "11", 11),
            msg(&c, "bob", "pc", "12", 12),
            msg(&c, "alice", "phone", "13", 13),
        ],
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (11, 8));
    // Rooms too (cursors exist without membership).
    let r = room("lobby");
    send(s, vec![msg(&r, "alice", "phone", "r1", 1)]);
    let (_, out) = s
        .write_batch(&[], &[cursor("alice", "phone", &r, 1, true)])
        .unwrap();
    assert_eq!(out, [CursorOutcome::default()], "already read by sending");
}

fn cursor_updates_clamp_and_never_move_back(s: &dyn Store) {
    let c = dm("alice", "bob");
    send(
        s,
        (1..=5)
            .map(|i| msg(&c, "bob", "pc", &i.to_string(), i))
            .collect(),
    );
    let out = apply(s, vec![cursor("alice", "phone", &c, 100, true)]);
    assert_eq!(out[0].read_advanced_to, Some(5), "clamped to the last seq");
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq, al.unread), (5, 5, 0));
    assert_eq!(
        apply(s, vec![cursor("alice", "phone", &c, 100, true)])[0].read_advanced_to,
        None
    );
    assert_eq!(
        apply(s, vec![cursor("alice", "phone", &c, 2, true)])[0].read_advanced_to,
        None
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (5, 5), "never backwards");

    // Delivered is per device, read per user.
    let al = summary(s, "alice", "laptop", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (5, 0));
    apply(s, vec![cursor("alice", "laptop", &c, 3, false)]);
    assert_eq!(summary(s, "alice", "laptop", &c).delivered_seq, 3);
    assert_eq!(summary(s, "alice", "phone", &c).delivered_seq, 5);

    // Delivered without read leaves the read cursor.
    apply(s, vec![cursor("bob", "tab", &c, 4, false)]);
    let bo = summary(s, "bob", "tab", &c);
    assert_eq!((bo.read_seq, bo.delivered_seq), (5, 4));
    assert_eq!(bo.peer_read_seq, Some(5));

    // Zero and u64::MAX.
    assert_eq!(
        apply(s, vec![cursor("carol", "x", &c, 0, true)])[0].read_advanced_to,
        None
    );
    assert_eq!(
        apply(s, vec![cursor("bob", "tab", &c, u64::MAX, false)])[0],
        CursorOutcome::default()
    );
    assert_eq!(summary(s, "bob", "tab", &c).delivered_seq, 5);

    // Unknown conversations: nothing happens.
    let out = apply(
        s,
        vec![cursor("alice", "phone", &dm("alice", "zoe"), 3, true)],
    );
    assert_eq!(out, [CursorOutcome::default()]);
    assert_eq!(s.conversations(&uid("alice"), "phone").unwrap().len(), 1);

    // A cursor in the same batch as messages sees them.
    let (a, out) = s
        .write_batch(
            &[msg(&c, "bob", "pc", "6", 6), msg(&c, "bob", "pc", "7", 7)],
            &[cursor("alice", "phone", &c, 99, true)],
        )
        .unwrap();
    assert_eq!(a.iter().map(|a| a.seq).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(out[0].read_advanced_to, Some(7));
}

fn cursor_updates_in_one_batch_apply_in_order(s: &dyn Store) {
    let c = dm("alice", "bob");
    send(
        s,
        (1..=6)
            .map(|i| msg(&c, "bob", "pc", &i.to_string(), i))
            .collect(),
    );
    let out = apply(
        s,
        vec![
            cursor("alice", "phone", &c, 3, true),
            cursor("alice", "laptop", &c, 4, true),
            cursor("alice", "phone", &c, 2, true),
            cursor("alice", "phone", &c, 5, false),
            cursor("alice", "tab", &c, 6, true),
        ],
    );
    let got: Vec<Option<u64>> = out.iter().map(|o| o.read_advanced_to).collect();
    assert_eq!(got, [Some(3), Some(4), None, None, Some(6)]);
    assert_eq!(summary(s, "alice", "phone", &c).delivered_seq, 5);
    assert_eq!(summary(s, "alice", "laptop", &c).delivered_seq, 4);
    assert_eq!(summary(s, "alice", "tab", &c).read_seq, 6);
}

fn messages_paging(s: &dyn Store) {
    let c = room("books");
    let mut batch = Vec::new();
    for i in 1..=25i64 {
        let mut m = msg(
            &c,
            if i % 2 == 0 { "alice" } else { "bob" },
            "d",
            &format!("m{i}"),
            i * 10,
        );
        if i % 5 == 0 {
            m.client_id = Some(format!("c{i}"));
            m.attachment = Some(format!("file-{i}"));
        }
        if i == 7 {
            m.body = String::new();
        }
        batch.push(m);
    }
    send(s, batch);
    let range = |a: u64, b: u64| (a..=b).collect::<Vec<u64>>();
    assert_eq!(seqs(&s.messages_after(&c, 0, 10).unwrap()), range(1, 10));
    assert_eq!(seqs(&s.messages_after(&c, 10, 10).unwrap()), range(11, 20));
    assert_eq!(seqs(&s.messages_after(&c, 20, 10).unwrap()), range(21, 25));
    assert!(s.messages_after(&c, 25, 10).unwrap().is_empty());
    assert!(s.messages_after(&c, 1000, 10).unwrap().is_empty());
    assert!(s.messages_after(&c, u64::MAX, 10).unwrap().is_empty());
    assert!(s.messages_after(&c, 0, 0).unwrap().is_empty());
    assert_eq!(
        seqs(&s.messages_before(&c, None, 10).unwrap()),
        range(16, 25)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(16), 10).unwrap()),
        range(6, 15)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(3), 10).unwrap()),
        range(1, 2)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(1000), 3).unwrap()),
        range(23, 25)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(u64::MAX), 2).unwrap()),
        range(24, 25)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, None, usize::MAX).unwrap()),
        range(1, 25)
    );
    assert!(s.messages_before(&c, Some(1), 10).unwrap().is_empty());
    assert!(s.messages_before(&c, Some(0), 10).unwrap().is_empty());
    assert!(s.messages_before(&c, None, 0).unwrap().is_empty());
    assert!(s.messages_after(&room("empty"), 0, 10).unwrap().is_empty());
    assert!(s
        .messages_before(&room("empty"), None, 10)
        .unwrap()
        .is_empty());

    let m = &s.messages_after(&c, 4, 1).unwrap()[0];
    assert_eq!(
        m,
        &StoredMessage {
            conv: c.clone(),
            seq: 5,
            from: uid("bob"),
            body: "m5".into(),
            ts: 50,
            client_id: Some("c5".into()),
            attachment: Some("file-5".into()),
        }
    );
    assert_eq!(s.messages_before(&c, Some(8), 1).unwrap()[0].body, "");
    assert_eq!(s.messages_after(&c, 5, 1).unwrap()[0].client_id, None);
}

fn conversations_listing(s: &dyn Store) {
    let ab = dm("alice", "bob");
    let ac = dm("alice", "carol");
    let alice = uid("alice");
    assert!(s.conversations(&alice, "phone").unwrap().is_empty());
    send(
        s,
        vec![
            msg(&ab, "bob", "pc", "b1", 100),
            msg(&ab, "bob", "pc", "b2", 110),
            msg(&ac, "carol", "pc", "c1", 120),
            msg(&ab, "bob", "pc", "b3", 130),
            msg(&ab, "alice", "phone", "a4", 140),
            with_cid(msg(&room("lobby"), "alice", "phone", "r", 500), "r1"),
        ],
    );
    apply(s, vec![cursor("alice", "phone", &ab, 1, false)]);
    let list = s.conversations(&alice, "phone").unwrap();
    assert_eq!(list.len(), 2, "rooms are listed only for members");
    let first = &list[0];
    assert_eq!(first.conv, ab, "most recent activity first");
    assert_eq!(first.last_seq, 4);
    assert_eq!(first.activity, 140);
    assert_eq!(first.read_seq, 0);
    assert_eq!(first.delivered_seq, 1);
    assert_eq!(first.unread, 3, "bob's three; alice's own does not count");
    assert_eq!(
        first.peer_read_seq,
        Some(3),
        "bob's cursor followed his messages"
    );
    assert_eq!(
        first.last,
        Some(StoredMessage {
            conv: ab.clone(),
            seq: 4,
            from: alice.clone(),
            body: "a4".into(),
            ts: 140,
            client_id: None,
            attachment: None,
        })
    );
    let second = &list[1];
    assert_eq!(second.conv, ac);
    assert_eq!(
        (
            second.last_seq,
            second.activity,
            second.read_seq,
            second.delivered_seq
        ),
        (1, 120, 0, 0)
    );
    assert_eq!((second.unread, second.peer_read_seq), (1, Some(1)));

    // Reading some: unread counts others' messages after the cursor.
    apply(s, vec![cursor("alice", "laptop", &ab, 2, true)]);
    let first = summary(s, "alice", "phone", &ab);
    assert_eq!(
        (first.read_seq, first.delivered_seq, first.unread),
        (2, 1, 1)
    );
    let bob_view = summary(s, "bob", "pc", &ab);
    assert_eq!(bob_view.peer_read_seq, Some(2));
    assert_eq!((bob_view.read_seq, bob_view.unread), (3, 1));
    // New activity reorders.
    send(s, vec![msg(&ac, "alice", "phone", "c2", 50)]);
    let list = s.conversations(&alice, "laptop").unwrap();
    assert_eq!(list.iter().map(|c| &c.conv).collect::<Vec<_>>(), [&ab, &ac]);
    assert_eq!(
        list[1].activity, 120,
        "ts never below the conversation's last"
    );
    send(s, vec![msg(&ac, "carol", "pc", "c3", 1000)]);
    let list = s.conversations(&alice, "laptop").unwrap();
    assert_eq!(list.iter().map(|c| &c.conv).collect::<Vec<_>>(), [&ac, &ab]);
    assert_eq!(list[0].unread, 2, "c1 and c3; c2 is alice's");
    assert_eq!(list[0].last.as_ref().map(|m| m.seq), Some(3));
    assert!(s.conversations(&uid("zoe"), "x").unwrap().is_empty());
}

fn conversations_ordering_ties(s: &dyn Store) {
    // Equal activity: ordered by conversation id, which is not the order of
    // the wire names ("dm:abc.d:zed" < "dm:abc:zed" as text).
    let c1 = dm("abc", "zed");
    let c2 = dm("abc.d", "zed");
    let c3 = dm("zed", "zz9");
    assert!(c1 < c2);
    assert!(c2.to_string() < c1.to_string());
    send(
        s,
        vec![
            msg(&c3, "zz9", "d", "x", 7),
            msg(&c2, "abc.d", "d", "x", 7),
            msg(&c1, "abc", "d", "x", 7),
        ],
    );
    let list = s.conversations(&uid("zed"), "d").unwrap();
    assert_eq!(
        list.iter().map(|c| &c.conv).collect::<Vec<_>>(),
        [&c1, &c2, &c3]
    );
}

fn empty_batch(s: &dyn Store) {
    let (a, c) = s.write_batch(&[], &[]).unwrap();
    assert!(a.is_empty() && c.is_empty());
}

fn differential_random(s: &dyn Store) {
    let reference = MemoryStore::new();
    // IM_TEST_SEED explores other sequences.
    let seed = std::env::var("IM_TEST_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed | 1);
    let users = ["amy", "ben", "cat", "dan", "eve"];
    let devices = ["phone", "pc"];
    let mut convs: Vec<ConvId> = Vec::new();
    for (i, a) in users.iter().enumerate() {
        for b in &users[i + 1..] {
            convs.push(dm(a, b));
        }
    }
    convs.push(room("lobby"));
    convs.push(room("dev"));
    reference
        .create_room(&room_rec("lobby", "", true, 900), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("lobby", "", true, 900), &uid("amy"))
        .unwrap();
    let members = |c: &ConvId| -> Vec<String> {
        match c {
            ConvId::Direct(a, b) => vec![a.to_string(), b.to_string()],
            ConvId::Room(_) => users.iter().map(|u| u.to_string()).collect(),
        }
    };
    let mut now = 1_000i64;
    for round in 0..60 {
        let n_msgs = rng.below(40) as usize;
        let n_cursors = rng.below(12) as usize;
        let mut msgs = Vec::new();
        for _ in 0..n_msgs {
            let c = rng.pick(&convs).clone();
            let from = rng.pick(&members(&c)).clone();
            now += rng.below(20) as i64 - 8; // sometimes goes back
            let mut m = msg(
                &c,
                &from,
                rng.pick::<&str>(&devices),
                &format!("r{round}"),
                now,
            );
            if rng.below(3) == 0 {
                m.client_id = Some(format!("cid{}", rng.below(15)));
            }
            if rng.below(10) == 0 {
                m.attachment = Some(format!("f{}", rng.below(100)));
            }
            msgs.push(m);
        }
        let mut cursors = Vec::new();
        for _ in 0..n_cursors {
            let c = rng.pick(&convs).clone();
            let user = rng.pick(&members(&c)).clone();
            let delivered = match rng.below(6) {
                0 => u64::MAX,
                1 => 0,
                _ => rng.below(30),
            };
            cursors.push(cursor(
                &user,
                rng.pick::<&str>(&devices),
                &c,
                delivered,
                rng.below(2) == 0,
            ));
        }
        let want = reference.write_batch(&msgs, &cursors).unwrap();
        let got = s.write_batch(&msgs, &cursors).unwrap();
        assert_eq!(got, want, "round {round}");

        // Room membership changes between batches ("dev" only exists from
        // round 5 on, after messages were sent to it).
        if round == 5 {
            let rec = room_rec("dev", "", false, now);
            reference.create_room(&rec, &uid("ben")).unwrap();
            s.create_room(&rec, &uid("ben")).unwrap();
        }
        for _ in 0..rng.below(3) {
            let r = if round >= 5 && rng.below(2) == 0 {
                "dev"
            } else {
                "lobby"
            };
            let u = uid(rng.pick::<&str>(&users));
            if rng.below(3) == 0 {
                assert_eq!(
                    s.leave_room(&rname(r), &u).unwrap(),
                    reference.leave_room(&rname(r), &u).unwrap()
                );
            } else {
                assert_eq!(
                    s.join_room(&rname(r), &u, now).unwrap(),
                    reference.join_room(&rname(r), &u, now).unwrap()
                );
            }
        }

        if round % 10 == 9 || round == 59 {
            for r in ["lobby", "dev"] {
                assert_eq!(
                    s.room_members(&rname(r)).unwrap(),
                    reference.room_members(&rname(r)).unwrap()
                );
            }
            assert_eq!(
                s.list_rooms(None, 10).unwrap(),
                reference.list_rooms(None, 10).unwrap()
            );
            for u in users {
                for d in devices {
                    assert_eq!(
                        s.conversations(&uid(u), d).unwrap(),
                        reference.conversations(&uid(u), d).unwrap(),
                        "conversations of {u}/{d} after round {round}"
                    );
                }
            }
            for c in &convs {
                assert_eq!(
                    s.messages_after(c, 0, usize::MAX).unwrap(),
                    reference.messages_after(c, 0, usize::MAX).unwrap()
                );
                let before = Some(rng.below(40));
                let limit = rng.below(10) as usize;
                assert_eq!(
                    s.messages_before(c, before, limit).unwrap(),
                    reference.messages_before(c, before, limit).unwrap()
                );
                for u in users {
                    assert_eq!(
                        s.is_member(c, &uid(u)).unwrap(),
                        reference.is_member(c, &uid(u)).unwrap()
                    );
                    let cid = format!("cid{}", rng.below(15));
                    assert_eq!(
                        s.find_client_id(c, &uid(u), &cid).unwrap(),
                        reference.find_client_id(c, &uid(u), &cid).unwrap()
                    );
                }
            }
        }
    }
}
