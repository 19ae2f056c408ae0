//! Graceful shutdown of the real example server on SIGTERM: requests
//! already sent are answered (a message waiting for its commit gets its
//! `ok`), every client gets `closing` `shutdown` (over WebSocket the close
//! frame says so too), everyone is marked offline, the process exits
//! within `limits.shutdown_grace_secs`, and no acknowledged message is
//! lost.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use im_tests::process::ServerProcess;
use im_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const SENDS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_what_was_asked_tells_everyone_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = ServerProcess::start(dir.path(), &[]);
    let mut alice = Client::connect(srv.addr).await;
    let mut bob = Client::connect(srv.addr).await;
    for (c, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        c.ok(json!({"type":"register","username":name,"password":PASSWORD}))
            .await;
        c.login(name, PASSWORD).await;
    }
    alice.ok(json!({"type":"contact.add","user":"bob"})).await;
    bob.expect("contact.request").await;
    bob.ok(json!({"type":"contact.accept","user":"alice"}))
        .await;
    let mut carol = Client::connect_ws(srv.http).await;
    carol
        .ok(json!({"type":"register","username":"carol","password":PASSWORD}))
        .await;
    carol.login("carol", PASSWORD).await;

    // Alice pipelines her sends; the signal arrives while they are in
    // flight.
    for i in 0..SENDS {
        alice
            .send(json!({"type":"msg.send","id":i,"to":"bob","body":format!("m{i}"),"client_id":format!("c{i}")}))
            .await;
    }
    srv.signal("TERM");
    let signalled = Instant::now();

    // Alice: every reply she gets is an ok or `unavailable`-free refusal,
    // then `closing` `shutdown`, then the close.
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut last = None;
    loop {
        match alice.recv_or_closed(Duration::from_secs(15)).await {
            Some(Some(v)) => {
                if v["type"] == "ok" {
                    let i = v["id"].as_u64().unwrap();
                    acked.push((v["seq"].as_u64().unwrap(), format!("m{i}")));
                }
                last = Some(v);
            }
            Some(None) => break,
            None => panic!("no close within 15 s of SIGTERM"),
        }
    }
    assert_eq!(
        last,
        Some(json!({"type":"closing","reason":"shutdown"})),
        "alice's last frame"
    );
    assert!(!acked.is_empty(), "no send was answered before the close");
    // Bob is told too.
    let mut bob_last = None;
    while let Some(Some(v)) = bob.recv_or_closed(Duration::from_secs(15)).await {
        bob_last = Some(v);
    }
    assert_eq!(
        bob_last,
        Some(json!({"type":"closing","reason":"shutdown"}))
    );
    // Carol, over WebSocket: the frame, then a close frame with the reason.
    let (mut closing, mut close) = (None, None);
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(15), carol.ws().next()).await {
        match m {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "closing" {
                    closing = v["reason"].as_str().map(str::to_owned);
                }
            }
            Ok(Message::Close(f)) => {
                close = f.map(|f| f.reason.to_string());
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(closing.as_deref(), Some("shutdown"));
    assert_eq!(close.as_deref(), Some("shutdown"));

    let status = srv
        .wait_exit(Duration::from_secs(10))
        .expect("exited within 10 s");
    assert!(status.success(), "{status:?}");
    eprintln!(
        "exited {:?} after SIGTERM, {} of {SENDS} sends acknowledged",
        signalled.elapsed(),
        acked.len()
    );
    assert!(signalled.elapsed() < Duration::from_secs(11));
    drop(srv);

    // After a restart: every acknowledged message is there, in order, and
    // Bob shows as offline with a last_seen.
    let srv = ServerProcess::start(dir.path(), &[]);
    let mut alice = Client::connect(srv.addr).await;
    let login = alice.login("alice", PASSWORD).await;
    let bob_entry = login.roster["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"] == "bob")
        .cloned()
        .unwrap();
    assert_eq!(bob_entry["presence"], "offline", "{bob_entry}");
    assert!(bob_entry["last_seen"].as_i64().is_some(), "{bob_entry}");
    let mut stored = std::collections::HashMap::new();
    let mut before: Option<u64> = None;
    loop {
        let mut req = json!({"type":"history","conv":"dm:alice:bob","limit":200});
        if let Some(b) = before {
            req["before"] = json!(b);
        }
        let page = alice.ok(req).await;
        let msgs = page["messages"].as_array().unwrap();
        for m in msgs {
            stored.insert(
                m["seq"].as_u64().unwrap(),
                m["body"].as_str().unwrap().to_owned(),
            );
        }
        if page["more"] != true || msgs.is_empty() {
            break;
        }
        before = msgs[0]["seq"].as_u64();
    }
    for (seq, body) in &acked {
        assert_eq!(stored.get(seq), Some(body), "acknowledged seq {seq} lost");
    }
}
