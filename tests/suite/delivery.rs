//! docs/PROTOCOL.md "Login: roster, replay, then live" and "Delivery,
//! acknowledgement, history" (direct conversations only).

use std::collections::BTreeSet;
use std::time::Duration;

use im_tests::*;
use serde_json::{json, Value};

use super::server;

fn ack(conv: &str, seq: u64) -> Value {
    json!({"type":"msg.ack","conv":conv,"seq":seq})
}

fn ack_read(conv: &str, seq: u64) -> Value {
    json!({"type":"msg.ack","conv":conv,"seq":seq,"read":true})
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

/// `watcher` sees `who` go offline, so `who`'s sessions are all gone
/// (frames before that are skipped).
async fn wait_offline(watcher: &mut Client, who: &str) {
    loop {
        let p = watcher.recv().await;
        if p["type"] == "presence" && p["user"] == who && p["status"] == "offline" {
            return;
        }
    }
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

/// Sends `n` messages without waiting and then reads the `n` oks.
async fn send_many(c: &mut Client, to: &str, n: usize, prefix: &str) {
    let mut batch = String::new();
    for i in 1..=n {
        batch.push_str(
            &json!({"type":"msg.send","to":to,"body":format!("{prefix}{i}"),"id":format!("{prefix}{i}")})
                .to_string(),
        );
        batch.push('\n');
    }
    c.send_bytes(batch.as_bytes()).await;
    let mut oks = 0;
    while oks < n {
        let v = c.recv().await;
        if v["id"].as_str().is_some_and(|id| id.starts_with(prefix)) {
            assert_eq!(v["type"], "ok", "{v}");
            oks += 1;
        }
    }
}

#[tokio::test]
async fn offline_messages_are_replayed_in_order_before_synced() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    b.send_dm("alice", "one").await;
    b.ok(json!({"type":"msg.send","to":"alice","body":"two","client_id":"c2"}))
        .await;
    b.send_dm("alice", "three").await;
    let mut a = srv.user("alice").await;
    let replay = a.login_frames.replay.clone();
    let history = a.ok(json!({"type":"history","conv":"dm:alice:bob"})).await["messages"].clone();
    // The replay is exactly the stored messages, oldest first.
    assert_eq!(Value::Array(replay.clone()), history);
    assert_eq!(seqs(&replay), [1, 2, 3]);
    assert_eq!(replay[0]["body"], "one");
    assert_eq!(replay[1]["client_id"], "c2");
    assert_eq!(replay[2]["from"], "bob");
    assert_eq!(replay[2]["type"], "msg");
    // Nothing more after synced.
    a.expect_silence(200).await;
    a.ok(ack("dm:alice:bob", 3)).await;
    a.close().await;
    let a = srv.user("alice").await;
    assert!(
        a.login_frames.replay.is_empty(),
        "{:?}",
        a.login_frames.replay
    );
}

#[tokio::test]
async fn only_unacknowledged_messages_are_replayed() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for i in 1..=5 {
        b.send_dm("alice", &format!("m{i}")).await;
        a.expect("msg").await;
    }
    a.ok(ack("dm:alice:bob", 3)).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    let a = srv.user("alice").await;
    assert_eq!(seqs(&a.login_frames.replay), [4, 5]);
}

#[tokio::test]
async fn delivery_is_at_least_once() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    b.send_dm("alice", "seen live").await;
    b.send_dm("alice", "seen live too").await;
    assert_eq!(a.expect("msg").await["seq"], 1);
    assert_eq!(a.expect("msg").await["seq"], 2);
    // Never acknowledged.
    a.close().await;
    wait_offline(&mut b, "alice").await;
    let mut a = srv.user("alice").await;
    assert_eq!(seqs(&a.login_frames.replay), [1, 2]);
    a.ok(ack("dm:alice:bob", 2)).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    let a = srv.user("alice").await;
    assert!(a.login_frames.replay.is_empty());
}

#[tokio::test]
async fn delivery_state_is_per_device() {
    let srv = server().start();
    let mut phone = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut phone, &mut b).await;
    phone.close().await;
    wait_offline(&mut b, "alice").await;
    b.send_dm("alice", "one").await;
    b.send_dm("alice", "two").await;
    let mut phone = srv.user_on("alice", "phone").await;
    assert_eq!(seqs(&phone.login_frames.replay), [1, 2]);
    phone.ok(ack_read("dm:alice:bob", 2)).await;
    phone.close().await;
    wait_offline(&mut b, "alice").await;
    // The phone's ack does not hide them from the laptop.
    let laptop = srv.user_on("alice", "laptop").await;
    assert_eq!(seqs(&laptop.login_frames.replay), [1, 2]);
    let phone = srv.user_on("alice", "phone").await;
    assert!(phone.login_frames.replay.is_empty());
}

#[tokio::test]
async fn an_ack_past_the_last_message_counts_as_the_last() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    b.send_dm("alice", "one").await;
    b.send_dm("alice", "two").await;
    a.ok(ack("dm:alice:bob", 1000)).await;
    b.send_dm("alice", "three").await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    let a = srv.user("alice").await;
    assert_eq!(seqs(&a.login_frames.replay), [3]);
}

#[tokio::test]
async fn cursors_never_move_backwards() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for i in 1..=4 {
        b.send_dm("alice", &format!("m{i}")).await;
    }
    a.ok(ack_read("dm:alice:bob", 3)).await;
    a.ok(ack_read("dm:alice:bob", 1)).await;
    a.ok(ack("dm:alice:bob", 0)).await;
    let list = convs(&mut a).await;
    let e = conv_entry(&list, "dm:alice:bob");
    assert_eq!(e["read_seq"], 3, "{e}");
    assert_eq!(e["unread"], 1, "{e}");
    a.close().await;
    wait_offline(&mut b, "alice").await;
    let a = srv.user("alice").await;
    assert_eq!(seqs(&a.login_frames.replay), [4]);
}

#[tokio::test]
async fn acknowledging_a_conversation_you_are_not_in_is_not_found() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.send_dm("bob", "hi").await;
    let mut c = srv.user("carol").await;
    c.err(ack("dm:alice:bob", 1), "not_found").await;
    c.err(ack_read("dm:alice:bob", 1), "not_found").await;
    c.err(ack("nonsense", 1), "not_found").await;
    // Carol's attempt did not produce receipts.
    a.expect_silence(200).await;
}

#[tokio::test]
async fn sending_moves_the_senders_cursors_when_just_below() {
    let srv = server().start();
    let mut phone = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut phone, &mut b).await;
    phone.send_dm("bob", "one").await;
    phone.send_dm("bob", "two").await;
    let list = convs(&mut phone).await;
    let e = conv_entry(&list, "dm:alice:bob");
    assert_eq!(e["read_seq"], 2, "{e}");
    assert_eq!(e["unread"], 0, "{e}");
    phone.close().await;
    wait_offline(&mut b, "alice").await;
    // The sending device has seen what it sent; another device has not.
    let mut phone = srv.user_on("alice", "phone").await;
    assert!(phone.login_frames.replay.is_empty());
    let laptop = srv.user_on("alice", "laptop").await;
    assert_eq!(seqs(&laptop.login_frames.replay), [1, 2]);
    laptop.close().await;
    // Bob's message 3 is not acknowledged: sending 4 moves nothing.
    b.send_dm("alice", "three").await;
    phone.expect("msg").await;
    phone.send_dm("bob", "four").await;
    let list = convs(&mut phone).await;
    let e = conv_entry(&list, "dm:alice:bob");
    assert_eq!(e["read_seq"], 2, "{e}");
    assert_eq!(e["unread"], 1, "{e}");
    phone.close().await;
    wait_offline(&mut b, "alice").await;
    let phone = srv.user_on("alice", "phone").await;
    assert_eq!(seqs(&phone.login_frames.replay), [3, 4]);
}

#[tokio::test]
async fn replay_goes_most_recently_active_conversation_first() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    srv.befriend(&mut a, &mut b).await;
    srv.befriend(&mut a, &mut c).await;
    srv.befriend(&mut a, &mut d).await;
    a.close().await;
    for x in [&mut b, &mut c, &mut d] {
        wait_offline(x, "alice").await;
    }
    // bob first, then dave, then carol last; bob's conversation is older
    // than dave's even though it has more messages.
    b.send_dm("alice", "b1").await;
    b.send_dm("alice", "b2").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    d.send_dm("alice", "d1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.send_dm("alice", "c1").await;
    c.send_dm("alice", "c2").await;
    let a = srv.user("alice").await;
    let got: Vec<(String, u64)> = a
        .login_frames
        .replay
        .iter()
        .map(|m| {
            (
                m["conv"].as_str().unwrap().to_owned(),
                m["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("dm:alice:carol", 1),
        ("dm:alice:carol", 2),
        ("dm:alice:dave", 1),
        ("dm:alice:bob", 1),
        ("dm:alice:bob", 2),
    ]
    .iter()
    .map(|(c, s)| (c.to_string(), *s))
    .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn replay_is_cut_per_conversation_with_a_gap() {
    let srv = server().config(|c| c.limits.replay_max = 3).start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    for i in 1..=5 {
        b.send_dm("alice", &format!("m{i}")).await;
    }
    let mut a = srv.user("alice").await;
    let r = &a.login_frames.replay;
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(r[0], json!({"type":"gap","conv":"dm:alice:bob","before":3}));
    assert_eq!(seqs(&r[1..]), [3, 4, 5]);
    // The client pages the rest with history.
    let h = a
        .ok(json!({"type":"history","conv":"dm:alice:bob","before":3}))
        .await;
    assert_eq!(seqs(h["messages"].as_array().unwrap()), [1, 2]);
    assert_eq!(h["more"], false);
    // Exactly replay_max pending: no gap.
    a.ok(ack("dm:alice:bob", 2)).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    let a = srv.user("alice").await;
    assert_eq!(seqs(&a.login_frames.replay), [3, 4, 5]);
}

#[tokio::test]
async fn replay_is_cut_in_total_with_gaps() {
    let srv = server()
        .config(|c| {
            c.limits.replay_max = 3;
            c.limits.replay_total_max = 4;
        })
        .start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    srv.befriend(&mut a, &mut b).await;
    srv.befriend(&mut a, &mut c).await;
    srv.befriend(&mut a, &mut d).await;
    a.close().await;
    for x in [&mut b, &mut c, &mut d] {
        wait_offline(x, "alice").await;
    }
    // Oldest: dave (2), then carol (3), newest: bob (3).
    for i in 1..=2 {
        d.send_dm("alice", &format!("d{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 1..=3 {
        c.send_dm("alice", &format!("c{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 1..=3 {
        b.send_dm("alice", &format!("b{i}")).await;
    }
    let a = srv.user("alice").await;
    let r: Vec<Value> = a
        .login_frames
        .replay
        .iter()
        .map(|f| {
            if f["type"] == "gap" {
                f.clone()
            } else {
                json!({"msg": f["conv"], "seq": f["seq"]})
            }
        })
        .collect();
    assert_eq!(
        r,
        vec![
            json!({"msg":"dm:alice:bob","seq":1}),
            json!({"msg":"dm:alice:bob","seq":2}),
            json!({"msg":"dm:alice:bob","seq":3}),
            // One left for carol: her newest, after a gap.
            json!({"type":"gap","conv":"dm:alice:carol","before":3}),
            json!({"msg":"dm:alice:carol","seq":3}),
            // None left for dave: last seq + 1.
            json!({"type":"gap","conv":"dm:alice:dave","before":3}),
        ]
    );
}

#[tokio::test]
async fn read_receipts_go_to_own_other_sessions_and_the_peer() {
    let srv = server().start();
    let mut a1 = srv.user_on("alice", "phone").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    srv.befriend(&mut a1, &mut b1).await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    b1.send_dm("alice", "one").await;
    b1.send_dm("alice", "two").await;
    for c in [&mut a1, &mut a2, &mut b2] {
        c.expect("msg").await;
        c.expect("msg").await;
    }
    let conv = "dm:alice:bob";
    a1.ok(ack_read(conv, 2)).await;
    let want = json!({"type":"receipt","conv":conv,"user":"alice","seq":2,"read":true});
    assert_eq!(a2.recv().await, want);
    assert_eq!(b1.recv().await, want);
    assert_eq!(b2.recv().await, want);
    a1.expect_silence(200).await;
    // No advance, no receipt: the same seq, a lower one, or delivery only.
    a1.ok(ack_read(conv, 2)).await;
    a2.ok(ack_read(conv, 1)).await;
    a2.ok(ack(conv, 2)).await;
    a2.ok(json!({"type":"msg.ack","conv":conv,"seq":2,"read":false}))
        .await;
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        c.expect_silence(150).await;
    }
    // A seq past the last counts as the last.
    b1.send_dm("alice", "three").await;
    a1.expect("msg").await;
    a2.expect("msg").await;
    b2.expect("msg").await;
    a2.ok(ack_read(conv, 99)).await;
    let want = json!({"type":"receipt","conv":conv,"user":"alice","seq":3,"read":true});
    assert_eq!(a1.recv().await, want);
    assert_eq!(b1.recv().await, want);
    assert_eq!(b2.recv().await, want);
    a2.expect_silence(200).await;
    // Read state is per user: every device sees it.
    let list = convs(&mut a1).await;
    assert_eq!(conv_entry(&list, conv)["read_seq"], 3);
    assert_eq!(conv_entry(&list, conv)["unread"], 0);
}

#[tokio::test]
async fn an_offline_sender_learns_how_far_the_peer_read() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for i in 1..=3 {
        a.send_dm("bob", &format!("m{i}")).await;
    }
    a.close().await;
    wait_offline(&mut b, "alice").await;
    b.ok(ack_read("dm:alice:bob", 2)).await;
    let mut a = srv.user("alice").await;
    let list = convs(&mut a).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let e = &list[0];
    assert_eq!(e["conv"], "dm:alice:bob");
    assert_eq!(e["last_seq"], 3);
    assert_eq!(e["read_seq"], 3);
    assert_eq!(e["unread"], 0);
    assert_eq!(e["peer_read_seq"], 2);
    assert_eq!(e["last"]["seq"], 3);
    assert_eq!(e["last"]["body"], "m3");
    assert_eq!(e["last"]["from"], "alice");
    assert_eq!(e["last"]["conv"], "dm:alice:bob");
}

#[tokio::test]
async fn convs_lists_conversations_most_recently_active_first() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut b).await;
    srv.befriend(&mut a, &mut c).await;
    // Direct conversations appear once a message exists.
    assert_eq!(convs(&mut a).await, Vec::<Value>::new());
    b.send_dm("alice", "b1").await;
    b.send_dm("alice", "b2").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.send_dm("carol", "a1").await;
    let list = convs(&mut a).await;
    let order: Vec<&str> = list.iter().map(|e| e["conv"].as_str().unwrap()).collect();
    assert_eq!(order, ["dm:alice:carol", "dm:alice:bob"]);
    let e = &list[0];
    assert_eq!(
        (
            &e["last_seq"],
            &e["read_seq"],
            &e["unread"],
            &e["peer_read_seq"]
        ),
        (&json!(1), &json!(1), &json!(0), &json!(0)),
        "{e}"
    );
    assert_eq!(e["last"]["body"], "a1");
    let e = &list[1];
    // Bob's own sends moved his read cursor.
    assert_eq!(
        (
            &e["last_seq"],
            &e["read_seq"],
            &e["unread"],
            &e["peer_read_seq"]
        ),
        (&json!(2), &json!(0), &json!(2), &json!(2)),
        "{e}"
    );
    assert_eq!(e["last"]["body"], "b2");
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.send_dm("alice", "b3").await;
    // Alice answers without reading: her own message is not unread.
    a.send_dm("bob", "a-to-b").await;
    let list = convs(&mut a).await;
    let order: Vec<&str> = list.iter().map(|e| e["conv"].as_str().unwrap()).collect();
    assert_eq!(order, ["dm:alice:bob", "dm:alice:carol"]);
    assert_eq!(list[0]["last_seq"], 4);
    assert_eq!(list[0]["unread"], 3);
    a.ok(ack_read("dm:alice:bob", 2)).await;
    let list = convs(&mut a).await;
    assert_eq!(list[0]["read_seq"], 2);
    assert_eq!(list[0]["unread"], 1);
    // The other side of each conversation.
    let list = convs(&mut b).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            &list[0]["last_seq"],
            &list[0]["read_seq"],
            &list[0]["unread"],
            &list[0]["peer_read_seq"]
        ),
        (&json!(4), &json!(3), &json!(1), &json!(2)),
        "{}",
        list[0]
    );
    let list = convs(&mut c).await;
    assert_eq!(
        (
            &list[0]["last_seq"],
            &list[0]["read_seq"],
            &list[0]["unread"],
            &list[0]["peer_read_seq"]
        ),
        (&json!(1), &json!(0), &json!(1), &json!(1)),
        "{}",
        list[0]
    );
}

#[tokio::test]
async fn history_pages_backwards() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    send_many(&mut a, "bob", 250, "h").await;
    let conv = "dm:alice:bob";
    let page = |before: Option<u64>, limit: Option<i64>| {
        let mut f = json!({"type":"history","conv":conv});
        if let Some(b) = before {
            f["before"] = json!(b);
        }
        if let Some(l) = limit {
            f["limit"] = json!(l);
        }
        f
    };
    let range = |lo: u64, hi: u64| (lo..=hi).collect::<Vec<_>>();
    // Default: the newest 50.
    let r = b.ok(page(None, None)).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(201, 250));
    assert_eq!(r["more"], true);
    let m = &r["messages"][0];
    assert_eq!(m["type"], "msg");
    assert_eq!(m["conv"], conv);
    assert_eq!(m["from"], "alice");
    assert_eq!(m["body"], "h201");
    assert!(m["ts"].is_i64());
    assert!(m.get("client_id").is_none());
    // Above 200 is served as 200.
    let r = b.ok(page(None, Some(1000))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(51, 250));
    assert_eq!(r["more"], true);
    let r = b.ok(page(Some(101), Some(50))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(51, 100));
    assert_eq!(r["more"], true);
    let r = b.ok(page(Some(51), Some(200))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(1, 50));
    assert_eq!(r["more"], false);
    let r = b.ok(page(Some(4), Some(3))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(1, 3));
    assert_eq!(r["more"], false);
    let r = b.ok(page(Some(5), Some(3))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(2, 4));
    assert_eq!(r["more"], true);
    let r = b.ok(page(Some(1), None)).await;
    assert_eq!(r["messages"], json!([]));
    assert_eq!(r["more"], false);
    let r = b.ok(page(Some(10_000), Some(5))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), range(246, 250));
    let r = a.ok(page(None, Some(1))).await;
    assert_eq!(seqs(r["messages"].as_array().unwrap()), [250]);
    // Below 1 is a bad request.
    b.err(page(None, Some(0)), "bad_request").await;
    b.err(page(None, Some(-5)), "bad_request").await;
}

#[tokio::test]
async fn a_history_page_stops_early_past_about_one_mib() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let body = "w".repeat(16_000);
    for _ in 0..100 {
        a.send_dm("bob", &body).await;
    }
    let r = b
        .ok(json!({"type":"history","conv":"dm:alice:bob","limit":100}))
        .await;
    let got = seqs(r["messages"].as_array().unwrap());
    assert!(!got.is_empty() && got.len() < 100, "{} messages", got.len());
    // The newest ones, contiguous, and the client is told there is more.
    assert_eq!(*got.last().unwrap(), 100);
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(r["more"], true);
    let bytes = r.to_string().len();
    assert!(
        bytes > 512 * 1024 && bytes < 2 * 1024 * 1024,
        "{bytes} bytes"
    );
}

#[tokio::test]
async fn history_of_a_short_conversation() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let ok = a
        .ok(json!({"type":"msg.send","to":"bob","body":"hi","client_id":"x1"}))
        .await;
    let r = b
        .ok(json!({"type":"history","conv":"dm:alice:bob","limit":200}))
        .await;
    assert_eq!(
        r["messages"],
        json!([{"type":"msg","conv":"dm:alice:bob","seq":1,"from":"alice","body":"hi","ts":ok["ts"],"client_id":"x1"}])
    );
    assert_eq!(r["more"], false);
}

#[tokio::test]
async fn history_is_not_found_for_non_members() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.send_dm("bob", "private").await;
    srv.register("dave").await;
    let mut c = srv.user("carol").await;
    // Existing or not, the answer is the same.
    let e1 = c
        .err(json!({"type":"history","conv":"dm:alice:bob"}), "not_found")
        .await;
    let e2 = c
        .err(json!({"type":"history","conv":"dm:bob:dave"}), "not_found")
        .await;
    assert_eq!(e1["message"], e2["message"]);
    c.err(json!({"type":"history","conv":"nonsense"}), "not_found")
        .await;
    c.err(json!({"type":"history","conv":""}), "not_found")
        .await;
}

#[tokio::test]
async fn replay_and_live_delivery_together_lose_nothing() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut b).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    send_many(&mut b, "alice", 20, "pre").await;
    // Bob keeps sending, and changing presence, while alice logs in.
    let mut batch = String::new();
    for i in 1..=60 {
        batch.push_str(
            &json!({"type":"msg.send","to":"alice","body":format!("live{i}"),"id":format!("live{i}")})
                .to_string(),
        );
        batch.push('\n');
        if i % 10 == 0 {
            let status = if i % 20 == 0 { "online" } else { "away" };
            batch.push_str(&json!({"type":"presence.set","status":status}).to_string());
            batch.push('\n');
        }
    }
    b.send_bytes(batch.as_bytes()).await;
    // Carol asks and withdraws, again and again, meanwhile.
    let mut churn = String::new();
    for _ in 0..10 {
        churn.push_str("{\"type\":\"contact.add\",\"user\":\"alice\"}\n");
        churn.push_str("{\"type\":\"contact.remove\",\"user\":\"alice\"}\n");
    }
    c.send_bytes(churn.as_bytes()).await;
    // The login helper fails on anything but msg and gap before synced.
    let mut a = srv.user("alice").await;
    let replayed: Vec<u64> = seqs(&a.login_frames.replay);
    assert!(
        replayed.windows(2).all(|w| w[0] < w[1]),
        "replay out of order: {replayed:?}"
    );
    let mut seen: BTreeSet<u64> = replayed.iter().copied().collect();
    let mut live = Vec::new();
    while seen.len() < 80 {
        let v = a.recv().await;
        match v["type"].as_str() {
            Some("msg") => {
                let s = v["seq"].as_u64().unwrap();
                live.push(s);
                seen.insert(s);
            }
            Some("presence" | "contact.request" | "contact.removed") => {}
            _ => panic!("unexpected {v}"),
        }
    }
    assert_eq!(seen, (1..=80).collect::<BTreeSet<_>>());
    assert!(
        live.windows(2).all(|w| w[0] < w[1]),
        "live messages out of order: {live:?}"
    );
}

#[tokio::test]
async fn an_acknowledged_send_survives_a_server_restart() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    b.close().await;
    wait_offline(&mut a, "bob").await;
    let ok1 = a.send_dm("bob", "before the restart").await;
    a.send_dm("bob", "also before").await;
    let srv = srv.restart();
    a.expect_closed().await;
    let b = srv.user("bob").await;
    let r = &b.login_frames.replay;
    assert_eq!(seqs(r), [1, 2]);
    assert_eq!(r[0]["body"], "before the restart");
    assert_eq!(r[0]["ts"], ok1["ts"]);
    assert_eq!(
        b.login_frames.roster["contacts"][0]["user"], "alice",
        "contacts survive too"
    );
}

#[tokio::test]
async fn live_events_during_a_stalled_replay_wait_for_synced() {
    // A replay far bigger than the socket buffers and the outbound queue,
    // read by nobody for a while, stalls half-way; live events meanwhile
    // must be held until after `synced`.
    let srv = server()
        .config(|c| {
            c.limits.max_body = 60_000;
            c.limits.replay_max = 10_000;
            c.limits.replay_total_max = 10_000;
            c.limits.outbound_queue = 16;
            c.limits.max_in_flight = 8;
        })
        .start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut b).await;
    srv.befriend(&mut a, &mut c).await;
    a.close().await;
    wait_offline(&mut b, "alice").await;
    wait_offline(&mut c, "alice").await;
    let body = "r".repeat(60_000);
    for i in 0..200 {
        b.send(json!({"type":"msg.send","to":"alice","body":body,"id":format!("big{i}")}))
            .await;
        let r = b.recv().await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    let mut a = srv.client().await;
    a.send(json!({"type":"login","username":"alice","password":PASSWORD,"id":"L"}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Alice is online (presence) but still being replayed to.
    assert_eq!(c.expect("presence").await["status"], "online");
    c.ok(json!({"type":"presence.set","status":"away","note":"live"}))
        .await;
    for i in 1..=3 {
        c.send_dm("alice", &format!("live{i}")).await;
    }
    let ok = a.recv().await;
    assert_eq!(
        (&ok["type"], &ok["id"]),
        (&json!("ok"), &json!("L")),
        "{ok}"
    );
    assert_eq!(a.recv().await["type"], "roster");
    let mut replayed = 0;
    loop {
        let v = a.recv().await;
        match v["type"].as_str() {
            Some("synced") => break,
            Some("msg") => {
                assert_eq!(v["conv"], "dm:alice:bob", "a live message in the replay");
                replayed += 1;
            }
            Some("gap") => {}
            _ => panic!("before synced, only msg and gap: got {v}"),
        }
    }
    assert_eq!(replayed, 200);
    // Then the live events, presence and carol's messages in order.
    let mut live = Vec::new();
    while live.len() < 4 {
        live.push(a.recv().await);
    }
    assert!(
        live.contains(&json!({"type":"presence","user":"carol","status":"away","note":"live"})),
        "{live:?}"
    );
    let bodies: Vec<&Value> = live
        .iter()
        .filter(|v| v["type"] == "msg")
        .map(|v| &v["body"])
        .collect();
    assert_eq!(bodies, [&json!("live1"), &json!("live2"), &json!("live3")]);
}

#[tokio::test]
async fn a_delivery_ack_batched_with_a_read_ack_does_not_mark_more_as_read() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for i in 0..10 {
        a.send_dm("bob", &format!("m{i}")).await;
    }
    // Pipelined so that both acks tend to share one write.
    b.send(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":10,"id":"d"}))
        .await;
    b.send(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":3,"read":true,"id":"r"}))
        .await;
    let mut oks = 0;
    while oks < 2 {
        let f = b.recv().await;
        if f["type"] == "ok" {
            oks += 1;
        }
    }
    let convs = b.ok(json!({"type":"convs"})).await;
    assert_eq!(convs["convs"][0]["read_seq"], 3, "{convs}");
    assert_eq!(convs["convs"][0]["unread"], 7, "{convs}");
}
