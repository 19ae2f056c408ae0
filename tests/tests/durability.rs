//! Nothing a user was told is stored may be lost: the real example server
//! on SQLite is killed with SIGKILL mid-stream and restarted.

use std::collections::BTreeMap;
use std::time::Duration;

use im_tests::process::{admin, ServerProcess};
use im_tests::*;
use serde_json::{json, Value};

const N: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = ServerProcess::start(dir.path(), &[]);
    let mut a = Client::connect(srv.addr).await;
    a.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    let mut b = Client::connect(srv.addr).await;
    b.ok(json!({"type":"register","username":"bob","password":PASSWORD}))
        .await;
    a.login("alice", PASSWORD).await;
    b.login("bob", PASSWORD).await;
    let token = a.token.clone().expect("token");
    a.ok(json!({"type":"contact.add","user":"bob"})).await;
    b.expect("contact.request").await;
    b.ok(json!({"type":"contact.accept","user":"alice"})).await;
    // A first message, acknowledged and read by Bob before the crash.
    let first = a.send_dm("bob", "before").await;
    assert_eq!(first["seq"], 1);
    b.ok(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":1,"read":true}))
        .await;
    b.ok(json!({"type":"logout"})).await;

    // Pipeline N sends and kill the server once half are acknowledged.
    for i in 0..N {
        a.send(json!({"type":"msg.send","to":"bob","body":format!("m{i}"),"client_id":format!("c-{i}"),"id":format!("s{i}")}))
            .await;
    }
    let mut acked: BTreeMap<usize, (u64, i64)> = BTreeMap::new();
    while acked.len() < N / 2 {
        let v = a.recv().await;
        if v["type"] == "ok" {
            let i: usize = v["id"]
                .as_str()
                .and_then(|s| s[1..].parse().ok())
                .expect("id");
            acked.insert(
                i,
                (
                    v["seq"].as_u64().expect("seq"),
                    v["ts"].as_i64().expect("ts"),
                ),
            );
        }
    }
    srv.kill();
    // Whatever else arrived before the socket died was acknowledged too.
    while let Some(v) = a.try_recv(Duration::from_millis(200)).await {
        if v["type"] == "ok" {
            let i: usize = v["id"]
                .as_str()
                .and_then(|s| s[1..].parse().ok())
                .expect("id");
            acked.insert(
                i,
                (
                    v["seq"].as_u64().expect("seq"),
                    v["ts"].as_i64().expect("ts"),
                ),
            );
        }
    }

    let srv = ServerProcess::start(dir.path(), &[]);
    // The account, its token and the contact survived.
    let mut a = Client::connect(srv.addr).await;
    let login = a.login_token("alice", &token).await;
    assert_eq!(
        login.roster["contacts"],
        json!([{"user":"bob","state":"mutual","presence":"offline","last_seen":login.roster["contacts"][0]["last_seen"]}])
    );
    assert!(login.roster["contacts"][0]["last_seen"].is_i64());

    // Every acknowledged message is in history with its seq; seqs are gapless.
    let mut history: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut q = json!({"type":"history","conv":"dm:alice:bob","limit":200});
        if let Some(b) = before {
            q["before"] = json!(b);
        }
        let page = a.ok(q).await;
        let msgs = page["messages"].as_array().expect("messages").clone();
        before = msgs.first().and_then(|m| m["seq"].as_u64());
        history.splice(0..0, msgs);
        if page["more"] != true {
            break;
        }
    }
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gapless, no duplicates"
    );
    let by_seq: BTreeMap<u64, &Value> = history
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m))
        .collect();
    for (i, (seq, ts)) in &acked {
        let m = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged message {i} (seq {seq}) lost"));
        assert_eq!(m["body"], format!("m{i}"));
        assert_eq!(m["client_id"], format!("c-{i}"));
        assert_eq!(m["ts"], json!(ts));
    }

    // Retrying every send: acknowledged ones return their original seq and
    // ts; the rest are stored now, continuing the numbering.
    let mut last = *seqs.last().unwrap_or(&0);
    for i in 0..N {
        let r = a
            .ok(json!({"type":"msg.send","to":"bob","body":format!("m{i}"),"client_id":format!("c-{i}")}))
            .await;
        let seq = r["seq"].as_u64().unwrap();
        match acked.get(&i) {
            Some((s, ts)) => {
                assert_eq!(seq, *s, "retry of acknowledged c-{i}");
                assert_eq!(r["ts"], json!(ts));
            }
            None if seq > last => {
                assert_eq!(seq, last + 1, "new seqs continue without a gap");
                last = seq;
            }
            None => {} // committed before the crash, its ok lost: original seq
        }
    }

    // Bob's cursors survived: his replay starts after the message he acked,
    // and holds every message exactly once, in order.
    let mut b = Client::connect(srv.addr).await;
    let login = b.login("bob", PASSWORD).await;
    let replayed: Vec<u64> = login
        .replay
        .iter()
        .filter(|f| f["type"] == "msg")
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, (2..=last).collect::<Vec<_>>());
    let convs = b.ok(json!({"type":"convs"})).await;
    assert_eq!(convs["convs"][0]["read_seq"], 1);
    assert_eq!(convs["convs"][0]["unread"], json!(last - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_manages_accounts_while_the_server_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = ServerProcess::start(dir.path(), &[]);
    assert!(admin(dir.path(), &["user", "add", "Carol"], "password123\n").contains("carol"));
    let mut c = Client::connect(srv.addr).await;
    c.login("carol", "password123").await;
    let listed = admin(dir.path(), &["user", "list"], "");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("carol") && l.contains("good")),
        "{listed}"
    );

    // Suspension from another process closes the live session promptly.
    admin(dir.path(), &["user", "suspend", "carol"], "");
    let frames = c.expect_closed_within(Duration::from_secs(5)).await;
    assert!(
        frames.iter().any(|f| f["code"] == "account_suspended"),
        "{frames:?}"
    );
    let mut c = Client::connect(srv.addr).await;
    c.err(
        json!({"type":"login","username":"carol","password":"password123"}),
        "account_suspended",
    )
    .await;
    let listed = admin(dir.path(), &["user", "list"], "");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("carol") && l.contains("suspended")),
        "{listed}"
    );

    admin(dir.path(), &["user", "reinstate", "carol"], "");
    c.login("carol", "password123").await;
    drop(srv);

    // And it all survives a restart.
    let srv = ServerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(srv.addr).await;
    c.login("carol", "password123").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_their_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = ServerProcess::start(dir.path(), &[]);
    let mut a = Client::connect(srv.addr).await;
    a.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    a.login("alice", PASSWORD).await;
    let mut b = Client::connect(srv.addr).await;
    b.ok(json!({"type":"register","username":"bob","password":PASSWORD}))
        .await;
    b.login("bob", PASSWORD).await;
    a.ok(json!({"type":"room.create","name":"rust","topic":"Rust talk"}))
        .await;
    a.ok(json!({"type":"room.create","name":"secret","public":false}))
        .await;
    b.ok(json!({"type":"room.join","name":"rust"})).await;
    b.ok(json!({"type":"logout"})).await;
    a.ok(json!({"type":"room.topic","name":"rust","topic":"Rust, mostly"}))
        .await;
    let mut acked = BTreeMap::new();
    for i in 0..100 {
        let r = a
            .ok(json!({"type":"msg.send","room":"rust","body":format!("r{i}"),"client_id":format!("r-{i}")}))
            .await;
        acked.insert(i, r["seq"].as_u64().unwrap());
    }
    srv.kill();

    let srv = ServerProcess::start(dir.path(), &[]);
    let mut b = Client::connect(srv.addr).await;
    let login = b.login("bob", PASSWORD).await;
    let replayed: Vec<u64> = login
        .replay
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!(
        replayed,
        (1..=100).collect::<Vec<_>>(),
        "bob's replay of the room"
    );
    let members = b.ok(json!({"type":"room.members","name":"rust"})).await;
    let mut roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("alice".into(), "owner".into()),
            ("bob".into(), "member".into())
        ]
    );
    let list = b.ok(json!({"type":"room.list"})).await;
    assert_eq!(
        list["rooms"],
        json!([{"name":"rust","topic":"Rust, mostly","members":2,"online":1}])
    );
    let mut a = Client::connect(srv.addr).await;
    a.login("alice", PASSWORD).await;
    for (i, seq) in acked {
        let r = a
            .ok(json!({"type":"msg.send","room":"rust","body":format!("r{i}"),"client_id":format!("r-{i}")}))
            .await;
        assert_eq!(r["seq"].as_u64(), Some(seq), "retry of r-{i}");
    }
    let h = a
        .ok(json!({"type":"history","conv":"room:rust","limit":200}))
        .await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(100));
    // The private room is still private and still Alice's.
    b.err(json!({"type":"room.join","name":"secret"}), "not_found")
        .await;
}
