//! Several nodes as one server, in one process: hubs sharing one store and
//! a `MemoryBus` (the in-process implementation of the bus seam), clients
//! over real sockets to each node. The same paths over NATS between real
//! processes are in `cluster_nats.rs`.

use std::sync::Arc;
use std::time::Duration;

use im_core::cluster::MemoryBus;
use im_tests::*;
use serde_json::json;

/// A node on a new bus; `sibling()` adds nodes to it. No polling: what
/// crosses nodes here crosses through the bus.
fn cluster() -> TestServer {
    TestServer::builder()
        .bus(Arc::new(MemoryBus::new()))
        .config(|c| {
            c.auth.change_poll_ms = 0;
            c.auth.suspension_poll_secs = 0;
            c.cluster.node_timeout_secs = 2;
        })
        .start()
}

/// Lets the nodes hear each other before the test starts.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn users_on_two_nodes_become_contacts_chat_and_see_each_other() {
    let a = cluster();
    let b = a.sibling();
    settle().await;
    let mut alice = a.user("alice").await;
    let mut bob = b.user("bob").await;
    a.befriend(&mut alice, &mut bob).await;
    let sent = alice.send_dm("bob", "hello across nodes").await;
    let m = bob.expect("msg").await;
    assert_eq!(
        (m["body"].as_str(), m["seq"].clone()),
        (Some("hello across nodes"), sent["seq"].clone())
    );
    bob.ok(json!({"type":"msg.ack","conv":m["conv"],"seq":m["seq"],"read":true}))
        .await;
    let r = alice.expect("receipt").await;
    assert_eq!(r["read"], true, "{r}");
    // Presence crosses too: a status, and the roster of a new session.
    bob.ok(json!({"type":"presence.set","status":"away","note":"lunch"}))
        .await;
    let p = alice.expect("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("bob"), Some("away")),
        "{p}"
    );
    let laptop = a.user_on("alice", "laptop").await;
    let roster = &laptop.login_frames.roster["contacts"];
    assert_eq!(roster[0]["user"], "bob", "{roster}");
    assert_eq!(roster[0]["presence"], "away", "{roster}");
    assert_eq!(roster[0]["note"], "lunch", "{roster}");
}

#[tokio::test]
async fn every_session_on_every_node_gets_messages_and_carbons() {
    let a = cluster();
    let b = a.sibling();
    settle().await;
    let mut phone = a.user_on("alice", "phone").await;
    let mut bob = b.user("bob").await;
    a.befriend(&mut phone, &mut bob).await;
    let mut laptop = b.user_on("alice", "laptop").await;
    bob.send_dm("alice", "to both").await;
    for s in [&mut phone, &mut laptop] {
        let m = s.skip_to("msg").await;
        assert_eq!(m["body"], "to both");
    }
    phone.send_dm("bob", "from the phone").await;
    assert_eq!(laptop.skip_to("msg").await["body"], "from the phone");
    assert_eq!(bob.skip_to("msg").await["body"], "from the phone");
}

#[tokio::test]
async fn presence_stays_online_while_any_node_has_a_session() {
    let a = cluster();
    let b = a.sibling();
    settle().await;
    let mut bob = a.user("bob").await;
    let mut alice_a = a.user_on("alice", "phone").await;
    a.befriend(&mut alice_a, &mut bob).await;
    let alice_b = b.user_on("alice", "laptop").await;
    // A second node's session: bob hears nothing new.
    let heard = bob.drain(300).await;
    assert!(
        heard
            .iter()
            .all(|f| f["type"] != "presence" || f["status"] != "offline"),
        "{heard:?}"
    );
    alice_a.close().await;
    let heard = bob.drain(500).await;
    assert!(
        heard.iter().all(|f| f["type"] != "presence"),
        "alice is still online on the other node: {heard:?}"
    );
    alice_b.close().await;
    let p = bob.skip_to("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("alice"), Some("offline")),
        "{p}"
    );
    assert!(p["last_seen"].is_i64(), "{p}");
}

#[tokio::test]
async fn two_senders_on_two_nodes_reach_a_third_in_seq_order_without_gaps() {
    let a = cluster();
    let b = a.sibling();
    let c = a.sibling();
    settle().await;
    let mut alice = a.user("alice").await;
    let mut bob = b.user("bob").await;
    let mut carol = c.user("carol").await;
    alice
        .ok(json!({"type":"room.create","name":"busy","public":true}))
        .await;
    for u in [&mut bob, &mut carol] {
        u.ok(json!({"type":"room.join","name":"busy"})).await;
    }
    const EACH: usize = 150;
    let send = |who: &'static str| {
        (0..EACH).map(move |i| json!({"type":"msg.send","room":"busy","body":format!("{who} {i}")}))
    };
    let (x, y) = futures_util::join!(
        async {
            for f in send("alice") {
                alice.send(f).await;
            }
        },
        async {
            for f in send("bob") {
                bob.send(f).await;
            }
        }
    );
    let _ = (x, y);
    let mut seqs = Vec::new();
    while seqs.len() < 2 * EACH {
        let m = carol.recv().await;
        if m["type"] == "msg" {
            seqs.push(m["seq"].as_u64().expect("seq"));
        }
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "not in order without gaps: {seqs:?}"
    );
}

#[tokio::test]
async fn rooms_fan_out_to_members_on_every_node() {
    let a = cluster();
    let b = a.sibling();
    settle().await;
    let mut owner = a.user("owner").await;
    owner
        .ok(json!({"type":"room.create","name":"lobby","public":true}))
        .await;
    let mut members = Vec::new();
    for (i, node) in [&a, &b, &b, &a, &b].into_iter().enumerate() {
        let mut m = node.user(&format!("member{i}")).await;
        m.ok(json!({"type":"room.join","name":"lobby"})).await;
        members.push(m);
    }
    owner
        .ok(json!({"type":"msg.send","room":"lobby","body":"hi all"}))
        .await;
    for m in &mut members {
        assert_eq!(m.skip_to("msg").await["body"], "hi all");
    }
}

#[tokio::test]
async fn control_changes_hold_on_every_node_with_their_ok() {
    let a = cluster();
    let b = a.sibling();
    settle().await;
    // A device revoked on one node closes its session on the other.
    let mut alice = a.user_on("alice", "desk").await;
    let mut phone = b.user_on("alice", "phone").await;
    alice
        .ok(json!({"type":"device.revoke","device":"phone"}))
        .await;
    let frames = phone.expect_closed().await;
    assert_eq!(
        frames.last().map(|f| f["reason"].clone()),
        Some(json!("device_revoked")),
        "{frames:?}"
    );
    // A kick on one node: the member on the other is out at once.
    let mut mallory = b.user("mallory").await;
    alice
        .ok(json!({"type":"room.create","name":"club","public":true}))
        .await;
    mallory.ok(json!({"type":"room.join","name":"club"})).await;
    alice
        .ok(json!({"type":"room.kick","name":"club","user":"mallory"}))
        .await;
    let left = mallory.skip_to("room.left").await;
    assert_eq!(left["kicked"], true, "{left}");
    let r = mallory
        .request(json!({"type":"msg.send","room":"club","body":"still here?"}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    // A suspension through one node's hub closes sessions on the other,
    // with polling off.
    let mut victim = b.user("victim").await;
    a.suspend("victim").await;
    let frames = victim.expect_closed().await;
    assert!(
        frames
            .iter()
            .any(|f| f["code"] == "account_suspended" || f["reason"] == "account_suspended"),
        "{frames:?}"
    );
}
