//! docs/PROTOCOL.md "Contacts and presence": requests, accept, decline, remove,
//! block, unblock, lists and the roster's contact states.

use im_tests::*;
use serde_json::{json, Value};

use super::server;

fn add(user: &str) -> Value {
    json!({"type":"contact.add","user":user})
}

fn op(ty: &str, user: &str) -> Value {
    json!({"type":ty,"user":user})
}

async fn contacts(c: &mut Client) -> Value {
    c.ok(json!({"type":"contact.list"})).await["contacts"].clone()
}

async fn blocks(c: &mut Client) -> Value {
    c.ok(json!({"type":"contact.blocks"})).await["users"].clone()
}

#[tokio::test]
async fn a_request_to_an_online_user_arrives_at_once() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    a.ok(add("Bob")).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.request","from":"alice"})
    );
    assert_eq!(
        b2.recv().await,
        json!({"type":"contact.request","from":"alice"})
    );
    a.expect_silence(200).await;
    assert_eq!(
        contacts(&mut a).await,
        json!([{"user":"bob","state":"pending_out"}])
    );
    assert_eq!(
        contacts(&mut b).await,
        json!([{"user":"alice","state":"pending_in"}])
    );
}

#[tokio::test]
async fn a_request_to_an_offline_user_is_in_their_next_roster() {
    let srv = server().start();
    srv.register("bob").await;
    let mut a = srv.user("alice").await;
    a.ok(add("bob")).await;
    assert_eq!(
        contacts(&mut a).await,
        json!([{"user":"bob","state":"pending_out"}])
    );
    let b = srv.user("bob").await;
    assert_eq!(
        b.login_frames.roster,
        json!({"type":"roster","contacts":[{"user":"alice","state":"pending_in"}]})
    );
    let a2 = srv.user_on("alice", "laptop").await;
    assert_eq!(
        a2.login_frames.roster,
        json!({"type":"roster","contacts":[{"user":"bob","state":"pending_out"}]})
    );
}

#[tokio::test]
async fn accepting_tells_every_session_of_both_users() {
    let srv = server().start();
    let mut a = srv.user_on("alice", "phone").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut b = srv.user("bob").await;
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    b.ok(op("contact.accept", "ALICE")).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.added","user":"alice"})
    );
    assert_eq!(
        b.recv().await,
        json!({"type":"presence","user":"alice","status":"online"})
    );
    for c in [&mut a, &mut a2] {
        assert_eq!(c.recv().await, json!({"type":"contact.added","user":"bob"}));
        assert_eq!(
            c.recv().await,
            json!({"type":"presence","user":"bob","status":"online"})
        );
    }
    assert_eq!(
        contacts(&mut a).await,
        json!([{"user":"bob","state":"mutual","presence":"online"}])
    );
    assert_eq!(
        contacts(&mut b).await,
        json!([{"user":"alice","state":"mutual","presence":"online"}])
    );
}

#[tokio::test]
async fn accepting_while_the_requester_is_offline_shows_them_offline() {
    let srv = server().start();
    srv.register("bob").await;
    let mut a = srv.user("alice").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut c).await;
    a.ok(add("bob")).await;
    a.close().await;
    // Carol seeing alice go offline means alice's session is gone.
    assert_eq!(c.expect("presence").await["status"], "offline");
    let mut b = srv.user("bob").await;
    assert_eq!(
        b.login_frames.roster["contacts"],
        json!([{"user":"alice","state":"pending_in"}])
    );
    b.ok(op("contact.accept", "alice")).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.added","user":"alice"})
    );
    let p = b.expect("presence").await;
    assert_eq!(p["user"], "alice");
    assert_eq!(p["status"], "offline");
    assert!(p["last_seen"].as_i64().unwrap() > 1_600_000_000_000, "{p}");
    assert!(p.get("note").is_none(), "{p}");
    // Alice learns it at her next login.
    let a = srv.user("alice").await;
    let roster = &a.login_frames.roster["contacts"];
    assert_eq!(
        roster[0],
        json!({"user":"bob","state":"mutual","presence":"online"})
    );
}

#[tokio::test]
async fn accepting_shows_each_others_current_presence() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.ok(json!({"type":"presence.set","status":"away","note":"at lunch"}))
        .await;
    b.ok(json!({"type":"presence.set","status":"busy"})).await;
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    b.ok(op("contact.accept", "alice")).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.added","user":"alice"})
    );
    assert_eq!(
        b.recv().await,
        json!({"type":"presence","user":"alice","status":"away","note":"at lunch"})
    );
    assert_eq!(a.recv().await, json!({"type":"contact.added","user":"bob"}));
    assert_eq!(
        a.recv().await,
        json!({"type":"presence","user":"bob","status":"busy"})
    );
}

#[tokio::test]
async fn adding_someone_who_asked_you_accepts_instead() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    b.ok(add("alice")).await;
    a.expect("contact.request").await;
    a.ok(add("bob")).await;
    assert_eq!(a.recv().await, json!({"type":"contact.added","user":"bob"}));
    assert_eq!(a.expect("presence").await["user"], "bob");
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.added","user":"alice"})
    );
    assert_eq!(b.expect("presence").await["user"], "alice");
    assert_eq!(contacts(&mut b).await[0]["state"], "mutual");
}

#[tokio::test]
async fn contact_add_errors() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    a.err(add("alice"), "bad_request").await;
    a.err(add("ALICE"), "bad_request").await;
    a.err(add("nobody"), "not_found").await;
    a.err(add("x"), "not_found").await;
    assert_eq!(contacts(&mut a).await, json!([]));
}

#[tokio::test]
async fn asking_again_or_adding_a_contact_again_is_ok_and_silent() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    a.ok(add("bob")).await;
    b.expect_silence(300).await;
    b.ok(op("contact.accept", "alice")).await;
    for c in [&mut a, &mut b] {
        c.expect("contact.added").await;
        c.expect("presence").await;
    }
    a.ok(add("bob")).await;
    b.ok(add("alice")).await;
    a.expect_silence(300).await;
    b.expect_silence(0).await;
    assert_eq!(contacts(&mut a).await[0]["state"], "mutual");
}

#[tokio::test]
async fn contact_add_with_blocks() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut m = srv.user("mallory").await;
    a.ok(op("contact.block", "mallory")).await;
    // You blocked them: unblock first.
    a.err(add("mallory"), "conflict").await;
    // They blocked you.
    m.err(add("alice"), "forbidden").await;
    a.expect_silence(200).await;
    assert_eq!(contacts(&mut a).await, json!([]));
    assert_eq!(contacts(&mut m).await, json!([]));
}

#[tokio::test]
async fn contact_add_blocked_both_ways_is_forbidden() {
    // Permission (forbidden) is checked before state (conflict).
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut m = srv.user("mallory").await;
    a.ok(op("contact.block", "mallory")).await;
    m.ok(op("contact.block", "alice")).await;
    a.err(add("mallory"), "forbidden").await;
    m.err(add("alice"), "forbidden").await;
}

#[tokio::test]
async fn contact_accept_errors() {
    let srv = server().start();
    srv.register("carol").await;
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.err(op("contact.accept", "bob"), "not_found").await;
    a.err(op("contact.accept", "alice"), "bad_request").await;
    a.err(op("contact.accept", "nobody"), "not_found").await;
    // Accepting your own request is not possible.
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    a.err(op("contact.accept", "bob"), "not_found").await;
    a.err(op("contact.accept", "carol"), "not_found").await;
    b.expect_silence(200).await;
    // Already mutual: ok, nothing sent.
    b.ok(op("contact.accept", "alice")).await;
    for c in [&mut a, &mut b] {
        c.expect("contact.added").await;
        c.expect("presence").await;
    }
    b.ok(op("contact.accept", "alice")).await;
    a.ok(op("contact.accept", "bob")).await;
    a.expect_silence(300).await;
    b.expect_silence(0).await;
}

#[tokio::test]
async fn declining_a_request() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user_on("bob", "phone").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    b.err(op("contact.decline", "alice"), "not_found").await;
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    b2.expect("contact.request").await;
    b.ok(op("contact.decline", "alice")).await;
    assert_eq!(
        a.recv().await,
        json!({"type":"contact.removed","user":"bob"})
    );
    // Bob's other device stays in step.
    assert_eq!(
        b2.recv().await,
        json!({"type":"contact.removed","user":"alice"})
    );
    assert_eq!(contacts(&mut a).await, json!([]));
    assert_eq!(contacts(&mut b).await, json!([]));
    b.err(op("contact.decline", "alice"), "not_found").await;
    // Alice may ask again.
    a.ok(add("bob")).await;
    assert_eq!(b.expect("contact.request").await["from"], "alice");
}

#[tokio::test]
async fn removing_a_contact_ends_presence_both_ways() {
    let srv = server().start();
    let mut a = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    a.ok(op("contact.remove", "bob")).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.removed","user":"alice"})
    );
    assert_eq!(
        a2.recv().await,
        json!({"type":"contact.removed","user":"bob"})
    );
    assert_eq!(contacts(&mut a).await, json!([]));
    assert_eq!(contacts(&mut b).await, json!([]));
    // From then on neither sees the other's presence.
    b.ok(json!({"type":"presence.set","status":"away"})).await;
    a.ok(json!({"type":"presence.set","status":"busy","note":"x"}))
        .await;
    a2.recv().await; // own presence, on the other device
    a.expect_silence(300).await;
    b.expect_silence(0).await;
    a2.close().await;
    a.close().await;
    b.expect_silence(500).await;
}

#[tokio::test]
async fn remove_cancels_a_request_either_way() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    // The requester withdraws.
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    a.ok(op("contact.remove", "bob")).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"contact.removed","user":"alice"})
    );
    assert_eq!(contacts(&mut b).await, json!([]));
    assert_eq!(contacts(&mut a).await, json!([]));
    // The asked one refuses with remove.
    a.ok(add("bob")).await;
    b.expect("contact.request").await;
    b.ok(op("contact.remove", "alice")).await;
    assert_eq!(
        a.recv().await,
        json!({"type":"contact.removed","user":"bob"})
    );
    assert_eq!(contacts(&mut a).await, json!([]));
    b.err(op("contact.accept", "alice"), "not_found").await;
}

#[tokio::test]
async fn contact_remove_and_decline_validate_the_user() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    a.err(op("contact.remove", "alice"), "bad_request").await;
    a.err(op("contact.remove", "nobody"), "not_found").await;
    a.err(op("contact.decline", "alice"), "bad_request").await;
    a.err(op("contact.decline", "nobody"), "not_found").await;
    a.err(op("contact.block", "alice"), "bad_request").await;
    a.err(op("contact.block", "nobody"), "not_found").await;
    a.err(op("contact.unblock", "alice"), "bad_request").await;
    a.err(op("contact.unblock", "nobody"), "not_found").await;
}

#[tokio::test]
async fn blocking_a_contact() {
    let srv = server().start();
    let mut a = srv.user_on("alice", "phone").await;
    let mut m = srv.user("mallory").await;
    srv.befriend(&mut a, &mut m).await;
    m.send_dm("alice", "before").await;
    a.expect("msg").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    a.ok(op("contact.block", "mallory")).await;
    assert_eq!(
        m.recv().await,
        json!({"type":"contact.removed","user":"alice"})
    );
    assert_eq!(
        a2.recv().await,
        json!({"type":"contact.removed","user":"mallory"})
    );
    assert_eq!(blocks(&mut a).await, json!(["mallory"]));
    assert_eq!(blocks(&mut m).await, json!([]));
    assert_eq!(contacts(&mut a).await, json!([]));
    assert_eq!(contacts(&mut m).await, json!([]));
    // Messages, typing and requests are forbidden both ways.
    m.err(
        json!({"type":"msg.send","to":"alice","body":"hi"}),
        "forbidden",
    )
    .await;
    a.err(
        json!({"type":"msg.send","to":"mallory","body":"hi"}),
        "forbidden",
    )
    .await;
    m.err(json!({"type":"typing","to":"alice"}), "forbidden")
        .await;
    a.err(json!({"type":"typing","to":"mallory"}), "forbidden")
        .await;
    m.err(add("alice"), "forbidden").await;
    a.err(add("mallory"), "conflict").await;
    // No presence either.
    a.ok(json!({"type":"presence.set","status":"away"})).await;
    a2.expect("presence").await;
    m.expect_silence(300).await;
    a.expect_silence(0).await;
}

#[tokio::test]
async fn blocks_and_removals_made_while_the_other_is_offline_hold_at_login() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut m = srv.user("mallory").await;
    srv.befriend(&mut a, &mut b).await;
    srv.befriend(&mut a, &mut m).await;
    b.close().await;
    m.close().await;
    for _ in 0..2 {
        assert_eq!(a.expect("presence").await["status"], "offline");
    }
    a.ok(op("contact.remove", "bob")).await;
    a.ok(op("contact.block", "mallory")).await;
    let mut b = srv.user("bob").await;
    assert_eq!(b.login_frames.roster["contacts"], json!([]));
    b.err(
        json!({"type":"msg.send","to":"alice","body":"hi"}),
        "forbidden",
    )
    .await;
    let mut m = srv.user("mallory").await;
    assert_eq!(m.login_frames.roster["contacts"], json!([]));
    m.err(
        json!({"type":"msg.send","to":"alice","body":"hi"}),
        "forbidden",
    )
    .await;
    m.err(add("alice"), "forbidden").await;
    // Neither of their logins told alice anything.
    a.expect_silence(300).await;
}

#[tokio::test]
async fn blocking_removes_a_pending_request() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut m = srv.user("mallory").await;
    m.ok(add("alice")).await;
    a.expect("contact.request").await;
    a.ok(op("contact.block", "mallory")).await;
    assert_eq!(
        m.recv().await,
        json!({"type":"contact.removed","user":"alice"})
    );
    assert_eq!(contacts(&mut a).await, json!([]));
    assert_eq!(contacts(&mut m).await, json!([]));
    a.err(op("contact.accept", "mallory"), "not_found").await;
}

#[tokio::test]
async fn blocking_a_stranger_sends_nothing() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut c = srv.user("carol").await;
    a.ok(op("contact.block", "carol")).await;
    c.expect_silence(300).await;
    a.expect_silence(0).await;
    c.err(add("alice"), "forbidden").await;
    a.expect_silence(200).await;
    // Blocking again changes nothing.
    a.ok(op("contact.block", "Carol")).await;
    assert_eq!(blocks(&mut a).await, json!(["carol"]));
}

#[tokio::test]
async fn unblocking_does_not_restore_the_contact() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut m = srv.user("mallory").await;
    srv.befriend(&mut a, &mut m).await;
    a.ok(op("contact.block", "mallory")).await;
    m.expect("contact.removed").await;
    a.ok(op("contact.unblock", "mallory")).await;
    m.expect_silence(200).await;
    assert_eq!(blocks(&mut a).await, json!([]));
    assert_eq!(contacts(&mut a).await, json!([]));
    assert_eq!(contacts(&mut m).await, json!([]));
    // Still not contacts, so no direct messages.
    m.err(
        json!({"type":"msg.send","to":"alice","body":"hi"}),
        "forbidden",
    )
    .await;
    // But requests are possible again, both ways.
    m.ok(add("alice")).await;
    assert_eq!(a.expect("contact.request").await["from"], "mallory");
}

#[tokio::test]
async fn contact_blocks_lists_the_blocked_users() {
    let srv = server().start();
    srv.register("carol").await;
    srv.register("bob").await;
    srv.register("dave").await;
    let mut a = srv.user("alice").await;
    assert_eq!(blocks(&mut a).await, json!([]));
    a.ok(op("contact.block", "dave")).await;
    a.ok(op("contact.block", "BOB")).await;
    a.ok(op("contact.block", "carol")).await;
    let mut users: Vec<String> = serde_json::from_value(blocks(&mut a).await).unwrap();
    users.sort();
    assert_eq!(users, ["bob", "carol", "dave"]);
    a.ok(op("contact.unblock", "carol")).await;
    let mut users: Vec<String> = serde_json::from_value(blocks(&mut a).await).unwrap();
    users.sort();
    assert_eq!(users, ["bob", "dave"]);
    // Blocks are the blocker's own business.
    let mut b = srv.user("bob").await;
    assert_eq!(blocks(&mut b).await, json!([]));
}

#[tokio::test]
async fn contact_list_is_the_roster_sorted_by_user() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    // dave asks alice, alice asks erin (offline), carol and bob are mutual.
    let mut d = srv.user("dave").await;
    d.ok(add("alice")).await;
    a.expect("contact.request").await;
    srv.register("erin").await;
    a.ok(add("erin")).await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut c).await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut b, &mut a).await;
    b.ok(json!({"type":"presence.set","status":"away","note":"at lunch"}))
        .await;
    a.expect("presence").await;
    c.close().await;
    let off = a.expect("presence").await;
    assert_eq!(off["status"], "offline");
    let list = contacts(&mut a).await;
    let last_seen = list[1]["last_seen"].clone();
    assert!(last_seen.as_i64().unwrap() > 1_600_000_000_000, "{list}");
    assert_eq!(
        list,
        json!([
            {"user":"bob","state":"mutual","presence":"away","note":"at lunch"},
            {"user":"carol","state":"mutual","presence":"offline","last_seen":last_seen},
            {"user":"dave","state":"pending_in"},
            {"user":"erin","state":"pending_out"},
        ])
    );
    let a2 = srv.user_on("alice", "laptop").await;
    assert_eq!(
        a2.login_frames.roster,
        json!({"type":"roster","contacts":list})
    );
}

/// Reads `c` until the reply to request `id` and every event in `events`
/// have arrived; returns (the reply, the event types in arrival order).
async fn reply_and_events(c: &mut Client, id: &str, events: &[&str]) -> (Value, Vec<String>) {
    let mut reply = None;
    let mut seen: Vec<String> = Vec::new();
    while reply.is_none() || events.iter().any(|e| !seen.iter().any(|s| s == e)) {
        let v = c.recv().await;
        if v["id"] == id {
            assert!(reply.is_none(), "two replies to {id}: {v}");
            reply = Some(v);
        } else {
            seen.push(v["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    (reply.expect("reply"), seen)
}

#[tokio::test]
async fn racing_accept_and_remove_leave_the_store_and_permissions_in_step() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    for round in 0..15 {
        a.ok(add("bob")).await;
        assert_eq!(b.expect("contact.request").await["from"], "alice");
        // Both on the wire at once: one accepts, the other withdraws
        // (written in turn first, so both orders get their chance).
        let accept = json!({"type":"contact.accept","user":"alice","id":"acc"});
        let remove = json!({"type":"contact.remove","user":"bob","id":"rm"});
        if round % 2 == 0 {
            b.send(accept).await;
            a.send(remove).await;
        } else {
            a.send(remove).await;
            b.send(accept).await;
        }
        // Either order is allowed. Accept first: both hear contact.added
        // and presence, then the remove ends it (bob hears
        // contact.removed). Remove first: the request is withdrawn (bob
        // hears contact.removed) and the accept finds nothing.
        let (acc, b_events) = reply_and_events(&mut b, "acc", &["contact.removed"]).await;
        let accepted = match (acc["type"].as_str(), acc["code"].as_str()) {
            (Some("ok"), _) => true,
            (Some("error"), Some("not_found")) => false,
            _ => panic!("round {round}: contact.accept -> {acc}"),
        };
        let (a_want, b_want): (&[&str], &[&str]) = if accepted {
            (
                &["contact.added", "presence"],
                &["contact.added", "presence", "contact.removed"],
            )
        } else {
            (&[], &["contact.removed"])
        };
        let (rm, a_events) = reply_and_events(&mut a, "rm", a_want).await;
        assert_eq!(rm["type"], "ok", "round {round}: contact.remove -> {rm}");
        a.expect_silence(100).await;
        b.expect_silence(0).await;
        assert_eq!(
            a_events, a_want,
            "round {round}: alice, accepted={accepted}"
        );
        assert_eq!(b_events, b_want, "round {round}: bob, accepted={accepted}");
        // Both orders end with no contact: the lists and the permission
        // to send agree with that.
        assert_eq!(contacts(&mut a).await, json!([]), "round {round}");
        assert_eq!(contacts(&mut b).await, json!([]), "round {round}");
        b.err(
            json!({"type":"msg.send","to":"alice","body":format!("round {round}")}),
            "forbidden",
        )
        .await;
    }
}
