//! docs/PROTOCOL.md "Messages" (direct conversations only).

use std::collections::HashSet;

use im_tests::*;
use serde_json::{json, Value};

use super::server;

fn dm(to: &str, body: &str) -> Value {
    json!({"type":"msg.send","to":to,"body":body})
}

fn dm_cid(to: &str, body: &str, cid: &str) -> Value {
    json!({"type":"msg.send","to":to,"body":body,"client_id":cid})
}

/// alice and bob, mutual contacts, both online.
async fn pair(srv: &TestServer) -> (Client, Client) {
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    (a, b)
}

async fn history(c: &mut Client, conv: &str) -> Vec<Value> {
    let r = c
        .ok(json!({"type":"history","conv":conv,"limit":200}))
        .await;
    r["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_direct_message_between_contacts() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let ok = a.ok(dm("Bob", "hello bob")).await;
    assert_eq!(ok["conv"], "dm:alice:bob");
    assert_eq!(ok["seq"], 1);
    let ts = ok["ts"].as_i64().expect("ts");
    assert!(ts > 1_600_000_000_000);
    let m = b.recv().await;
    // No client_id was given, so none is sent.
    assert_eq!(
        m,
        json!({"type":"msg","conv":"dm:alice:bob","seq":1,"from":"alice","body":"hello bob","ts":ts})
    );
    // The sending session gets only its ok.
    a.expect_silence(200).await;
    let ok = b.ok(dm("alice", "hi alice")).await;
    assert_eq!(ok["conv"], "dm:alice:bob");
    assert_eq!(ok["seq"], 2);
    let m = a.expect("msg").await;
    assert_eq!(m["from"], "bob");
    assert_eq!(m["body"], "hi alice");
    assert_eq!(m["seq"], 2);
}

#[tokio::test]
async fn direct_conversation_ids_use_byte_order() {
    let srv = server()
        .config(|c| c.policy.dm_requires_contact = false)
        .start();
    srv.register("alice").await;
    srv.register("a.bc").await;
    let mut z = srv.user("zed").await;
    assert_eq!(z.send_dm("alice", "x").await["conv"], "dm:alice:zed");
    let mut n = srv.user("9lives").await;
    assert_eq!(n.send_dm("alice", "x").await["conv"], "dm:9lives:alice");
    let mut d = srv.user("a-bc").await;
    assert_eq!(d.send_dm("A.BC", "x").await["conv"], "dm:a-bc:a.bc");
}

#[tokio::test]
async fn a_non_contact_cannot_be_messaged() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut c = srv.user("carol").await;
    a.err(dm("carol", "hi"), "forbidden").await;
    c.err(dm("alice", "hi"), "forbidden").await;
    // A pending request is not enough, either way.
    a.ok(json!({"type":"contact.add","user":"carol"})).await;
    c.expect("contact.request").await;
    a.err(dm("carol", "hi"), "forbidden").await;
    c.err(dm("alice", "hi"), "forbidden").await;
    c.expect_silence(200).await;
    a.expect_silence(0).await;
    assert_eq!(a.ok(json!({"type":"convs"})).await["convs"], json!([]));
}

#[tokio::test]
async fn without_the_contact_policy_anyone_may_be_messaged_but_blocks_hold() {
    let srv = server()
        .config(|c| c.policy.dm_requires_contact = false)
        .start();
    let mut a = srv.user("alice").await;
    let mut c = srv.user("carol").await;
    let ok = a.ok(dm("carol", "hello stranger")).await;
    assert_eq!(ok["conv"], "dm:alice:carol");
    let m = c.expect("msg").await;
    assert_eq!(m["body"], "hello stranger");
    c.ok(dm("alice", "hello")).await;
    a.expect("msg").await;
    // Blocks still forbid, both ways.
    c.ok(json!({"type":"contact.block","user":"alice"})).await;
    a.err(dm("carol", "hi"), "forbidden").await;
    c.err(dm("alice", "hi"), "forbidden").await;
    // Unknown users are still not found.
    a.err(dm("nobody", "hi"), "not_found").await;
}

#[tokio::test]
async fn blocked_either_way_is_forbidden() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    b.ok(json!({"type":"contact.block","user":"alice"})).await;
    a.expect("contact.removed").await;
    a.err(dm("bob", "hi"), "forbidden").await;
    b.err(dm("alice", "hi"), "forbidden").await;
    b.ok(json!({"type":"contact.unblock","user":"alice"})).await;
    srv.befriend(&mut a, &mut b).await;
    a.send_dm("bob", "again").await;
    assert_eq!(b.expect("msg").await["body"], "again");
}

#[tokio::test]
async fn messaging_yourself_is_a_bad_request() {
    let srv = server()
        .config(|c| c.policy.dm_requires_contact = false)
        .start();
    let mut a = srv.user("alice").await;
    a.err(dm("alice", "me"), "bad_request").await;
    a.err(dm("ALICE", "me"), "bad_request").await;
    a.err(dm("ａlice", "me"), "bad_request").await;
}

#[tokio::test]
async fn messaging_an_unknown_user_is_not_found() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    a.err(dm("nobody", "hi"), "not_found").await;
    a.err(json!({"type":"typing","to":"nobody"}), "not_found")
        .await;
}

#[tokio::test]
async fn exactly_one_of_to_and_room() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    a.err(
        json!({"type":"msg.send","to":"bob","room":"rust","body":"hi"}),
        "bad_request",
    )
    .await;
    a.err(json!({"type":"msg.send","body":"hi"}), "bad_request")
        .await;
    a.err(
        json!({"type":"msg.send","to":null,"room":null,"body":"hi"}),
        "bad_request",
    )
    .await;
    b.expect_silence(200).await;
    // room: null is absent.
    a.ok(json!({"type":"msg.send","to":"bob","room":null,"body":"hi"}))
        .await;
    assert_eq!(b.expect("msg").await["seq"], 1);
}

#[tokio::test]
async fn empty_or_white_space_bodies_are_refused() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    for body in [
        "",
        " ",
        "   \t\n\r ",
        "\u{3000}",
        "\u{00a0}\u{2028}\u{2029}\u{0085}\u{1680}\u{2003}\u{202f}\u{205f}\u{000b}\u{000c}",
    ] {
        a.err(dm("bob", body), "bad_request").await;
    }
    a.err(json!({"type":"msg.send","to":"bob"}), "bad_request")
        .await;
    a.err(
        json!({"type":"msg.send","to":"bob","body":null}),
        "bad_request",
    )
    .await;
    b.expect_silence(200).await;
    // Not White_Space: a zero-width space, and text surrounded by spaces.
    let ok = a.ok(dm("bob", "\u{200b}")).await;
    assert_eq!(ok["seq"], 1, "refused messages take no seq");
    assert_eq!(b.expect("msg").await["body"], "\u{200b}");
    a.ok(dm("bob", "  padded  ")).await;
    assert_eq!(b.expect("msg").await["body"], "  padded  ");
}

#[tokio::test]
async fn body_size_is_limited_in_bytes() {
    let srv = server().config(|c| c.limits.max_body = 16).start();
    let (mut a, mut b) = pair(&srv).await;
    // 16 bytes (8 characters) is fine.
    a.ok(dm("bob", &"é".repeat(8))).await;
    assert_eq!(b.expect("msg").await["body"], "é".repeat(8));
    // 17 bytes in 9 characters is not.
    a.err(dm("bob", &format!("{}x", "é".repeat(8))), "too_large")
        .await;
    a.err(dm("bob", &"x".repeat(17)), "too_large").await;
    b.expect_silence(200).await;
    assert_eq!(a.send_dm("bob", &"x".repeat(16)).await["seq"], 2);
}

#[tokio::test]
async fn the_default_body_limit_is_16384_bytes() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    a.ok(dm("bob", &"x".repeat(16384))).await;
    assert_eq!(b.expect("msg").await["body"].as_str().unwrap().len(), 16384);
    a.err(dm("bob", &"x".repeat(16385)), "too_large").await;
}

#[tokio::test]
async fn seq_is_gapless_and_ts_never_decreases() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    // Both sides send at once, without waiting for replies.
    let n = 40;
    for i in 0..n {
        a.send(json!({"type":"msg.send","to":"bob","body":format!("a{i}"),"id":1000 + i}))
            .await;
        b.send(json!({"type":"msg.send","to":"alice","body":format!("b{i}"),"id":1000 + i}))
            .await;
    }
    let mut seqs = Vec::new();
    for c in [&mut a, &mut b] {
        let mut own = Vec::new();
        let mut got = 0;
        while got < n {
            let v = c.recv().await;
            match v["type"].as_str() {
                Some("ok") => {
                    got += 1;
                    own.push((v["id"].as_i64().unwrap(), v["seq"].as_u64().unwrap()));
                }
                Some("msg") => {}
                _ => panic!("unexpected {v}"),
            }
        }
        // One sender's messages are numbered in the order it sent them.
        own.sort();
        assert!(own.windows(2).all(|w| w[0].1 < w[1].1), "{own:?}");
        seqs.extend(own.into_iter().map(|(_, s)| s));
    }
    seqs.sort();
    assert_eq!(seqs, (1..=2 * n as u64).collect::<Vec<_>>());
    let all = history(&mut a, "dm:alice:bob").await;
    assert_eq!(all.len(), 2 * n as usize);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m["seq"], i as u64 + 1);
    }
    assert!(
        all.windows(2)
            .all(|w| w[0]["ts"].as_i64() <= w[1]["ts"].as_i64()),
        "ts went backwards"
    );
}

#[tokio::test]
async fn a_conversations_messages_arrive_in_seq_order() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let mut batch = String::new();
    for i in 1..=100 {
        batch.push_str(
            &json!({"type":"msg.send","to":"bob","body":format!("m{i}"),"id":i}).to_string(),
        );
        batch.push('\n');
    }
    a.send_bytes(batch.as_bytes()).await;
    let mut last_ts = 0;
    for i in 1..=100u64 {
        let m = b.expect("msg").await;
        assert_eq!(m["seq"], i, "{m}");
        assert_eq!(m["body"], format!("m{i}"), "sent order is seq order");
        let ts = m["ts"].as_i64().unwrap();
        assert!(ts >= last_ts);
        last_ts = ts;
    }
    let mut ids = HashSet::new();
    for _ in 1..=100 {
        let r = a.recv().await;
        assert_eq!(r["type"], "ok", "{r}");
        assert_eq!(r["seq"], r["id"], "{r}");
        ids.insert(r["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 100);
}

#[tokio::test]
async fn client_id_makes_a_send_idempotent() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let first = a.ok(dm_cid("bob", "once", "c-1")).await;
    let m = b.expect("msg").await;
    assert_eq!(m["client_id"], "c-1");
    assert_eq!(m["seq"], first["seq"]);
    // A retry gets the original ok and nobody gets the message again.
    let again = a.ok(dm_cid("bob", "once", "c-1")).await;
    assert_eq!(again["conv"], first["conv"]);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["ts"], first["ts"]);
    // Even from another device of the same sender.
    let mut a2 = srv.user_on("alice", "laptop").await;
    let again = a2.ok(dm_cid("bob", "once", "c-1")).await;
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["ts"], first["ts"]);
    b.expect_silence(300).await;
    a.expect_silence(0).await;
    // Another client_id is another message.
    let next = a.ok(dm_cid("bob", "twice", "c-2")).await;
    assert_eq!(next["seq"], 2);
    assert_eq!(b.expect("msg").await["client_id"], "c-2");
    // The same client_id from the other member is the other member's own.
    let theirs = b.ok(dm_cid("alice", "mine", "c-1")).await;
    assert_eq!(theirs["seq"], 3);
    assert_eq!(history(&mut b, "dm:alice:bob").await.len(), 3);
}

#[tokio::test]
async fn client_id_is_scoped_to_the_conversation() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut c).await;
    a.ok(dm_cid("bob", "to bob", "same")).await;
    b.expect("msg").await;
    let ok = a.ok(dm_cid("carol", "to carol", "same")).await;
    assert_eq!(ok["conv"], "dm:alice:carol");
    assert_eq!(ok["seq"], 1);
    assert_eq!(c.expect("msg").await["body"], "to carol");
}

#[tokio::test]
async fn a_retried_send_succeeds_even_after_the_contact_ended() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let first = a.ok(dm_cid("bob", "hi", "retry-me")).await;
    b.expect("msg").await;
    b.ok(json!({"type":"contact.remove","user":"alice"})).await;
    a.expect("contact.removed").await;
    let again = a.ok(dm_cid("bob", "hi", "retry-me")).await;
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["ts"], first["ts"]);
    assert_eq!(again["conv"], "dm:alice:bob");
    a.err(dm_cid("bob", "hi", "new-one"), "forbidden").await;
    // Even after a block.
    b.ok(json!({"type":"contact.block","user":"alice"})).await;
    let again = a.ok(dm_cid("bob", "hi", "retry-me")).await;
    assert_eq!(again["seq"], first["seq"]);
    b.expect_silence(300).await;
    assert_eq!(history(&mut b, "dm:alice:bob").await.len(), 1);
}

#[tokio::test]
async fn client_id_is_at_most_64_characters() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let cid = "é".repeat(64);
    a.ok(dm_cid("bob", "ok", &cid)).await;
    assert_eq!(b.expect("msg").await["client_id"], cid.as_str());
    a.err(dm_cid("bob", "no", &"c".repeat(65)), "bad_request")
        .await;
    b.expect_silence(200).await;
}

#[tokio::test]
async fn the_senders_other_sessions_get_a_carbon() {
    let srv = server().start();
    let mut a = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut a3 = srv.user_on("alice", "phone").await;
    let ok = a.ok(dm_cid("bob", "from the phone", "k1")).await;
    let want = json!({"type":"msg","conv":"dm:alice:bob","seq":1,"from":"alice",
        "body":"from the phone","ts":ok["ts"],"client_id":"k1"});
    assert_eq!(b.recv().await, want);
    assert_eq!(a2.recv().await, want);
    // Another session of the same device is another session.
    assert_eq!(a3.recv().await, want);
    a.expect_silence(300).await;
    // Replies reach every session of the sender.
    b.send_dm("alice", "back").await;
    for c in [&mut a, &mut a2, &mut a3] {
        assert_eq!(c.expect("msg").await["body"], "back");
    }
}

#[tokio::test]
async fn typing_notifications() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    a.ok(json!({"type":"typing","to":"BOB"})).await;
    let want = json!({"type":"typing","conv":"dm:alice:bob","user":"alice"});
    assert_eq!(b.recv().await, want);
    assert_eq!(b2.recv().await, want);
    a.expect_silence(200).await;
    // Not stored.
    assert_eq!(history(&mut a, "dm:alice:bob").await, Vec::<Value>::new());
    assert_eq!(a.ok(json!({"type":"convs"})).await["convs"], json!([]));
    // Same permissions as msg.send.
    srv.register("carol").await;
    a.err(json!({"type":"typing","to":"carol"}), "forbidden")
        .await;
    a.err(json!({"type":"typing","to":"alice"}), "bad_request")
        .await;
    a.err(json!({"type":"typing","to":"nobody"}), "not_found")
        .await;
    a.err(
        json!({"type":"typing","to":"bob","room":"rust"}),
        "bad_request",
    )
    .await;
    a.err(json!({"type":"typing"}), "bad_request").await;
}

#[tokio::test]
async fn usernames_in_msg_send_are_normalised() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let ok = a.ok(dm("ＢＯＢ", "wide")).await;
    assert_eq!(ok["conv"], "dm:alice:bob");
    assert_eq!(b.expect("msg").await["from"], "alice");
}
