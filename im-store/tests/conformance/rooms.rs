//! Rooms: members and ownership, cursors of joiners, topic, bans, invitations.

use im_core::error::StoreError;
use im_core::store::prelude::*;
use im_core::store::{ConvSummary, RoomListing};

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    ("rooms_create_lookup_conflict", rooms_create_lookup_conflict),
    ("rooms_list_filter_and_order", rooms_list_filter_and_order),
    (
        "rooms_join_leave_and_ownership",
        rooms_join_leave_and_ownership,
    ),
    (
        "rooms_cursors_start_where_members_joined",
        rooms_cursors_start_where_members_joined,
    ),
    ("rooms_topic_bans_invites", rooms_topic_bans_invites),
    (
        "a_join_racing_a_kick_never_outlives_the_ban",
        a_join_racing_a_kick_never_outlives_the_ban,
    ),
];

fn rooms_create_lookup_conflict(s: &dyn Store) {
    let rec = room_rec("rust", "All about Rust", true, 500);
    assert_eq!(s.room(&rname("rust")).unwrap(), None);
    assert!(s.room_members(&rname("rust")).unwrap().is_empty());
    s.create_room(&rec, &uid("alice")).unwrap();
    assert_eq!(s.room(&rname("rust")).unwrap(), Some(rec.clone()));
    assert!(matches!(
        s.create_room(&room_rec("rust", "again", false, 600), &uid("bob")),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.room(&rname("rust")).unwrap(), Some(rec));
    assert_eq!(
        s.room_members(&rname("rust")).unwrap(),
        [member("alice", true, 500)]
    );
    let c = room("rust");
    assert!(s.is_member(&c, &uid("alice")).unwrap());
    assert!(!s.is_member(&c, &uid("bob")).unwrap());
    let list = s.conversations(&uid("alice"), "phone").unwrap();
    assert_eq!(
        list,
        [ConvSummary {
            conv: c.clone(),
            last_seq: 0,
            activity: 500,
            read_seq: 0,
            delivered_seq: 0,
            unread: 0,
            peer_read_seq: None,
            last: None,
        }]
    );
    // The owner's first message is followed by both cursors.
    send(s, vec![msg(&c, "alice", "phone", "hi", 400)]);
    let sum = summary(s, "alice", "phone", &c);
    assert_eq!(
        (sum.last_seq, sum.activity, sum.read_seq, sum.delivered_seq),
        (1, 400, 1, 1)
    );
}

fn rooms_list_filter_and_order(s: &dyn Store) {
    assert!(s.list_rooms(None, 10).unwrap().is_empty());
    s.create_room(&room_rec("zeta", "quiet", true, 1), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("alpha", "Ünïcode TALK", true, 2), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("beta", "busy", true, 3), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("secret", "busy", false, 4), &uid("amy"))
        .unwrap();
    for u in ["ben", "cat"] {
        assert!(s.join_room(&rname("beta"), &uid(u), 10).unwrap());
    }
    assert!(s.join_room(&rname("zeta"), &uid("ben"), 10).unwrap());
    let names = |v: Vec<RoomListing>| -> Vec<(String, u64)> {
        v.into_iter()
            .map(|l| (l.room.name.as_str().to_owned(), l.members))
            .collect()
    };
    let all = names(s.list_rooms(None, 10).unwrap());
    assert_eq!(
        all,
        [("beta".into(), 3), ("zeta".into(), 2), ("alpha".into(), 1)]
    );
    assert_eq!(names(s.list_rooms(None, 2).unwrap()).len(), 2);
    assert!(s.list_rooms(None, 0).unwrap().is_empty());
    assert_eq!(
        names(s.list_rooms(Some("ET"), 10).unwrap()),
        [("beta".into(), 3), ("zeta".into(), 2)]
    );
    assert_eq!(
        names(s.list_rooms(Some("ünï"), 10).unwrap()),
        [("alpha".into(), 1)]
    );
    assert_eq!(
        names(s.list_rooms(Some("talk"), 10).unwrap()),
        [("alpha".into(), 1)]
    );
    assert!(
        s.list_rooms(Some("secret"), 10).unwrap().is_empty(),
        "private rooms are not listed"
    );
    let l = &s.list_rooms(Some("alpha"), 10).unwrap()[0];
    assert_eq!(l.room, room_rec("alpha", "Ünïcode TALK", true, 2));
}

fn rooms_join_leave_and_ownership(s: &dyn Store) {
    let r = rname("club");
    let c = room("club");
    assert!(matches!(
        s.join_room(&r, &uid("bob"), 1),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.leave_room(&r, &uid("bob")),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.rooms_owned(&uid("alice")).unwrap(), 0);
    s.create_room(&room_rec("club", "", false, 100), &uid("alice"))
        .unwrap();
    assert_eq!(s.rooms_owned(&uid("alice")).unwrap(), 1);
    assert!(s.join_room(&r, &uid("bob"), 110).unwrap());
    assert_eq!(
        s.rooms_owned(&uid("bob")).unwrap(),
        0,
        "members own nothing"
    );
    assert!(
        !s.join_room(&r, &uid("bob"), 120).unwrap(),
        "already a member"
    );
    assert!(s.join_room(&r, &uid("carol"), 130).unwrap());
    assert!(s.join_room(&r, &uid("dave"), 130).unwrap());
    assert_eq!(
        s.room_members(&r).unwrap(),
        [
            member("alice", true, 100),
            member("bob", false, 110),
            member("carol", false, 130),
            member("dave", false, 130)
        ]
    );
    assert!(s.is_member(&c, &uid("carol")).unwrap());
    assert_eq!(s.leave_room(&r, &uid("zoe")).unwrap(), None, "not a member");
    assert_eq!(s.leave_room(&r, &uid("carol")).unwrap(), None);
    assert!(!s.is_member(&c, &uid("carol")).unwrap());
    assert!(s.conversations(&uid("carol"), "d").unwrap().is_empty());
    // The owner leaves: the longest-standing member takes over.
    assert_eq!(s.leave_room(&r, &uid("alice")).unwrap(), Some(uid("bob")));
    assert_eq!(
        s.room_members(&r).unwrap(),
        [member("bob", true, 110), member("dave", false, 130)]
    );
    assert_eq!(
        s.rooms_owned(&uid("alice")).unwrap(),
        0,
        "left, owns nothing"
    );
    assert_eq!(s.rooms_owned(&uid("bob")).unwrap(), 1, "took over");
    // Rejoining puts one last.
    assert!(s.join_room(&r, &uid("alice"), 200).unwrap());
    assert!(s.join_room(&r, &uid("carol"), 210).unwrap());
    assert_eq!(
        s.room_members(&r).unwrap(),
        [
            member("bob", true, 110),
            member("dave", false, 130),
            member("alice", false, 200),
            member("carol", false, 210)
        ]
    );
    assert_eq!(s.leave_room(&r, &uid("dave")).unwrap(), None);
    assert_eq!(s.leave_room(&r, &uid("bob")).unwrap(), Some(uid("alice")));
    assert_eq!(s.leave_room(&r, &uid("carol")).unwrap(), None);
    assert_eq!(
        s.leave_room(&r, &uid("alice")).unwrap(),
        None,
        "nobody left to own it"
    );
    assert!(s.room_members(&r).unwrap().is_empty());
    assert!(s.room(&r).unwrap().is_some(), "the room stays");
}

fn rooms_cursors_start_where_members_joined(s: &dyn Store) {
    let r = rname("news");
    let c = room("news");
    s.create_room(&room_rec("news", "", true, 10), &uid("alice"))
        .unwrap();
    send(
        s,
        (1..=5)
            .map(|i| msg(&c, "alice", "pc", &i.to_string(), 100 + i))
            .collect(),
    );
    assert!(s.join_room(&r, &uid("bob"), 200).unwrap());
    let b = summary(s, "bob", "phone", &c);
    assert_eq!(
        (b.last_seq, b.read_seq, b.delivered_seq, b.unread),
        (5, 5, 5, 0)
    );
    assert_eq!(b.activity, 105);
    send(s, vec![msg(&c, "alice", "pc", "6", 300)]);
    let b = summary(s, "bob", "phone", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (5, 5, 1));
    // Bob's cursors were at 5: his message 7 is not just above them.
    send(s, vec![msg(&c, "bob", "phone", "7", 301)]);
    let b = summary(s, "bob", "phone", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (5, 5, 1));
    apply(s, vec![cursor("bob", "phone", &c, 6, true)]);
    send(s, vec![msg(&c, "bob", "phone", "8", 302)]);
    let b = summary(s, "bob", "phone", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (6, 6, 0));
    // A device's cursor created below the joining point still shows it.
    apply(s, vec![cursor("bob", "tablet", &c, 2, false)]);
    assert_eq!(summary(s, "bob", "tablet", &c).delivered_seq, 5);
    // Rejoining after leaving: cursors start at the new end.
    assert_eq!(s.leave_room(&r, &uid("bob")).unwrap(), None);
    send(s, vec![msg(&c, "alice", "pc", "9", 400)]);
    assert!(s.join_room(&r, &uid("bob"), 500).unwrap());
    let b = summary(s, "bob", "laptop", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (9, 9, 0));
    assert_eq!(summary(s, "bob", "phone", &c).delivered_seq, 9);
    // A joiner's first message right at the end is followed.
    send(s, vec![msg(&c, "bob", "laptop", "10", 501)]);
    let b = summary(s, "bob", "laptop", &c);
    assert_eq!((b.read_seq, b.delivered_seq), (10, 10));
}

fn rooms_topic_bans_invites(s: &dyn Store) {
    let r = rname("club");
    let other = rname("other");
    assert!(matches!(
        s.set_room_topic(&r, "x"),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_room_ban(&r, &uid("bob"), true),
        Err(StoreError::NotFound)
    ));
    assert!(!s.is_room_banned(&r, &uid("bob")).unwrap());
    assert!(matches!(
        s.add_room_invite(&r, &uid("bob"), &uid("alice")),
        Err(StoreError::NotFound)
    ));
    s.create_room(&room_rec("club", "old", false, 1), &uid("alice"))
        .unwrap();
    s.create_room(&room_rec("other", "", false, 2), &uid("carol"))
        .unwrap();
    s.set_room_topic(&r, "new topic").unwrap();
    assert_eq!(s.room(&r).unwrap().unwrap().topic, "new topic");

    s.set_room_ban(&r, &uid("bob"), true).unwrap();
    s.set_room_ban(&r, &uid("bob"), true).unwrap();
    assert!(s.is_room_banned(&r, &uid("bob")).unwrap());
    assert!(!s.is_room_banned(&other, &uid("bob")).unwrap());
    // A banned user cannot join, whatever a caller read before.
    assert!(!s.join_room(&r, &uid("bob"), 3).unwrap());
    assert!(!s
        .room_members(&r)
        .unwrap()
        .iter()
        .any(|m| m.user == uid("bob")));
    s.set_room_ban(&r, &uid("bob"), false).unwrap();
    assert!(!s.is_room_banned(&r, &uid("bob")).unwrap());

    assert!(s.room_invites(&uid("bob")).unwrap().is_empty());
    s.add_room_invite(&r, &uid("bob"), &uid("alice")).unwrap();
    s.add_room_invite(&other, &uid("bob"), &uid("carol"))
        .unwrap();
    s.add_room_invite(&r, &uid("bob"), &uid("dave")).unwrap();
    s.add_room_invite(&r, &uid("eve"), &uid("alice")).unwrap();
    assert_eq!(
        s.room_invites(&uid("bob")).unwrap(),
        [(r.clone(), uid("dave")), (other.clone(), uid("carol"))]
    );
    // Joining uses the invitation up.
    assert!(s.join_room(&r, &uid("bob"), 5).unwrap());
    assert_eq!(
        s.room_invites(&uid("bob")).unwrap(),
        [(other.clone(), uid("carol"))]
    );
    assert_eq!(
        s.room_invites(&uid("eve")).unwrap(),
        [(r.clone(), uid("alice"))]
    );
}

/// What `room.join` and `room.kick` do, at once, on two connections: the
/// join is refused by the ban, or the kick sees the member after its ban
/// and removes them. A join that read "not banned" before the ban and
/// committed after the kick looked is what this rules out.
fn a_join_racing_a_kick_never_outlives_the_ban(s: &dyn Store) {
    s.create_room(&room_rec("club", "", true, 1), &uid("alice"))
        .unwrap();
    let r = rname("club");
    for i in 0..40 {
        let u = uid(&format!("user{i}"));
        std::thread::scope(|scope| {
            scope.spawn(|| s.join_room(&r, &u, 10).unwrap());
            scope.spawn(|| {
                s.set_room_ban(&r, &u, true).unwrap();
                if s.room_members(&r).unwrap().iter().any(|m| m.user == u) {
                    s.leave_room(&r, &u).unwrap();
                }
            });
        });
        let members = s.room_members(&r).unwrap();
        assert!(!members.iter().any(|m| m.user == u), "{u} banned and in");
    }
}
