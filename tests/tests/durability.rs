//! Nothing a user was told is stored may be lost: the real example server
//! on SQLite is killed with SIGKILL while sends are still in flight, then
//! restarted, and the client retries every send it got no `ok` for, as the
//! protocol tells clients to.
//!
//! A crash only proves something when some sends were unanswered at that
//! moment, so each test checks that, and tries again with more sends (on
//! a fresh server) when the machine was too fast; it never passes without.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use im_tests::process::{admin, ServerProcess};
use im_tests::*;
use serde_json::{json, Value};

/// How many sends each attempt pipelines before the kill.
const ATTEMPTS: [usize; 3] = [400, 1600, 6400];

/// Whole replays, however many sends an attempt needed.
const ENV: [(&str, &str); 4] = [
    ("IM__LIMITS__REPLAY_MAX", "20000"),
    ("IM__LIMITS__REPLAY_TOTAL_MAX", "20000"),
    // Thousands of sends pipelined on one connection.
    ("IM__LIMITS__FRAMES_PER_SEC", "1000000"),
    ("IM__LIMITS__FRAMES_BURST", "1000000"),
];

/// Where the sends go. Send `i` has body `{prefix}{i}`, client_id
/// `{prefix}-{i}` and request id `s{i}`.
struct Target {
    /// `to` or `room`.
    field: &'static str,
    name: &'static str,
    conv: &'static str,
    prefix: &'static str,
}

const DM: Target = Target {
    field: "to",
    name: "bob",
    conv: "dm:alice:bob",
    prefix: "m",
};

const ROOM: Target = Target {
    field: "room",
    name: "rust",
    conv: "room:rust",
    prefix: "r",
};

impl Target {
    fn body(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    fn client_id(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// Send `i`, without a request id.
    fn send(&self, i: usize) -> Value {
        let mut f = json!({"type":"msg.send","body":self.body(i),"client_id":self.client_id(i)});
        f[self.field] = json!(self.name);
        f
    }

    /// The index of a stored message, from its client_id.
    fn index(&self, m: &Value) -> Option<usize> {
        let id = m["client_id"].as_str()?;
        id.strip_prefix(self.prefix)?
            .strip_prefix('-')?
            .parse()
            .ok()
    }
}

/// `(seq, ts)` of a stored or acknowledged send, by index.
type Seqs = BTreeMap<usize, (u64, i64)>;

fn seq_ts(v: &Value) -> (u64, i64) {
    let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {v}"));
    (
        seq,
        v["ts"].as_i64().unwrap_or_else(|| panic!("no ts: {v}")),
    )
}

/// Notes the `ok` of a pipelined send; other frames are events.
fn note_reply(acked: &mut Seqs, v: &Value) {
    let Some(i) = v["id"].as_str().and_then(|s| s.strip_prefix('s')) else {
        return;
    };
    assert_eq!(v["type"], "ok", "send {i}: {v}");
    let i: usize = i.parse().expect("request id");
    assert!(acked.insert(i, seq_ts(v)).is_none(), "two replies to s{i}");
}

/// Pipelines `n` sends to `t` (reading whatever replies have come between
/// batches), kills the server once an eighth are acknowledged, then reads
/// the replies that made it out before it died. Returns the acknowledged
/// sends, or `None` when every send was acknowledged (nothing in flight:
/// the crash would prove nothing).
async fn send_and_kill(srv: ServerProcess, a: &mut Client, t: &Target, n: usize) -> Option<Seqs> {
    let mut acked = Seqs::new();
    for start in (0..n).step_by(64) {
        for i in start..(start + 64).min(n) {
            let mut f = t.send(i);
            f["id"] = json!(format!("s{i}"));
            a.send(f).await;
        }
        while let Some(v) = a.try_recv(Duration::ZERO).await {
            note_reply(&mut acked, &v);
        }
    }
    while acked.len() < n / 8 {
        let v = a.recv().await;
        note_reply(&mut acked, &v);
    }
    srv.kill();
    for v in a.expect_closed().await {
        note_reply(&mut acked, &v);
    }
    (acked.len() < n).then_some(acked)
}

/// The whole history of `conv`, oldest first.
async fn history(c: &mut Client, conv: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut q = json!({"type":"history","conv":conv,"limit":200});
        if let Some(b) = before {
            q["before"] = json!(b);
        }
        let page = c.ok(q).await;
        let msgs = page["messages"].as_array().expect("messages").clone();
        before = msgs.first().and_then(|m| m["seq"].as_u64());
        all.splice(0..0, msgs);
        if page["more"] != true {
            return all;
        }
    }
}

/// Checks a history holds seqs 1..=len without gaps or duplicates, the
/// first `base` without client_id, and then only sends to `t`, each at
/// most once and with its own body. Returns them by index.
fn stored_sends(h: &[Value], t: &Target, base: u64) -> Seqs {
    let seqs: Vec<u64> = h.iter().map(|m| seq_ts(m).0).collect();
    assert_eq!(seqs, (1..=h.len() as u64).collect::<Vec<_>>(), "gapless");
    let mut stored = Seqs::new();
    for m in &h[base as usize..] {
        let i = t
            .index(m)
            .unwrap_or_else(|| panic!("not one of our sends: {m}"));
        assert_eq!(m["body"], t.body(i), "{m}");
        assert!(
            stored.insert(i, seq_ts(m)).is_none(),
            "send {i} stored twice"
        );
    }
    stored
}

/// After the restart: every acknowledged send is stored with the seq and
/// ts its `ok` gave; every unacknowledged one, retried with its client_id,
/// gets the seq and ts it was stored with, or else the next new seq; in
/// the end sends 0..n are each stored once, seqs `1..=base + n` without
/// gaps. `base` messages came before the sends. Returns the last seq.
async fn check_and_retry(a: &mut Client, t: &Target, n: usize, base: u64, acked: &Seqs) -> u64 {
    let stored = stored_sends(&history(a, t.conv).await, t, base);
    for (i, got) in acked {
        assert_eq!(
            stored.get(i),
            Some(got),
            "acknowledged send {i} lost or changed"
        );
    }
    let mut last = base + stored.len() as u64;
    let mut fin = stored.clone();
    // Every unacknowledged send, and a few acknowledged ones (a retry of
    // those must be a no-op too).
    let retries = (0..n).filter(|i| !acked.contains_key(i) || *i < 20);
    for i in retries {
        let r = a.ok(t.send(i)).await;
        match stored.get(&i) {
            Some(st) => assert_eq!(seq_ts(&r), *st, "retry of stored send {i}: {r}"),
            None => {
                last += 1;
                assert_eq!(seq_ts(&r).0, last, "retry of lost send {i}: {r}");
                fin.insert(i, seq_ts(&r));
            }
        }
    }
    let after = stored_sends(&history(a, t.conv).await, t, base);
    assert_eq!(after, fin, "history after the retries");
    assert_eq!(after.len(), n, "every send stored exactly once");
    assert_eq!(last, base + n as u64);
    last
}

/// Runs `attempt(n)` with more and more sends until a kill leaves some in
/// flight.
async fn with_sends_in_flight<F, Fut>(what: &str, attempt: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for n in ATTEMPTS {
        if attempt(n).await {
            return;
        }
        eprintln!("{what}: all {n} sends were acknowledged before the kill; again with more");
    }
    panic!("{what}: every send was acknowledged before the kill, even {ATTEMPTS:?}");
}

/// Registers `name` and logs in on the process's TCP port.
async fn new_user(srv: &ServerProcess, name: &str) -> Client {
    let mut c = Client::connect(srv.addr).await;
    c.ok(json!({"type":"register","username":name,"password":PASSWORD}))
        .await;
    c.login(name, PASSWORD).await;
    c
}

fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start(dir, &ENV)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_and_retries_are_exact() {
    with_sends_in_flight("direct messages", dm_attempt).await;
}

/// Alice and Bob are contacts; a first message is read by Bob, who goes
/// offline; Alice pipelines `n` sends to him and the server dies.
async fn dm_attempt(n: usize) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let mut a = new_user(&srv, "alice").await;
    let mut b = new_user(&srv, "bob").await;
    let token = a.token.clone().expect("token");
    a.ok(json!({"type":"contact.add","user":"bob"})).await;
    b.expect("contact.request").await;
    b.ok(json!({"type":"contact.accept","user":"alice"})).await;
    assert_eq!(a.send_dm("bob", "before").await["seq"], 1);
    b.ok(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":1,"read":true}))
        .await;
    b.ok(json!({"type":"logout"})).await;
    let Some(acked) = send_and_kill(srv, &mut a, &DM, n).await else {
        return false;
    };

    let srv = start(dir.path());
    // The account, its token and the contact survived.
    let mut a = Client::connect(srv.addr).await;
    let login = a.login_token("alice", &token).await;
    let contact = &login.roster["contacts"][0];
    assert!(contact["last_seen"].is_i64(), "{contact}");
    assert_eq!(
        login.roster["contacts"],
        json!([{"user":"bob","state":"mutual","presence":"offline","last_seen":contact["last_seen"]}])
    );
    let last = check_and_retry(&mut a, &DM, n, 1, &acked).await;
    // Bob's read cursor survived: his replay starts after the message he
    // read and holds every message exactly once, in order.
    let mut b = Client::connect(srv.addr).await;
    let login = b.login("bob", PASSWORD).await;
    let replayed: Vec<u64> = login.replay.iter().map(|f| seq_ts(f).0).collect();
    assert_eq!(replayed, (2..=last).collect::<Vec<_>>());
    let convs = b.ok(json!({"type":"convs"})).await;
    assert_eq!(convs["convs"][0]["read_seq"], 1);
    assert_eq!(convs["convs"][0]["unread"], json!(last - 1));
    true
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
async fn rooms_and_their_messages_survive_kill_9_and_retries_are_exact() {
    with_sends_in_flight("room messages", room_attempt).await;
}

/// Alice owns a public and a private room; Bob joined the public one and
/// went offline; Alice pipelines `n` sends to the room and the server dies.
async fn room_attempt(n: usize) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let mut a = new_user(&srv, "alice").await;
    let mut b = new_user(&srv, "bob").await;
    a.ok(json!({"type":"room.create","name":"rust","topic":"Rust talk"}))
        .await;
    a.ok(json!({"type":"room.create","name":"secret","public":false}))
        .await;
    b.ok(json!({"type":"room.join","name":"rust"})).await;
    b.ok(json!({"type":"logout"})).await;
    a.ok(json!({"type":"room.topic","name":"rust","topic":"Rust, mostly"}))
        .await;
    let Some(acked) = send_and_kill(srv, &mut a, &ROOM, n).await else {
        return false;
    };

    let srv = start(dir.path());
    let mut a = Client::connect(srv.addr).await;
    a.login("alice", PASSWORD).await;
    let last = check_and_retry(&mut a, &ROOM, n, 0, &acked).await;
    let mut b = Client::connect(srv.addr).await;
    let login = b.login("bob", PASSWORD).await;
    let replayed: Vec<u64> = login.replay.iter().map(|f| seq_ts(f).0).collect();
    assert_eq!(replayed, (1..=last).collect::<Vec<_>>(), "bob's replay");
    // Membership, roles, topic and privacy survived too.
    let members = b.ok(json!({"type":"room.members","name":"rust"})).await;
    let mut roles: Vec<(String, String)> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["user"].to_string(), m["role"].to_string()))
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            (r#""alice""#.into(), r#""owner""#.into()),
            (r#""bob""#.into(), r#""member""#.into())
        ]
    );
    let list = b.ok(json!({"type":"room.list"})).await;
    assert_eq!(
        list["rooms"],
        json!([{"name":"rust","topic":"Rust, mostly","members":2,"online":2}])
    );
    b.err(json!({"type":"room.join","name":"secret"}), "not_found")
        .await;
    true
}
