//! docs/PROTOCOL.md "Rooms", and the room parts of "Messages" (`msg.send` with
//! `room`, `typing` in rooms) and "Delivery, acknowledgement, history"
//! (replay, gaps, history, `convs`, acks and receipts in rooms).

use std::collections::BTreeMap;
use std::time::Duration;

use im_tests::*;
use serde_json::{json, Value};

use super::server;

// ---------------------------------------------------------------- frames

fn create(name: &str) -> Value {
    json!({"type":"room.create","name":name,"topic":format!("about {name}")})
}

fn create_private(name: &str) -> Value {
    json!({"type":"room.create","name":name,"topic":format!("about {name}"),"public":false})
}

fn join(name: &str) -> Value {
    json!({"type":"room.join","name":name})
}

fn leave(name: &str) -> Value {
    json!({"type":"room.leave","name":name})
}

fn say(room: &str, body: &str) -> Value {
    json!({"type":"msg.send","room":room,"body":body})
}

fn say_cid(room: &str, body: &str, cid: &str) -> Value {
    json!({"type":"msg.send","room":room,"body":body,"client_id":cid})
}

fn joined(room: &str, user: &str) -> Value {
    json!({"type":"room.joined","room":room,"user":user})
}

fn ack(conv: &str, seq: u64) -> Value {
    json!({"type":"msg.ack","conv":conv,"seq":seq})
}

fn ack_read(conv: &str, seq: u64) -> Value {
    json!({"type":"msg.ack","conv":conv,"seq":seq,"read":true})
}

// --------------------------------------------------------------- helpers

/// The next frame must carry every field of `want` (other fields are
/// allowed: the protocol permits additions).
async fn expect_frame(c: &mut Client, want: &Value) -> Value {
    let v = c.recv().await;
    for (k, w) in want.as_object().expect("object") {
        assert_eq!(&v[k], w, "expected {want}, got {v}");
    }
    v
}

/// The next frame is `room.left` for `user`, with `kicked: true` exactly
/// when `kicked`.
async fn expect_left(c: &mut Client, room: &str, user: &str, kicked: bool) {
    let v = expect_frame(c, &json!({"type":"room.left","room":room,"user":user})).await;
    if kicked {
        assert_eq!(v["kicked"], true, "{v}");
    } else {
        assert_ne!(v["kicked"], true, "a plain leave is not a kick: {v}");
    }
}

/// `room.members` as sorted `(user, role, online)`.
async fn members(c: &mut Client, room: &str) -> Vec<(String, String, bool)> {
    let r = c.ok(json!({"type":"room.members","name":room})).await;
    let mut out: Vec<(String, String, bool)> = r["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {r}"))
        .iter()
        .map(|m| {
            (
                m["user"].as_str().expect("user").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
                m["online"].as_bool().expect("online"),
            )
        })
        .collect();
    out.sort();
    out
}

fn member(user: &str, role: &str, online: bool) -> (String, String, bool) {
    (user.to_owned(), role.to_owned(), online)
}

/// `room.list` as `(name, topic, members, online)` in the server's order.
async fn list(c: &mut Client, q: Option<&str>) -> Vec<(String, String, u64, u64)> {
    let mut f = json!({"type":"room.list"});
    if let Some(q) = q {
        f["q"] = json!(q);
    }
    let r = c.ok(f).await;
    r["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("no rooms in {r}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_owned(),
                e["topic"].as_str().expect("topic").to_owned(),
                e["members"].as_u64().expect("members"),
                e["online"].as_u64().expect("online"),
            )
        })
        .collect()
}

fn entry(name: &str, topic: &str, members: u64, online: u64) -> (String, String, u64, u64) {
    (name.to_owned(), topic.to_owned(), members, online)
}

async fn convs(c: &mut Client) -> Vec<Value> {
    c.ok(json!({"type":"convs"})).await["convs"]
        .as_array()
        .unwrap()
        .clone()
}

fn conv_entry<'a>(list: &'a [Value], conv: &str) -> &'a Value {
    list.iter()
        .find(|e| e["conv"] == conv)
        .unwrap_or_else(|| panic!("no {conv} in {list:?}"))
}

async fn history(c: &mut Client, conv: &str) -> Vec<Value> {
    let r = c
        .ok(json!({"type":"history","conv":conv,"limit":200}))
        .await;
    r["messages"].as_array().unwrap().clone()
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

fn bodies(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(|m| m["body"].as_str().unwrap()).collect()
}

/// `watcher` (a mutual contact of `who`) sees `who` go offline; frames
/// before that are skipped.
async fn wait_offline(watcher: &mut Client, who: &str) {
    loop {
        let p = watcher.recv().await;
        if p["type"] == "presence" && p["user"] == who && p["status"] == "offline" {
            return;
        }
    }
}

// ------------------------------------------------------------ room.create

#[tokio::test]
async fn room_create_replies_with_the_conv_and_validates() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    // Names are normalised like usernames.
    let ok = a
        .ok(json!({"type":"room.create","name":"Rust","topic":"Rust talk"}))
        .await;
    assert_eq!(ok["conv"], "room:rust");
    assert_eq!(
        a.ok(create("ＢＩＧ.room_2-x")).await["conv"],
        "room:big.room_2-x"
    );
    assert_eq!(a.ok(create("abc")).await["conv"], "room:abc");
    let longest = "r".repeat(32);
    assert_eq!(
        a.ok(create(&longest)).await["conv"],
        format!("room:{longest}")
    );
    // Taken, also under another spelling.
    for name in ["rust", "RUST", "ｒｕｓｔ"] {
        a.err(create(name), "conflict").await;
    }
    // Bad names.
    let too_long = "r".repeat(33);
    for name in [
        "",
        "ab",
        "-rust",
        "_rust",
        ".rust",
        "has space",
        "ru/st",
        "café",
        "r:x",
        too_long.as_str(),
    ] {
        a.err(create(name), "bad_request").await;
    }
    a.err(json!({"type":"room.create"}), "bad_request").await;
    // Topic: at most 256 characters (not bytes).
    a.ok(json!({"type":"room.create","name":"topical","topic":"é".repeat(256)}))
        .await;
    a.err(
        json!({"type":"room.create","name":"wordy","topic":"x".repeat(257)}),
        "too_large",
    )
    .await;
    // Check order: fields first, then sizes, then state.
    a.err(
        json!({"type":"room.create","name":"a b","topic":"x".repeat(257)}),
        "bad_request",
    )
    .await;
    a.err(
        json!({"type":"room.create","name":"rust","topic":"x".repeat(257)}),
        "too_large",
    )
    .await;
    // The refused ones do not exist.
    let mut b = srv.user("bob").await;
    b.err(join("wordy"), "not_found").await;
    // Usernames and room names are separate namespaces.
    assert_eq!(a.ok(create("alice")).await["conv"], "room:alice");
    assert_eq!(b.ok(create("bob")).await["conv"], "room:bob");
}

#[tokio::test]
async fn the_creator_is_the_owner_and_first_member_and_rooms_are_public_by_default() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    a.ok(json!({"type":"room.create","name":"rust","topic":"Rust talk"}))
        .await;
    a.ok(json!({"type":"room.create","name":"hidden","topic":"shh","public":false}))
        .await;
    a.ok(json!({"type":"room.create","name":"open","topic":"all","public":true}))
        .await;
    assert_eq!(
        members(&mut a, "rust").await,
        [member("alice", "owner", true)]
    );
    assert_eq!(
        members(&mut a, "hidden").await,
        [member("alice", "owner", true)]
    );
    // The creator is a member: the room is among their conversations
    // from the start, and the creator may talk in it.
    let cl = convs(&mut a).await;
    for conv in ["room:rust", "room:hidden", "room:open"] {
        let e = conv_entry(&cl, conv);
        assert_eq!(
            (&e["last_seq"], &e["unread"]),
            (&json!(0), &json!(0)),
            "{e}"
        );
    }
    assert_eq!(a.ok(say("rust", "first")).await["seq"], 1);
    // Without `public`, public: listed and open to anyone.
    let mut b = srv.user("bob").await;
    let names: Vec<String> = list(&mut b, None).await.into_iter().map(|e| e.0).collect();
    assert!(names.contains(&"rust".to_owned()), "{names:?}");
    assert!(names.contains(&"open".to_owned()), "{names:?}");
    assert!(!names.contains(&"hidden".to_owned()), "{names:?}");
    assert_eq!(b.ok(join("rust")).await["conv"], "room:rust");
    b.err(join("hidden"), "not_found").await;
}

// -------------------------------------------------------------- room.list

#[tokio::test]
async fn room_list_searches_public_rooms_most_members_first() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    srv.befriend(&mut a, &mut d).await;
    let rooms = [
        ("music", "Songs and bands", true),
        ("rust", "The Rust language", true),
        ("cooking", "Recipes, RUST-free pans", true),
        ("trustfund", "money", true),
        ("secretrust", "rust secrets", false),
        ("quiet", "", true),
    ];
    for (name, topic, public) in rooms {
        a.ok(json!({"type":"room.create","name":name,"topic":topic,"public":public}))
            .await;
    }
    // music 4 (dave offline), rust 3, cooking 2, trustfund 1, quiet 1.
    for (who, names) in [
        (&mut b, &["music", "rust", "cooking"][..]),
        (&mut c, &["music", "rust"][..]),
        (&mut d, &["music"][..]),
    ] {
        for n in names {
            who.ok(join(n)).await;
        }
    }
    d.close().await;
    wait_offline(&mut a, "dave").await;

    let want_all = [
        entry("music", "Songs and bands", 4, 3),
        entry("rust", "The Rust language", 3, 3),
        entry("cooking", "Recipes, RUST-free pans", 2, 2),
    ];
    let all = list(&mut b, None).await;
    assert_eq!(all.len(), 5, "every public room, no private one: {all:?}");
    assert_eq!(all[..3], want_all);
    // The two rooms of one member, in either order.
    let mut tail: Vec<_> = all[3..].to_vec();
    tail.sort();
    assert_eq!(
        tail,
        [entry("quiet", "", 1, 1), entry("trustfund", "money", 1, 1)]
    );
    // q matches name or topic, case-insensitively; private rooms never.
    let want_rust = vec![
        entry("rust", "The Rust language", 3, 3),
        entry("cooking", "Recipes, RUST-free pans", 2, 2),
        entry("trustfund", "money", 1, 1),
    ];
    assert_eq!(list(&mut b, Some("rust")).await, want_rust);
    assert_eq!(list(&mut c, Some("RuSt")).await, want_rust);
    // Not even for the private room's own members.
    assert_eq!(list(&mut a, Some("rust")).await, want_rust);
    assert_eq!(list(&mut a, Some("secret")).await, vec![]);
    assert_eq!(
        list(&mut a, Some("BANDS")).await,
        [entry("music", "Songs and bands", 4, 3)]
    );
    assert_eq!(list(&mut a, Some("nothing like it")).await, vec![]);
}

#[tokio::test]
async fn room_list_returns_at_most_100_rooms() {
    // One owner of 101 rooms: past the default cap of rooms per owner.
    let srv = server().config(|c| c.limits.max_rooms_owned = 1000).start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    for i in 0..=100 {
        a.ok(create(&format!("r{i:03}"))).await;
    }
    b.ok(join("r057")).await;
    let all = list(&mut b, None).await;
    assert_eq!(all.len(), 100);
    assert_eq!(all[0], entry("r057", "about r057", 2, 2));
    let some = list(&mut b, Some("r05")).await;
    assert_eq!(some.len(), 10, "{some:?}");
    assert_eq!(some[0].0, "r057");
}

// ------------------------------------------------------- join and leave

#[tokio::test]
async fn room_join_rules() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.ok(create("rust")).await;
    a.ok(create_private("hidden")).await;
    // A public room: ok with conv (names normalised); every member,
    // the joiner included, is told.
    let ok = b.ok(join("RUST")).await;
    assert_eq!(ok["conv"], "room:rust");
    expect_frame(&mut a, &joined("rust", "bob")).await;
    expect_frame(&mut b, &joined("rust", "bob")).await;
    assert_eq!(
        members(&mut b, "rust").await,
        [
            member("alice", "owner", true),
            member("bob", "member", true)
        ]
    );
    // Already a member: ok, nothing sent.
    assert_eq!(b.ok(join("rust")).await["conv"], "room:rust");
    a.expect_silence(200).await;
    b.expect_silence(0).await;
    // A private room without an invitation, or an unknown room.
    b.err(join("hidden"), "not_found").await;
    b.err(join("nowhere"), "not_found").await;
    a.expect_silence(200).await;
    b.expect_silence(0).await;
    assert_eq!(
        members(&mut a, "hidden").await,
        [member("alice", "owner", true)]
    );
}

#[tokio::test]
async fn joins_and_leaves_reach_every_session_of_every_member() {
    let srv = server().start();
    let mut a1 = srv.user_on("alice", "phone").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut c = srv.user("carol").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    // Creating is joining: the creator's other sessions learn of it (the
    // creating session has its ok).
    assert_eq!(a1.ok(create("rust")).await["conv"], "room:rust");
    expect_frame(&mut a2, &joined("rust", "alice")).await;
    a1.expect_silence(200).await;
    c.ok(join("rust")).await;
    for x in [&mut a1, &mut a2, &mut c] {
        expect_frame(x, &joined("rust", "carol")).await;
    }
    // Bob joins from his phone: both his sessions, both of alice's and
    // carol's get it.
    assert_eq!(b1.ok(join("rust")).await["conv"], "room:rust");
    for x in [&mut a1, &mut a2, &mut c, &mut b1, &mut b2] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    // Joining again from the laptop: ok, nothing sent.
    assert_eq!(b2.ok(join("rust")).await["conv"], "room:rust");
    for x in [&mut a1, &mut a2, &mut c, &mut b1, &mut b2] {
        x.expect_silence(100).await;
    }
    // Bob leaves from the laptop: everyone, both his sessions included.
    b2.ok(leave("rust")).await;
    for x in [&mut a1, &mut a2, &mut c, &mut b1, &mut b2] {
        expect_left(x, "rust", "bob", false).await;
    }
    assert_eq!(
        members(&mut c, "rust").await,
        [
            member("alice", "owner", true),
            member("carol", "member", true)
        ]
    );
    // He is out: no more room messages for any of his sessions.
    let ok = c.ok(say("rust", "bob is gone")).await;
    assert_eq!(ok["seq"], 1);
    for x in [&mut a1, &mut a2] {
        assert_eq!(
            expect_frame(x, &json!({"type":"msg"})).await["body"],
            "bob is gone"
        );
    }
    b1.expect_silence(200).await;
    b2.expect_silence(0).await;
    b1.err(say("rust", "still here?"), "forbidden").await;
    // And carol leaving is seen by alice's sessions and carol's own.
    c.ok(leave("rust")).await;
    for x in [&mut a1, &mut a2, &mut c] {
        expect_left(x, "rust", "carol", false).await;
    }
    b1.expect_silence(100).await;
}

#[tokio::test]
async fn when_the_owner_leaves_the_longest_standing_member_becomes_owner() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    a.ok(create("rust")).await;
    // Join order: dave, bob, carol (not alphabetical).
    d.ok(join("rust")).await;
    b.ok(join("rust")).await;
    c.ok(join("rust")).await;
    a.ok(leave("rust")).await;
    assert_eq!(
        members(&mut b, "rust").await,
        [
            member("bob", "member", true),
            member("carol", "member", true),
            member("dave", "owner", true),
        ]
    );
    // The new owner may set the topic; the old one, now outside, may not.
    d.ok(json!({"type":"room.topic","name":"rust","topic":"dave's now"}))
        .await;
    a.err(
        json!({"type":"room.topic","name":"rust","topic":"mine"}),
        "forbidden",
    )
    .await;
    b.err(
        json!({"type":"room.topic","name":"rust","topic":"mine"}),
        "forbidden",
    )
    .await;
    // Alice comes back as the newest member; when dave leaves, bob (who
    // joined before carol and before alice's return) is the owner.
    a.ok(join("rust")).await;
    d.ok(leave("rust")).await;
    assert_eq!(
        members(&mut a, "rust").await,
        [
            member("alice", "member", true),
            member("bob", "owner", true),
            member("carol", "member", true),
        ]
    );
    b.ok(json!({"type":"room.topic","name":"rust","topic":"bob's now"}))
        .await;
    c.err(
        json!({"type":"room.topic","name":"rust","topic":"carol's"}),
        "forbidden",
    )
    .await;
    assert_eq!(
        list(&mut d, Some("rust")).await,
        [entry("rust", "bob's now", 3, 3)]
    );
}

// ------------------------------------------------------------- invitations

#[tokio::test]
async fn invitations_open_private_rooms_once() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    a.ok(create_private("hidden")).await;
    a.ok(create_private("other")).await;
    assert_eq!(
        b1.ok(json!({"type":"room.invites"})).await["invites"],
        json!([])
    );
    // Alice (a member) invites bob, online: every session of his is told.
    a.ok(json!({"type":"room.invite","name":"hidden","user":"Bob"}))
        .await;
    let want = json!({"type":"room.invited","room":"hidden","from":"alice"});
    expect_frame(&mut b1, &want).await;
    expect_frame(&mut b2, &want).await;
    let inv = b2.ok(json!({"type":"room.invites"})).await["invites"].clone();
    let inv = inv.as_array().unwrap();
    assert_eq!(inv.len(), 1, "{inv:?}");
    assert_eq!(
        (&inv[0]["room"], &inv[0]["from"]),
        (&json!("hidden"), &json!("alice"))
    );
    // The invitation opens that private room, not another.
    b1.err(join("other"), "not_found").await;
    assert_eq!(b1.ok(join("hidden")).await["conv"], "room:hidden");
    for x in [&mut a, &mut b1, &mut b2] {
        expect_frame(x, &joined("hidden", "bob")).await;
    }
    // Used: gone from the list, and it does not open the room again.
    assert_eq!(
        b1.ok(json!({"type":"room.invites"})).await["invites"],
        json!([])
    );
    b1.ok(leave("hidden")).await;
    for x in [&mut a, &mut b1, &mut b2] {
        expect_left(x, "hidden", "bob", false).await;
    }
    b1.err(join("hidden"), "not_found").await;

    // Any member may invite, and an offline invitee finds it later.
    a.ok(json!({"type":"room.invite","name":"hidden","user":"bob"}))
        .await;
    expect_frame(
        &mut b1,
        &json!({"type":"room.invited","room":"hidden","from":"alice"}),
    )
    .await;
    expect_frame(
        &mut b2,
        &json!({"type":"room.invited","room":"hidden","from":"alice"}),
    )
    .await;
    b1.ok(join("hidden")).await;
    srv.register("carol").await;
    b1.ok(json!({"type":"room.invite","name":"hidden","user":"carol"}))
        .await;
    let mut c = srv.user("carol").await;
    let inv = c.ok(json!({"type":"room.invites"})).await["invites"].clone();
    let inv = inv.as_array().unwrap();
    assert_eq!(inv.len(), 1, "{inv:?}");
    assert_eq!(
        (&inv[0]["room"], &inv[0]["from"]),
        (&json!("hidden"), &json!("bob"))
    );
    assert_eq!(c.ok(join("hidden")).await["conv"], "room:hidden");
    assert_eq!(
        members(&mut c, "hidden").await,
        [
            member("alice", "owner", true),
            member("bob", "member", true),
            member("carol", "member", true),
        ]
    );
}

#[tokio::test]
async fn invitation_errors() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut d = srv.user("dave").await;
    let mut e = srv.user("eve").await;
    a.ok(create_private("hidden")).await;
    a.ok(create("open")).await;
    // Only members invite. (Reading: to a non-member a private room does
    // not exist, so `not_found`; a public one does, so `forbidden`.)
    d.err(
        json!({"type":"room.invite","name":"hidden","user":"eve"}),
        "not_found",
    )
    .await;
    d.err(
        json!({"type":"room.invite","name":"open","user":"eve"}),
        "forbidden",
    )
    .await;
    // Unknown room or user.
    a.err(
        json!({"type":"room.invite","name":"nowhere","user":"eve"}),
        "not_found",
    )
    .await;
    a.err(
        json!({"type":"room.invite","name":"hidden","user":"nobody"}),
        "not_found",
    )
    .await;
    e.expect_silence(200).await;
    assert_eq!(
        e.ok(json!({"type":"room.invites"})).await["invites"],
        json!([])
    );
}

#[tokio::test]
async fn a_blocked_user_cannot_invite_the_blocker() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut m = srv.user("mallory").await;
    let mut e = srv.user("eve").await;
    a.ok(create_private("hidden")).await;
    a.ok(json!({"type":"room.invite","name":"hidden","user":"mallory"}))
        .await;
    m.expect("room.invited").await;
    m.ok(join("hidden")).await;
    e.ok(json!({"type":"contact.block","user":"mallory"})).await;
    m.err(
        json!({"type":"room.invite","name":"hidden","user":"eve"}),
        "forbidden",
    )
    .await;
    e.expect_silence(200).await;
    assert_eq!(
        e.ok(json!({"type":"room.invites"})).await["invites"],
        json!([])
    );
    e.err(join("hidden"), "not_found").await;
    // Others still may.
    a.ok(json!({"type":"room.invite","name":"hidden","user":"eve"}))
        .await;
    expect_frame(
        &mut e,
        &json!({"type":"room.invited","room":"hidden","from":"alice"}),
    )
    .await;
}

// ------------------------------------------------------------ room.members

#[tokio::test]
async fn room_members_shows_roles_and_online_flags_to_those_allowed() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut d = srv.user("dave").await;
    srv.befriend(&mut a, &mut d).await;
    a.ok(create("rust")).await;
    a.ok(create_private("hidden")).await;
    b.ok(join("rust")).await;
    d.ok(join("rust")).await;
    d.close().await;
    wait_offline(&mut a, "dave").await;
    let want = [
        member("alice", "owner", true),
        member("bob", "member", true),
        member("dave", "member", false),
    ];
    assert_eq!(members(&mut a, "rust").await, want);
    assert_eq!(members(&mut b, "rust").await, want);
    // A public room's members (and who is online) are visible to anyone,
    // even a stranger to all of them.
    let mut c = srv.user("carol").await;
    assert_eq!(members(&mut c, "rust").await, want);
    // Back online shows.
    let _d = srv.user("dave").await;
    assert_eq!(
        members(&mut c, "rust").await,
        [
            member("alice", "owner", true),
            member("bob", "member", true),
            member("dave", "member", true),
        ]
    );
    // A private room only to its members.
    c.err(json!({"type":"room.members","name":"hidden"}), "not_found")
        .await;
    b.err(json!({"type":"room.members","name":"hidden"}), "not_found")
        .await;
    c.err(json!({"type":"room.members","name":"nowhere"}), "not_found")
        .await;
    assert_eq!(
        members(&mut a, "hidden").await,
        [member("alice", "owner", true)]
    );
}

// -------------------------------------------------------------- room.topic

#[tokio::test]
async fn the_owner_sets_the_topic_and_members_are_told() {
    let srv = server().start();
    let mut a1 = srv.user_on("alice", "phone").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    a1.ok(json!({"type":"room.create","name":"rust","topic":"old"}))
        .await;
    expect_frame(&mut a2, &joined("rust", "alice")).await;
    b.ok(join("rust")).await;
    for x in [&mut a1, &mut a2, &mut b] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    a1.ok(json!({"type":"room.topic","name":"rust","topic":"Rust 2024"}))
        .await;
    let want = json!({"type":"room.topic","room":"rust","topic":"Rust 2024"});
    expect_frame(&mut a2, &want).await;
    expect_frame(&mut b, &want).await;
    // The setting session may or may not get the event too (reading:
    // either is fine), but nothing else.
    for v in a1.drain(200).await {
        assert_eq!(v, want, "unexpected frame on the setting session");
    }
    c.expect_silence(0).await;
    assert_eq!(
        list(&mut c, Some("rust")).await,
        [entry("rust", "Rust 2024", 2, 2)]
    );
    // Owner only.
    b.err(
        json!({"type":"room.topic","name":"rust","topic":"bob's"}),
        "forbidden",
    )
    .await;
    c.err(
        json!({"type":"room.topic","name":"rust","topic":"carol's"}),
        "forbidden",
    )
    .await;
    c.err(
        json!({"type":"room.topic","name":"nowhere","topic":"x"}),
        "not_found",
    )
    .await;
    // At most 256 characters.
    a1.err(
        json!({"type":"room.topic","name":"rust","topic":"x".repeat(257)}),
        "too_large",
    )
    .await;
    for x in [&mut a2, &mut b, &mut c] {
        x.expect_silence(100).await;
    }
    a1.ok(json!({"type":"room.topic","name":"rust","topic":"é".repeat(256)}))
        .await;
    assert_eq!(
        expect_frame(&mut b, &json!({"type":"room.topic","room":"rust"})).await["topic"],
        "é".repeat(256)
    );
    assert_eq!(
        list(&mut c, Some("rust")).await,
        [entry("rust", &"é".repeat(256), 2, 2)]
    );
}

// --------------------------------------------------------------- room.kick

#[tokio::test]
async fn the_owner_kicks_and_bans_until_unbanned() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut m1 = srv.user_on("mallory", "phone").await;
    let mut m2 = srv.user_on("mallory", "laptop").await;
    a.ok(create("rust")).await;
    b.ok(join("rust")).await;
    for x in [&mut a, &mut b] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    m1.ok(join("rust")).await;
    for x in [&mut a, &mut b, &mut m1, &mut m2] {
        expect_frame(x, &joined("rust", "mallory")).await;
    }
    // Owner only.
    b.err(
        json!({"type":"room.kick","name":"rust","user":"mallory"}),
        "forbidden",
    )
    .await;
    m1.err(
        json!({"type":"room.kick","name":"rust","user":"alice"}),
        "forbidden",
    )
    .await;
    for x in [&mut a, &mut b, &mut m1, &mut m2] {
        x.expect_silence(100).await;
    }
    a.ok(json!({"type":"room.kick","name":"rust","user":"Mallory"}))
        .await;
    for x in [&mut a, &mut b, &mut m1, &mut m2] {
        expect_left(x, "rust", "mallory", true).await;
    }
    assert_eq!(
        members(&mut b, "rust").await,
        [
            member("alice", "owner", true),
            member("bob", "member", true)
        ]
    );
    // Banned: forbidden to join, to talk and to type; out of the history.
    m1.err(join("rust"), "forbidden").await;
    m2.err(join("rust"), "forbidden").await;
    m1.err(say("rust", "let me in"), "forbidden").await;
    m1.err(json!({"type":"typing","room":"rust"}), "forbidden")
        .await;
    m1.err(json!({"type":"history","conv":"room:rust"}), "not_found")
        .await;
    a.ok(say("rust", "without mallory")).await;
    assert_eq!(
        expect_frame(&mut b, &json!({"type":"msg"})).await["body"],
        "without mallory"
    );
    m1.expect_silence(200).await;
    m2.expect_silence(0).await;
    // Only the owner unbans.
    b.err(
        json!({"type":"room.unban","name":"rust","user":"mallory"}),
        "forbidden",
    )
    .await;
    m2.err(join("rust"), "forbidden").await;
    a.ok(json!({"type":"room.unban","name":"rust","user":"mallory"}))
        .await;
    assert_eq!(m2.ok(join("rust")).await["conv"], "room:rust");
    for x in [&mut a, &mut b, &mut m1, &mut m2] {
        expect_frame(x, &joined("rust", "mallory")).await;
    }
    m1.ok(say("rust", "back")).await;
    for x in [&mut a, &mut b, &mut m2] {
        assert_eq!(
            expect_frame(x, &json!({"type":"msg"})).await["body"],
            "back"
        );
    }
}

// ---------------------------------------------------------- room messages

#[tokio::test]
async fn a_room_message_reaches_every_session_of_every_member_but_the_sender() {
    let srv = server().start();
    let mut a1 = srv.user_on("alice", "phone").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    a1.ok(create("rust")).await;
    a2.expect("room.joined").await;
    b1.ok(join("rust")).await;
    c.ok(join("rust")).await;
    for x in [&mut a1, &mut a2, &mut b1, &mut b2] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    for x in [&mut a1, &mut a2, &mut b1, &mut b2, &mut c] {
        expect_frame(x, &joined("rust", "carol")).await;
    }
    let ok = a1.ok(say_cid("RUST", "hello room", "r1")).await;
    assert_eq!(ok["conv"], "room:rust");
    assert_eq!(ok["seq"], 1);
    let ts = ok["ts"].as_i64().expect("ts");
    assert!(ts > 1_600_000_000_000);
    let want = json!({"type":"msg","conv":"room:rust","seq":1,"from":"alice",
        "body":"hello room","ts":ts,"client_id":"r1"});
    for x in [&mut a2, &mut b1, &mut b2, &mut c] {
        assert_eq!(x.recv().await, want);
    }
    a1.expect_silence(200).await;
    d.expect_silence(0).await;
    // Without client_id there is none.
    let ok = c.ok(say("rust", "hi all")).await;
    assert_eq!(ok["seq"], 2);
    let want = json!({"type":"msg","conv":"room:rust","seq":2,"from":"carol",
        "body":"hi all","ts":ok["ts"]});
    for x in [&mut a1, &mut a2, &mut b1, &mut b2] {
        assert_eq!(x.recv().await, want);
    }
    c.expect_silence(200).await;
}

#[tokio::test]
async fn who_may_send_to_a_room() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut d = srv.user("dave").await;
    a.ok(create("rust")).await;
    a.ok(create_private("hidden")).await;
    // A public room you are not in: forbidden; a private one, or an
    // unknown room: not_found.
    d.err(say("rust", "hi"), "forbidden").await;
    d.err(say("hidden", "hi"), "not_found").await;
    d.err(say("nowhere", "hi"), "not_found").await;
    d.err(json!({"type":"typing","room":"rust"}), "forbidden")
        .await;
    d.err(json!({"type":"typing","room":"hidden"}), "not_found")
        .await;
    d.err(json!({"type":"typing","room":"nowhere"}), "not_found")
        .await;
    a.expect_silence(200).await;
    // Refused sends took no seq.
    assert_eq!(a.ok(say("rust", "first")).await["seq"], 1);
    assert_eq!(a.ok(say("hidden", "first")).await["seq"], 1);
    // Once joined, dave may.
    d.ok(join("rust")).await;
    assert_eq!(d.ok(say("rust", "now I'm in")).await["seq"], 2);
}

#[tokio::test]
async fn room_seq_is_gapless_and_in_order_with_concurrent_senders() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    a.ok(create("rust")).await;
    for x in [&mut b, &mut c, &mut d] {
        x.ok(join("rust")).await;
    }
    const N: usize = 20;
    let mut senders: [(&str, &mut Client); 3] =
        [("alice", &mut a), ("bob", &mut b), ("carol", &mut c)];
    for (name, x) in senders.iter_mut() {
        let mut batch = String::new();
        for i in 0..N {
            batch.push_str(
                &json!({"type":"msg.send","room":"rust","body":format!("{name}{i}"),"id":format!("{name}{i}")})
                    .to_string(),
            );
            batch.push('\n');
        }
        x.send_bytes(batch.as_bytes()).await;
    }
    // seq -> body, from the oks.
    let mut by_seq = BTreeMap::new();
    for (name, x) in senders {
        let mut own = Vec::new();
        while own.len() < N {
            let v = x.recv().await;
            match v["type"].as_str() {
                Some("ok") => {
                    let id = v["id"].as_str().unwrap().to_owned();
                    let i: usize = id[name.len()..].parse().unwrap();
                    assert_eq!(v["conv"], "room:rust");
                    own.push((i, v["seq"].as_u64().unwrap()));
                    by_seq.insert(v["seq"].as_u64().unwrap(), id);
                }
                Some("msg" | "room.joined") => {}
                _ => panic!("unexpected {v}"),
            }
        }
        own.sort();
        assert!(
            own.windows(2).all(|w| w[0].1 < w[1].1),
            "{name}'s messages out of send order: {own:?}"
        );
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=3 * N as u64).collect::<Vec<_>>()
    );
    // Dave receives them all, in seq order.
    let mut got = Vec::new();
    while got.len() < 3 * N {
        let v = d.recv().await;
        match v["type"].as_str() {
            Some("msg") => got.push(v),
            Some("room.joined") => {}
            _ => panic!("unexpected {v}"),
        }
    }
    assert_eq!(seqs(&got), (1..=3 * N as u64).collect::<Vec<_>>());
    for m in &got {
        assert_eq!(m["body"], by_seq[&m["seq"].as_u64().unwrap()].as_str());
    }
    d.expect_silence(200).await;
    let all = history(&mut d, "room:rust").await;
    assert_eq!(seqs(&all), (1..=3 * N as u64).collect::<Vec<_>>());
    assert!(
        all.windows(2)
            .all(|w| w[0]["ts"].as_i64() <= w[1]["ts"].as_i64()),
        "ts went backwards"
    );
}

#[tokio::test]
async fn client_id_makes_a_room_send_idempotent() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.ok(create("rust")).await;
    b.ok(join("rust")).await;
    for x in [&mut a, &mut b] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    let first = a.ok(say_cid("rust", "once", "c-1")).await;
    assert_eq!(b.expect("msg").await["client_id"], "c-1");
    let again = a.ok(say_cid("rust", "once", "c-1")).await;
    assert_eq!(
        (&again["conv"], &again["seq"], &again["ts"]),
        (&first["conv"], &first["seq"], &first["ts"])
    );
    // From another device too.
    let mut a2 = srv.user_on("alice", "laptop").await;
    let again = a2.ok(say_cid("rust", "once", "c-1")).await;
    assert_eq!((&again["seq"], &again["ts"]), (&first["seq"], &first["ts"]));
    b.expect_silence(300).await;
    a.expect_silence(0).await;
    // Another member's c-1 is theirs.
    let theirs = b.ok(say_cid("rust", "mine", "c-1")).await;
    assert_eq!(theirs["seq"], 2);
    assert_eq!(a.expect("msg").await["from"], "bob");
    // Even after leaving the room, a retry gets the original ok.
    let retry = b.ok(say_cid("rust", "before leaving", "c-2")).await;
    assert_eq!(retry["seq"], 3);
    a.expect("msg").await;
    b.ok(leave("rust")).await;
    expect_left(&mut a, "rust", "bob", false).await;
    let again = b.ok(say_cid("rust", "before leaving", "c-2")).await;
    assert_eq!((&again["seq"], &again["ts"]), (&retry["seq"], &retry["ts"]));
    b.err(say_cid("rust", "new", "c-3"), "forbidden").await;
    a.expect_silence(200).await;
    assert_eq!(history(&mut a, "room:rust").await.len(), 3);
}

#[tokio::test]
async fn typing_in_a_room_reaches_the_other_members() {
    let srv = server().start();
    let mut a1 = srv.user_on("alice", "phone").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    c.ok(create("rust")).await;
    a1.ok(join("rust")).await;
    b1.ok(join("rust")).await;
    for x in [&mut a1, &mut a2, &mut b1, &mut b2, &mut c] {
        x.drain(200).await;
    }
    a1.ok(json!({"type":"typing","room":"RUST"})).await;
    let want = json!({"type":"typing","conv":"room:rust","user":"alice"});
    for x in [&mut b1, &mut b2, &mut c] {
        assert_eq!(x.recv().await, want);
    }
    // Not the typist (any session), not outsiders.
    a1.expect_silence(200).await;
    a2.expect_silence(0).await;
    d.expect_silence(0).await;
    // Not stored.
    assert_eq!(history(&mut c, "room:rust").await, Vec::<Value>::new());
    assert_eq!(conv_entry(&convs(&mut c).await, "room:rust")["last_seq"], 0);
}

#[tokio::test]
async fn room_messages_are_not_filtered_by_blocks() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    b.ok(json!({"type":"contact.block","user":"alice"})).await;
    a.expect("contact.removed").await;
    a.err(
        json!({"type":"msg.send","to":"bob","body":"dm"}),
        "forbidden",
    )
    .await;
    a.ok(create("rust")).await;
    b.ok(join("rust")).await;
    for x in [&mut a, &mut b] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    a.ok(say("rust", "from the blocked")).await;
    let m = b.expect("msg").await;
    assert_eq!(
        (&m["from"], &m["body"]),
        (&json!("alice"), &json!("from the blocked"))
    );
    b.ok(say("rust", "from the blocker")).await;
    let m = a.expect("msg").await;
    assert_eq!(
        (&m["from"], &m["body"]),
        (&json!("bob"), &json!("from the blocker"))
    );
}

// ------------------------------------------------ replay, history, convs

#[tokio::test]
async fn offline_members_get_only_what_was_said_after_they_joined() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    a.ok(create("rust")).await;
    a.ok(say("rust", "before1")).await;
    a.ok(say("rust", "before2")).await;
    let mut b = srv.user("bob").await;
    b.ok(join("rust")).await;
    a.ok(say("rust", "after1")).await;
    assert_eq!(b.expect("room.joined").await["user"], "bob");
    assert_eq!(b.expect("msg").await["seq"], 3);
    // Seen live but never acknowledged; then more while away.
    b.close().await;
    a.ok(say("rust", "after2")).await;
    let mut b = srv.user("bob").await;
    let r = b.login_frames.replay.clone();
    assert_eq!(seqs(&r), [3, 4], "{r:?}");
    assert_eq!(bodies(&r), ["after1", "after2"]);
    assert!(r
        .iter()
        .all(|m| m["conv"] == "room:rust" && m["from"] == "alice"));
    // History still has it all.
    assert_eq!(seqs(&history(&mut b, "room:rust").await), [1, 2, 3, 4]);
    // A member who joined after everything has nothing to replay.
    let mut c = srv.user("carol").await;
    c.ok(join("rust")).await;
    c.close().await;
    let c = srv.user("carol").await;
    assert!(
        c.login_frames.replay.is_empty(),
        "{:?}",
        c.login_frames.replay
    );
    // Acknowledged, then left: nothing said afterwards replays.
    b.ok(ack("room:rust", 4)).await;
    b.ok(leave("rust")).await;
    a.ok(say("rust", "after bob left")).await;
    b.close().await;
    let b = srv.user("bob").await;
    assert!(
        b.login_frames.replay.is_empty(),
        "{:?}",
        b.login_frames.replay
    );
}

#[tokio::test]
async fn room_replay_is_cut_with_a_gap_and_history_holds_the_rest() {
    let srv = server().config(|c| c.limits.replay_max = 3).start();
    let mut a = srv.user("alice").await;
    a.ok(create("rust")).await;
    for i in 1..=4 {
        a.ok(say("rust", &format!("pre{i}"))).await;
    }
    let mut b = srv.user("bob").await;
    b.ok(join("rust")).await;
    b.close().await;
    for i in 5..=9 {
        a.ok(say("rust", &format!("m{i}"))).await;
    }
    let mut b = srv.user("bob").await;
    let r = &b.login_frames.replay;
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(r[0], json!({"type":"gap","conv":"room:rust","before":7}));
    assert_eq!(seqs(&r[1..]), [7, 8, 9]);
    // The rest, including what was said before bob joined.
    let h = b
        .ok(json!({"type":"history","conv":"room:rust","before":7}))
        .await;
    let msgs = h["messages"].as_array().unwrap();
    assert_eq!(seqs(msgs), [1, 2, 3, 4, 5, 6]);
    assert_eq!(bodies(msgs)[..4], ["pre1", "pre2", "pre3", "pre4"]);
    assert_eq!(h["more"], false);
    // Exactly replay_max pending: no gap.
    b.ok(ack("room:rust", 6)).await;
    b.close().await;
    let b = srv.user("bob").await;
    assert_eq!(seqs(&b.login_frames.replay), [7, 8, 9]);
}

#[tokio::test]
async fn replay_orders_rooms_and_direct_conversations_by_activity() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut b).await;
    c.ok(create("one")).await;
    c.ok(create("two")).await;
    b.ok(join("one")).await;
    b.ok(join("two")).await;
    b.close().await;
    c.ok(say("one", "o1")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.send_dm("bob", "d1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.ok(say("two", "t1")).await;
    c.ok(say("two", "t2")).await;
    let b = srv.user("bob").await;
    let got: Vec<(&str, &str)> = b
        .login_frames
        .replay
        .iter()
        .map(|m| (m["conv"].as_str().unwrap(), m["body"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("room:two", "t1"),
            ("room:two", "t2"),
            ("dm:alice:bob", "d1"),
            ("room:one", "o1"),
        ]
    );
}

#[tokio::test]
async fn members_read_the_whole_history_and_others_get_not_found() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    a.ok(create("rust")).await;
    a.ok(create_private("hidden")).await;
    let oks = [
        a.ok(say_cid("rust", "one", "k1")).await,
        a.ok(say("rust", "two")).await,
        a.ok(say("rust", "three")).await,
    ];
    a.ok(say("hidden", "secret")).await;
    // Not a member yet: not found, public or not, existing or not.
    for conv in ["room:rust", "room:hidden", "room:nowhere"] {
        b.err(json!({"type":"history","conv":conv}), "not_found")
            .await;
    }
    b.ok(join("rust")).await;
    let h = b.ok(json!({"type":"history","conv":"room:rust"})).await;
    assert_eq!(
        h["messages"],
        json!([
            {"type":"msg","conv":"room:rust","seq":1,"from":"alice","body":"one","ts":oks[0]["ts"],"client_id":"k1"},
            {"type":"msg","conv":"room:rust","seq":2,"from":"alice","body":"two","ts":oks[1]["ts"]},
            {"type":"msg","conv":"room:rust","seq":3,"from":"alice","body":"three","ts":oks[2]["ts"]},
        ])
    );
    assert_eq!(h["more"], false);
    let h = b
        .ok(json!({"type":"history","conv":"room:rust","before":3,"limit":1}))
        .await;
    assert_eq!(seqs(h["messages"].as_array().unwrap()), [2]);
    assert_eq!(h["more"], true);
    // Invited into the private room: its earlier history too.
    a.ok(json!({"type":"room.invite","name":"hidden","user":"carol"}))
        .await;
    c.ok(join("hidden")).await;
    assert_eq!(bodies(&history(&mut c, "room:hidden").await), ["secret"]);
    // After leaving: not found again.
    b.ok(leave("rust")).await;
    b.err(json!({"type":"history","conv":"room:rust"}), "not_found")
        .await;
}

#[tokio::test]
async fn convs_lists_rooms_from_joining_with_unread_counts_alongside_dms() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut b).await;
    a.ok(create("rust")).await;
    c.ok(join("rust")).await;
    c.ok(create("quiet")).await;
    c.ok(say("rust", "c1")).await;
    c.ok(say("rust", "c2")).await;
    // Bob joins: his cursors start at the room's last seq.
    b.ok(join("rust")).await;
    b.ok(join("quiet")).await;
    let list = convs(&mut b).await;
    assert_eq!(list.len(), 2, "rooms from joining, no DM yet: {list:?}");
    let e = conv_entry(&list, "room:rust");
    assert_eq!(
        (&e["last_seq"], &e["read_seq"], &e["unread"]),
        (&json!(2), &json!(2), &json!(0)),
        "{e}"
    );
    assert!(
        e.get("peer_read_seq").is_none(),
        "direct conversations only: {e}"
    );
    let e = conv_entry(&list, "room:quiet");
    assert_eq!(
        (&e["last_seq"], &e["read_seq"], &e["unread"]),
        (&json!(0), &json!(0), &json!(0)),
        "{e}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.ok(say("rust", "c3")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.send_dm("bob", "d1").await;
    let list = convs(&mut b).await;
    assert_eq!(list.len(), 3, "{list:?}");
    let active: Vec<&str> = list
        .iter()
        .filter(|e| e["last_seq"] != 0)
        .map(|e| e["conv"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["dm:alice:bob", "room:rust"]);
    let e = conv_entry(&list, "room:rust");
    assert_eq!(
        (&e["last_seq"], &e["read_seq"], &e["unread"]),
        (&json!(3), &json!(2), &json!(1)),
        "{e}"
    );
    assert_eq!(
        (
            &e["last"]["conv"],
            &e["last"]["seq"],
            &e["last"]["from"],
            &e["last"]["body"]
        ),
        (
            &json!("room:rust"),
            &json!(3),
            &json!("carol"),
            &json!("c3")
        )
    );
    let e = conv_entry(&list, "dm:alice:bob");
    assert_eq!(
        (&e["last_seq"], &e["unread"]),
        (&json!(1), &json!(1)),
        "{e}"
    );
    // Bob talks in the room without reading: his own message is not
    // unread, and the room is the most recently active again.
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.ok(say("rust", "b1")).await;
    let list = convs(&mut b).await;
    let active: Vec<&str> = list
        .iter()
        .filter(|e| e["last_seq"] != 0)
        .map(|e| e["conv"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["room:rust", "dm:alice:bob"]);
    let e = conv_entry(&list, "room:rust");
    assert_eq!(
        (&e["last_seq"], &e["read_seq"], &e["unread"]),
        (&json!(4), &json!(2), &json!(1)),
        "{e}"
    );
    b.ok(ack_read("room:rust", 4)).await;
    c.ok(say("rust", "c5")).await;
    c.ok(say("rust", "c6")).await;
    let list = convs(&mut b).await;
    let e = conv_entry(&list, "room:rust");
    assert_eq!(
        (&e["last_seq"], &e["read_seq"], &e["unread"]),
        (&json!(6), &json!(4), &json!(2)),
        "{e}"
    );
    // Left rooms are no longer bob's conversations.
    b.ok(leave("quiet")).await;
    let list = convs(&mut b).await;
    assert!(list.iter().all(|e| e["conv"] != "room:quiet"), "{list:?}");
}

#[tokio::test]
async fn room_acks_are_per_device_and_receipts_go_only_to_the_readers_other_sessions() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    a.ok(create("rust")).await;
    b1.ok(join("rust")).await;
    for x in [&mut a, &mut b1, &mut b2] {
        expect_frame(x, &joined("rust", "bob")).await;
    }
    c.ok(join("rust")).await;
    for x in [&mut a, &mut b1, &mut b2, &mut c] {
        expect_frame(x, &joined("rust", "carol")).await;
    }
    for i in 1..=3 {
        c.ok(say("rust", &format!("c{i}"))).await;
    }
    for x in [&mut a, &mut b1, &mut b2] {
        for i in 1..=3u64 {
            assert_eq!(x.expect("msg").await["seq"], i);
        }
    }
    let conv = "room:rust";
    // Delivery only: no receipt anywhere.
    b1.ok(ack(conv, 2)).await;
    for x in [&mut a, &mut b1, &mut b2, &mut c] {
        x.expect_silence(100).await;
    }
    // Read (past the last counts as the last): bob's other session only.
    b1.ok(ack_read(conv, 99)).await;
    assert_eq!(
        b2.recv().await,
        json!({"type":"receipt","conv":conv,"user":"bob","seq":3,"read":true})
    );
    for x in [&mut b1, &mut a, &mut c] {
        x.expect_silence(150).await;
    }
    let e = conv_entry(&convs(&mut b2).await, conv).clone();
    assert_eq!(
        (&e["read_seq"], &e["unread"]),
        (&json!(3), &json!(0)),
        "{e}"
    );
    // No advance, no receipt.
    b1.ok(ack_read(conv, 2)).await;
    b2.expect_silence(150).await;
    // Non-members: not found.
    d.err(ack(conv, 1), "not_found").await;
    d.err(ack_read(conv, 1), "not_found").await;
    d.err(ack("room:nowhere", 1), "not_found").await;
    // Delivery state is per device: the phone acknowledged, the laptop
    // did not.
    b1.close().await;
    b2.close().await;
    let b1 = srv.user_on("bob", "phone").await;
    assert!(
        b1.login_frames.replay.is_empty(),
        "{:?}",
        b1.login_frames.replay
    );
    let b2 = srv.user_on("bob", "laptop").await;
    assert_eq!(seqs(&b2.login_frames.replay), [1, 2, 3]);
}

// --------------------------------------------------------------- scale

#[tokio::test]
async fn a_room_of_50_members_gets_every_message_in_order() {
    const MEMBERS: usize = 50;
    const SENDERS: usize = 5;
    const PER_SENDER: usize = 4;
    const TOTAL: usize = SENDERS * PER_SENDER;
    let srv = server().start();
    let mut cs = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        cs.push(srv.user(&format!("m{i:02}")).await);
    }
    cs[0].ok(create("big")).await;
    for c in cs.iter_mut().skip(1) {
        c.ok(join("big")).await;
    }
    assert_eq!(
        list(&mut cs[0], Some("big")).await,
        [entry("big", "about big", MEMBERS as u64, MEMBERS as u64)]
    );
    // Five members send at once, interleaved, without waiting.
    for j in 0..PER_SENDER {
        for (s, c) in cs.iter_mut().enumerate().take(SENDERS) {
            c.send(json!({"type":"msg.send","room":"big","body":format!("s{s}-{j}"),"id":format!("s{s}-{j}")}))
                .await;
        }
    }
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    let mut received: Vec<Vec<Value>> = Vec::with_capacity(MEMBERS);
    for (i, c) in cs.iter_mut().enumerate() {
        let own_expected = if i < SENDERS { PER_SENDER } else { 0 };
        let mut own = 0;
        let mut msgs = Vec::new();
        while own < own_expected || msgs.len() < TOTAL - own_expected {
            let v = c.recv().await;
            match v["type"].as_str() {
                Some("ok") => {
                    own += 1;
                    by_seq.insert(
                        v["seq"].as_u64().unwrap(),
                        v["id"].as_str().unwrap().to_owned(),
                    );
                }
                Some("msg") => msgs.push(v),
                Some("room.joined") => {}
                _ => panic!("m{i:02}: unexpected {v}"),
            }
        }
        received.push(msgs);
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=TOTAL as u64).collect::<Vec<_>>()
    );
    for (i, msgs) in received.iter().enumerate() {
        let got = seqs(msgs);
        let want: Vec<u64> = by_seq
            .iter()
            .filter(|(_, id)| i >= SENDERS || !id.starts_with(&format!("s{i}-")))
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(got, want, "m{i:02} got messages out of order or missing");
        for m in msgs {
            assert_eq!(m["body"], by_seq[&m["seq"].as_u64().unwrap()].as_str());
        }
    }
}

#[tokio::test]
async fn leaving_a_room_whose_actor_had_retired_still_tells_the_leaver() {
    let srv = server().config(|c| c.limits.conv_idle_secs = 1).start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.ok(json!({"type":"room.create","name":"quiet"})).await;
    b.ok(json!({"type":"room.join","name":"quiet"})).await;
    a.expect("room.joined").await;
    b.expect("room.joined").await;
    // Let the room's actor go idle and retire.
    assert_eq!(srv.census().await.conversations, 1, "the room's actor");
    let census = srv.census_until(|c| c.conversations == 0).await;
    assert_eq!(census.conversations, 0, "the room's actor retired");
    b.ok(json!({"type":"room.leave","name":"quiet"})).await;
    let left = b.expect("room.left").await;
    assert_eq!(
        (left["room"].as_str(), left["user"].as_str()),
        (Some("quiet"), Some("bob"))
    );
    assert_eq!(a.expect("room.left").await["user"], "bob");
}
