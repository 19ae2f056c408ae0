//! Send guards: the rights a store checks inside the commit.

use im_core::ids::RoomName;
use im_core::store::prelude::*;
use im_core::store::{NewMessage, Refusal, Relation, SendGuard};

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    (
        "direct_messages_follow_contacts_and_blocks",
        direct_messages_follow_contacts_and_blocks,
    ),
    (
        "room_messages_need_membership",
        room_messages_need_membership,
    ),
    (
        "revoked_devices_and_suspensions_refuse",
        revoked_devices_and_suspensions_refuse,
    ),
    (
        "a_stored_client_id_beats_a_refusal",
        a_stored_client_id_beats_a_refusal,
    ),
];

/// `alice` and `bob` with a device `phone` each, holding token `t-<name>`.
fn two_users(s: &dyn Store) {
    for name in ["alice", "bob"] {
        s.create_user(&user(name, 1)).unwrap();
        s.issue_token(&uid(name), "phone", &format!("t-{name}"), 1)
            .unwrap();
    }
}

fn guarded(m: NewMessage, require_contact: bool) -> NewMessage {
    NewMessage {
        guard: Some(SendGuard { require_contact }),
        ..m
    }
}

fn refused(s: &dyn Store, m: NewMessage) -> Option<Refusal> {
    send(s, vec![m])[0].refused
}

fn direct_messages_follow_contacts_and_blocks(s: &dyn Store) {
    two_users(s);
    let (a, b) = (uid("alice"), uid("bob"));
    let c = dm("alice", "bob");
    let m = |body: &str, strict| guarded(msg(&c, "alice", "phone", body, 10), strict);
    // No relation: only where the policy does not ask for one.
    assert_eq!(refused(s, m("1", true)), Some(Refusal::Conversation));
    assert_eq!(s.messages_after(&c, 0, 10).unwrap().len(), 0);
    assert_eq!(refused(s, m("2", false)), None);
    s.set_relation(&a, &b, &Relation::Requested { by: a.clone() })
        .unwrap();
    assert_eq!(refused(s, m("3", true)), Some(Refusal::Conversation));
    s.set_relation(&a, &b, &Relation::Mutual).unwrap();
    let ok = send(s, vec![m("4", true)]);
    assert_eq!((ok[0].refused, ok[0].seq), (None, 2));
    // A block either way refuses, whatever the relation.
    s.set_block(&b, &a, true).unwrap();
    assert_eq!(refused(s, m("5", true)), Some(Refusal::Conversation));
    assert_eq!(refused(s, m("6", false)), Some(Refusal::Conversation));
    s.set_block(&b, &a, false).unwrap();
    s.set_block(&a, &b, true).unwrap();
    assert_eq!(refused(s, m("7", true)), Some(Refusal::Conversation));
    s.set_block(&a, &b, false).unwrap();
    // Refused messages took no seq; unguarded ones are never checked.
    let next = send(s, vec![m("8", true), msg(&c, "bob", "x", "9", 11)]);
    assert_eq!((next[0].seq, next[1].seq), (3, 4));
    let bodies: Vec<String> = s
        .messages_after(&c, 0, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["2", "4", "8", "9"]);
    // A right found before is not trusted once taken away: the contact
    // removed after allowed sends.
    assert_eq!(refused(s, m("10", true)), None);
    s.set_relation(&a, &b, &Relation::None).unwrap();
    assert_eq!(refused(s, m("11", true)), Some(Refusal::Conversation));
    assert_eq!(refused(s, m("12", false)), None);
}

/// `a` and `b` share one database (two processes): a right `b` takes
/// away is refused by `a`'s next batch, whatever `a` found before.
pub(crate) fn rights_taken_away_through_another_store(a: &dyn Store, b: &dyn Store) {
    two_users(a);
    let (alice, bob) = (uid("alice"), uid("bob"));
    a.set_relation(&alice, &bob, &Relation::Mutual).unwrap();
    let c = dm("alice", "bob");
    let m = || guarded(msg(&c, "alice", "phone", "hi", 10), true);
    assert_eq!(refused(a, m()), None);
    assert_eq!(refused(a, m()), None);
    b.set_block(&bob, &alice, true).unwrap();
    assert_eq!(refused(a, m()), Some(Refusal::Conversation));
    b.set_block(&bob, &alice, false).unwrap();
    assert_eq!(refused(a, m()), None);
    b.revoke_device(&alice, "phone").unwrap();
    assert_eq!(refused(a, m()), Some(Refusal::Credentials));
    let name = RoomName::parse("lobby").unwrap();
    a.create_room(&room_rec("lobby", "", true, 1), &bob)
        .unwrap();
    a.issue_token(&alice, "phone", "t-again", 11).unwrap();
    a.join_room(&name, &alice, 12).unwrap();
    let r = || guarded(msg(&room("lobby"), "alice", "phone", "hi", 13), true);
    assert_eq!(refused(a, r()), None);
    b.leave_room(&name, &alice).unwrap();
    assert_eq!(refused(a, r()), Some(Refusal::Conversation));
    b.set_suspended(&alice, true).unwrap();
    a.join_room(&name, &alice, 14).unwrap();
    assert_eq!(refused(a, r()), Some(Refusal::Credentials));
}

fn room_messages_need_membership(s: &dyn Store) {
    two_users(s);
    let name = RoomName::parse("lobby").unwrap();
    s.create_room(&room_rec("lobby", "", true, 1), &uid("alice"))
        .unwrap();
    let c = room("lobby");
    let m = |from: &str| guarded(msg(&c, from, "phone", "hi", 10), true);
    // One batch: the member's message lands, the outsider's is refused.
    let r = send(s, vec![m("bob"), m("alice")]);
    assert_eq!(r[0].refused, Some(Refusal::Conversation));
    assert_eq!((r[1].refused, r[1].seq), (None, 1));
    s.join_room(&name, &uid("bob"), 20).unwrap();
    assert_eq!(refused(s, m("bob")), None);
    s.leave_room(&name, &uid("bob")).unwrap();
    assert_eq!(refused(s, m("bob")), Some(Refusal::Conversation));
    assert_eq!(s.messages_after(&c, 0, 10).unwrap().len(), 2);
}

fn revoked_devices_and_suspensions_refuse(s: &dyn Store) {
    two_users(s);
    let (a, b) = (uid("alice"), uid("bob"));
    s.set_relation(&a, &b, &Relation::Mutual).unwrap();
    let c = dm("alice", "bob");
    let m = || guarded(msg(&c, "alice", "phone", "hi", 10), true);
    assert_eq!(refused(s, m()), None);
    // A device that never signed in cannot send.
    let mut other = m();
    other.device = "laptop".into();
    assert_eq!(refused(s, other), Some(Refusal::Credentials));
    s.revoke_device(&a, "phone").unwrap();
    assert_eq!(refused(s, m()), Some(Refusal::Credentials));
    s.issue_token(&a, "phone", "t-alice-2", 11).unwrap();
    assert_eq!(refused(s, m()), None);
    s.set_suspended(&a, true).unwrap();
    assert_eq!(refused(s, m()), Some(Refusal::Credentials));
    s.set_suspended(&a, false).unwrap();
    assert_eq!(refused(s, m()), None);
}

fn a_stored_client_id_beats_a_refusal(s: &dyn Store) {
    two_users(s);
    let (a, b) = (uid("alice"), uid("bob"));
    s.set_relation(&a, &b, &Relation::Mutual).unwrap();
    let c = dm("alice", "bob");
    let m = || guarded(with_cid(msg(&c, "alice", "phone", "hi", 10), "k1"), true);
    assert_eq!(send(s, vec![m()]), [new(1, 10)]);
    s.set_block(&b, &a, true).unwrap();
    // The retry of a stored send gets its original result, in a later
    // batch and in the same one as a fresh refused send.
    assert_eq!(send(s, vec![m()]), [dup(1, 10)]);
    let fresh = guarded(with_cid(msg(&c, "alice", "phone", "x", 12), "k2"), true);
    let r = send(s, vec![fresh, m()]);
    assert_eq!(r[0].refused, Some(Refusal::Conversation));
    assert_eq!(r[1], dup(1, 10));
}
