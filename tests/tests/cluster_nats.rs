//! Several example-server processes (built with `--features cluster`) on
//! loopback ports, sharing the machine's PostgreSQL (a schema per test)
//! and routing through its NATS (a `cluster.name` per test), with clients
//! over real sockets. Needs `IM_TEST_POSTGRES_URL` and `IM_TEST_NATS_URL`
//! (`.ci/run` sets both); without them each test says so and passes,
//! except under CI.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use im_tests::pg::{nats_url, postgres_url, Schema};
use im_tests::process::{example_binary_with, ServerProcess};
use im_tests::{Client, PASSWORD, WAIT};
use serde_json::json;

/// One cluster of this test: its schema, name and nodes' settings.
struct Cluster {
    schema: Schema,
    pg: String,
    nats: String,
    bin: PathBuf,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn new() -> Option<Cluster> {
        let (pg, nats) = (postgres_url()?, nats_url()?);
        Some(Cluster {
            schema: Schema::new(&pg, "im_cluster"),
            pg,
            nats,
            bin: example_binary_with("server", &["cluster"]),
            dirs: Vec::new(),
        })
    }

    /// Starts one more node (after the previous one listens, so the
    /// schema's migrations run once).
    fn node(&mut self) -> ServerProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = self.schema.name.as_str();
        let node = ServerProcess::start_binary(
            &self.bin,
            dir.path(),
            &[
                ("IM__STORE__URL", self.pg.as_str()),
                ("IM__STORE__PG_SCHEMA", name),
                ("IM__CLUSTER__NATS_URL", self.nats.as_str()),
                ("IM__CLUSTER__NAME", name),
                ("IM__CLUSTER__NODE_TIMEOUT_SECS", "2"),
                ("IM__LIMITS__FRAMES_PER_SEC", "100000"),
                ("IM__LIMITS__FRAMES_BURST", "100000"),
                ("IM__METRICS__ENABLED", "false"),
            ],
        );
        self.dirs.push(dir);
        node
    }
}

/// Registers `name` if needed and logs in on `device` at `node`.
async fn user(node: &ServerProcess, name: &str, device: &str) -> Client {
    let mut c = Client::connect(node.addr).await;
    let r = c
        .request(json!({"type":"register","username":name,"password":PASSWORD}))
        .await;
    assert!(r["type"] == "ok" || r["code"] == "username_taken", "{r}");
    c.login_device(name, PASSWORD, device).await;
    c
}

/// Lets the nodes find each other on the bus.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn friends(a: &mut Client, b: &mut Client) {
    let bname = b.user.clone().expect("logged in");
    let aname = a.user.clone().expect("logged in");
    a.ok(json!({"type":"contact.add","user":bname})).await;
    b.skip_to("contact.request").await;
    b.ok(json!({"type":"contact.accept","user":aname})).await;
    for c in [a, b] {
        c.skip_to("contact.added").await;
    }
}

/// Two nodes; alice on the first and bob on the second, mutual contacts.
async fn two_friends(cl: &mut Cluster) -> (ServerProcess, ServerProcess, Client, Client) {
    let (a, b) = (cl.node(), cl.node());
    settle().await;
    let mut alice = user(&a, "alice", "phone").await;
    let mut bob = user(&b, "bob", "desk").await;
    friends(&mut alice, &mut bob).await;
    (a, b, alice, bob)
}

#[tokio::test]
async fn users_on_two_nodes_chat_and_see_presence() {
    let Some(mut cl) = Cluster::new() else {
        return;
    };
    let (_a, b, mut alice, mut bob) = two_friends(&mut cl).await;
    let p = alice.skip_to("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("bob"), Some("online")),
        "{p}"
    );
    alice.send_dm("bob", "over nats").await;
    assert_eq!(bob.skip_to("msg").await["body"], "over nats");
    // alice's second device, on bob's node, gets bob's answer too.
    let mut laptop = user(&b, "alice", "laptop").await;
    bob.send_dm("alice", "to every device").await;
    for s in [&mut alice, &mut laptop] {
        assert_eq!(s.skip_to("msg").await["body"], "to every device");
    }
    bob.close().await;
    let p = alice.skip_to("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("bob"), Some("offline")),
        "{p}"
    );
}

#[tokio::test]
async fn two_senders_on_two_nodes_reach_a_third_node_in_order() {
    let Some(mut cl) = Cluster::new() else {
        return;
    };
    let (a, b, c) = (cl.node(), cl.node(), cl.node());
    settle().await;
    let mut alice = user(&a, "alice", "d").await;
    let mut bob = user(&b, "bob", "d").await;
    let mut carol = user(&c, "carol", "d").await;
    alice
        .ok(json!({"type":"room.create","name":"busy","public":true}))
        .await;
    for u in [&mut bob, &mut carol] {
        u.ok(json!({"type":"room.join","name":"busy"})).await;
    }
    const EACH: usize = 200;
    let frames = |who: &'static str| {
        (0..EACH).map(move |i| json!({"type":"msg.send","room":"busy","body":format!("{who} {i}")}))
    };
    futures_util::join!(
        async {
            for f in frames("alice") {
                alice.send(f).await;
            }
        },
        async {
            for f in frames("bob") {
                bob.send(f).await;
            }
        }
    );
    let mut seqs = Vec::new();
    while seqs.len() < 2 * EACH {
        let m = carol.recv().await;
        if m["type"] == "msg" {
            seqs.push(m["seq"].as_u64().expect("seq"));
        }
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[tokio::test]
async fn rooms_and_control_cross_nodes() {
    let Some(mut cl) = Cluster::new() else {
        return;
    };
    let (a, b) = (cl.node(), cl.node());
    settle().await;
    let mut owner = user(&a, "owner", "d").await;
    owner
        .ok(json!({"type":"room.create","name":"lobby","public":true}))
        .await;
    let mut members = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut m = user(node, &format!("member{i}"), "d").await;
        m.ok(json!({"type":"room.join","name":"lobby"})).await;
        members.push(m);
    }
    owner
        .ok(json!({"type":"msg.send","room":"lobby","body":"welcome"}))
        .await;
    for m in &mut members {
        assert_eq!(m.skip_to("msg").await["body"], "welcome");
    }
    // A kick on node a; the member on node b is out with the `ok`.
    owner
        .ok(json!({"type":"room.kick","name":"lobby","user":"member1"}))
        .await;
    let kicked = &mut members[1];
    let r = kicked
        .request(json!({"type":"msg.send","room":"lobby","body":"still here?"}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(kicked.skip_to("room.left").await["kicked"], true);
    // A device revoked on node a closes its session on node b.
    let mut phone = user(&b, "owner", "phone").await;
    owner
        .ok(json!({"type":"device.revoke","device":"phone"}))
        .await;
    let frames = phone.expect_closed().await;
    assert_eq!(
        frames.last().map(|f| f["reason"].clone()),
        Some(json!("device_revoked")),
        "{frames:?}"
    );
}

#[tokio::test]
async fn a_node_killed_mid_chat_loses_nothing_acknowledged() {
    let Some(mut cl) = Cluster::new() else {
        return;
    };
    let (a, b, mut alice, mut bob) = two_friends(&mut cl).await;
    // alice pipelines sends; her node dies under them.
    for i in 0..300 {
        alice
            .send(json!({"type":"msg.send","to":"bob","body":format!("m{i}"),"client_id":format!("c{i}")}))
            .await;
    }
    let mut acked = Vec::new();
    while acked.len() < 20 {
        let v = alice.recv().await;
        if v["type"] == "ok" && v["seq"].is_u64() {
            acked.push(v["seq"].as_u64().expect("seq"));
        }
    }
    a.kill();
    while let Some(Some(v)) = alice.read_frame(Duration::from_millis(500)).await {
        if v["type"] == "ok" && v["seq"].is_u64() {
            acked.push(v["seq"].as_u64().expect("seq"));
        }
    }
    // Within the node timeout bob sees alice offline.
    let started = Instant::now();
    let p = loop {
        let p = bob.skip_to("presence").await;
        if p["status"] != "online" {
            break p;
        }
    };
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("alice"), Some("offline")),
        "{p}"
    );
    assert!(
        started.elapsed() < WAIT,
        "offline only after {:?}",
        started.elapsed()
    );
    // alice logs in again on the surviving node: every message she had
    // an `ok` for is in the conversation, each once, in order.
    let mut again = Client::connect(b.addr).await;
    again.login_device("alice", PASSWORD, "phone").await;
    let h = again
        .ok(json!({"type":"history","conv":"dm:alice:bob","limit":200}))
        .await;
    let mut more = h["messages"].as_array().cloned().unwrap_or_default();
    let mut before = more.first().and_then(|m| m["seq"].as_u64());
    while let Some(b4) = before.filter(|s| *s > 1) {
        let h = again
            .ok(json!({"type":"history","conv":"dm:alice:bob","before":b4,"limit":200}))
            .await;
        let page = h["messages"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        before = page.first().and_then(|m| m["seq"].as_u64());
        more.splice(0..0, page);
    }
    let stored: Vec<u64> = more.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert!(stored.windows(2).all(|w| w[1] == w[0] + 1), "{stored:?}");
    for s in &acked {
        assert!(
            stored.contains(s),
            "acknowledged seq {s} lost: stored {stored:?}"
        );
    }
}
