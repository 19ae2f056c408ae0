//! Several server processes sharing one database: a change made through
//! one (contacts, blocks, room kicks and bans, device revocations, password
//! changes) takes effect on the others within `auth.change_poll_ms`
//! (500 ms by default), and a send pipelined right behind the change's `ok`
//! is already refused: the store checks the sender's rights inside the
//! commit. Each `TestServer::sibling` is a server of its own on the same
//! SQLite file, as another process would be.

use std::time::{Duration, Instant};

use im_tests::*;
use serde_json::{json, Value};

fn two_servers() -> (TestServer, TestServer) {
    let one = TestServer::builder().store(StoreKind::Sqlite).start();
    let two = one.sibling();
    (one, two)
}

/// Sends `frame` every 100 ms until its reply satisfies `done` (within 2 s,
/// the promise for changes made elsewhere); returns the last reply.
async fn until(c: &mut Client, frame: Value, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let r = c.request(frame.clone()).await;
        if done(&r) || started.elapsed() > Duration::from_secs(2) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn code(r: &Value) -> &str {
    r["code"].as_str().unwrap_or("ok")
}

#[tokio::test]
async fn a_block_on_one_process_stops_messages_on_another() {
    let (one, two) = two_servers();
    let mut alice = one.user("alice").await;
    let mut bob = two.user("bob").await;
    alice.ok(json!({"type":"contact.add","user":"bob"})).await;
    // Bob's process learns of the request: his accept works there.
    let r = until(
        &mut bob,
        json!({"type":"contact.accept","user":"alice"}),
        |r| r["type"] == "ok",
    )
    .await;
    assert_eq!(r["type"], "ok", "{r}");
    // Alice's process sees the accept: her send is let through at once
    // (a refusal is checked against the store first).
    alice.send_dm("bob", "hello").await;
    bob.send_dm("alice", "hi").await;
    alice.ok(json!({"type":"contact.block","user":"bob"})).await;
    let r = until(
        &mut bob,
        json!({"type":"msg.send","to":"alice","body":"still there?"}),
        |r| code(r) == "forbidden",
    )
    .await;
    assert_eq!(code(&r), "forbidden", "{r}");
}

#[tokio::test]
async fn a_kick_on_one_process_stops_room_messages_on_another() {
    let (one, two) = two_servers();
    let mut owner = one.user("olga").await;
    let mut mallory = two.user("mallory").await;
    owner.ok(json!({"type":"room.create","name":"club"})).await;
    mallory.ok(json!({"type":"room.join","name":"club"})).await;
    mallory
        .ok(json!({"type":"msg.send","room":"club","body":"hi"}))
        .await;
    owner
        .ok(json!({"type":"room.kick","name":"club","user":"mallory"}))
        .await;
    let r = until(
        &mut mallory,
        json!({"type":"msg.send","room":"club","body":"still here"}),
        |r| r["type"] == "error",
    )
    .await;
    assert_eq!(code(&r), "forbidden", "{r}");
    mallory
        .err(json!({"type":"room.join","name":"club"}), "forbidden")
        .await;
}

#[tokio::test]
async fn a_device_revoked_on_one_process_is_closed_on_another() {
    let (one, two) = two_servers();
    let mut laptop = one.user_on("alice", "laptop").await;
    let mut phone = two.user_on("alice", "phone").await;
    laptop
        .ok(json!({"type":"device.revoke","device":"phone"}))
        .await;
    let frames = phone.expect_closed_within(Duration::from_secs(2)).await;
    assert_eq!(
        frames.last(),
        Some(&json!({"type":"closing","reason":"device_revoked"})),
        "{frames:?}"
    );
    // A new login of that device is not hit by the old revocation.
    let mut again = two.user_on("alice", "phone").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(again.request(json!({"type":"ping"})).await["type"], "pong");
}

#[tokio::test]
async fn a_password_change_on_one_process_closes_sessions_on_another() {
    let (one, two) = two_servers();
    let mut mine = one.user_on("alice", "laptop").await;
    let mut other = two.user_on("alice", "phone").await;
    let mut same_device = two.user_on("alice", "laptop").await;
    mine.ok(json!({"type":"password.change","old":PASSWORD,"new":"new password 1"}))
        .await;
    for c in [&mut other, &mut same_device] {
        let frames = c.expect_closed_within(Duration::from_secs(2)).await;
        assert_eq!(
            frames.last(),
            Some(&json!({"type":"closing","reason":"password_changed"})),
            "{frames:?}"
        );
    }
    assert_eq!(mine.request(json!({"type":"ping"})).await["type"], "pong");
}

/// Two processes that never read the change log during the test: only the
/// store's own check, inside the commit, can refuse.
fn two_deaf_servers() -> (TestServer, TestServer) {
    let one = TestServer::builder()
        .store(StoreKind::Sqlite)
        .config(|c| c.auth.change_poll_ms = 600_000)
        .start();
    let two = one.sibling();
    (one, two)
}

/// The bodies of the last messages of `conv`, as `c` reads them.
async fn bodies(c: &mut Client, conv: &str) -> Vec<String> {
    let h = c.ok(json!({"type":"history","conv":conv,"limit":10})).await;
    h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

/// alice on `one` and bob on `two` (and on `one`, as `laptop`), made
/// contacts on `one`; bob's first message tells `two` (which reads the
/// contact from the store when its contact book has no answer). Returns
/// (alice, bob, bob on `one`).
async fn contacts_across(one: &TestServer, two: &TestServer) -> (Client, Client, Client) {
    let mut alice = one.user("alice").await;
    let mut bob = two.user("bob").await;
    let mut bob_home = one.user_on("bob", "laptop").await;
    alice.ok(json!({"type":"contact.add","user":"bob"})).await;
    bob_home
        .ok(json!({"type":"contact.accept","user":"alice"}))
        .await;
    bob.send_dm("alice", "hi").await;
    (alice, bob, bob_home)
}

#[tokio::test]
async fn sends_right_behind_a_change_on_another_process_are_refused() {
    let (one, two) = two_deaf_servers();
    let (mut alice, mut bob, _bob_home) = contacts_across(&one, &two).await;
    // A block on one process: the other lets nothing more through.
    alice.ok(json!({"type":"contact.block","user":"bob"})).await;
    let r = bob
        .request(json!({"type":"msg.send","to":"alice","body":"x"}))
        .await;
    assert_eq!(code(&r), "forbidden", "{r}");
    alice
        .ok(json!({"type":"contact.unblock","user":"bob"}))
        .await;
    // A contact removal likewise (the policy asks for a contact).
    alice
        .ok(json!({"type":"contact.remove","user":"bob"}))
        .await;
    let r = bob
        .request(json!({"type":"msg.send","to":"alice","body":"y"}))
        .await;
    assert_eq!(code(&r), "forbidden", "{r}");
    assert_eq!(bodies(&mut alice, "dm:alice:bob").await, ["hi"]);

    // A kick: the member on the other process cannot post behind its ok.
    let mut olga = one.user("olga").await;
    let mut mallory = two.user("mallory").await;
    olga.ok(json!({"type":"room.create","name":"club"})).await;
    mallory.ok(json!({"type":"room.join","name":"club"})).await;
    mallory
        .ok(json!({"type":"msg.send","room":"club","body":"hi"}))
        .await;
    olga.ok(json!({"type":"room.kick","name":"club","user":"mallory"}))
        .await;
    let r = mallory
        .request(json!({"type":"msg.send","room":"club","body":"still here"}))
        .await;
    assert_eq!(code(&r), "forbidden", "{r}");

    // A device revocation: the revoked session's next send is refused.
    let mut laptop = one.user_on("carol", "laptop").await;
    let mut phone = two.user_on("carol", "phone").await;
    phone.ok(json!({"type":"room.join","name":"club"})).await;
    laptop
        .ok(json!({"type":"device.revoke","device":"phone"}))
        .await;
    let r = phone
        .request(json!({"type":"msg.send","room":"club","body":"from a revoked phone"}))
        .await;
    assert_eq!(code(&r), "unauthenticated", "{r}");
    assert_eq!(bodies(&mut olga, "room:club").await, ["hi"]);
}

#[tokio::test]
async fn a_send_refused_behind_a_block_does_not_share_its_file() {
    let (one, two) = two_deaf_servers();
    let (mut alice, mut bob, mut bob_home) = contacts_across(&one, &two).await;
    let file = bob
        .upload("note.txt", Some("text/plain"), b"for alice's eyes")
        .await;
    // The block is made on the other process: bob's process lets the send
    // through to the store, which refuses it.
    alice.ok(json!({"type":"contact.block","user":"bob"})).await;
    let r = bob
        .request(json!({"type":"msg.send","to":"alice","body":"here","attachment":file}))
        .await;
    assert_eq!(code(&r), "forbidden", "{r}");
    // Not sent, so not shared: alice cannot read it.
    let r = alice
        .request(json!({"type":"file.read","file":file,"offset":0,"len":100}))
        .await;
    assert_eq!(code(&r), "not_found", "{r}");
    // Sent for real later (contacts again, from bob's session on alice's
    // process, which has seen all this), it is.
    alice
        .ok(json!({"type":"contact.unblock","user":"bob"}))
        .await;
    alice.ok(json!({"type":"contact.add","user":"bob"})).await;
    bob_home
        .ok(json!({"type":"contact.accept","user":"alice"}))
        .await;
    bob_home
        .ok(json!({"type":"msg.send","to":"alice","body":"again","attachment":file}))
        .await;
    assert_eq!(alice.download(&file).await, b"for alice's eyes");
}
