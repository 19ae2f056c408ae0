//! docs/PROTOCOL.md "Closing, limits and floods" and the per-user caps:
//! every limit a hostile or broken client can run into, over real sockets.
//! Each test sets the limit it checks (the harness raises the request rate
//! and per-address caps for the other tests).

use std::net::SocketAddr;
use std::time::Duration;

use im_tests::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The `closing` frame among `frames`, which must be the last one.
fn closing_reason(frames: &[Value]) -> Option<&str> {
    let last = frames.last()?;
    (last["type"] == "closing").then(|| last["reason"].as_str().unwrap_or(""))
}

/// A raw TCP connection from the local address `from` (another loopback
/// address is another peer): the frames it gets until the server closes it
/// or `wait` passes.
async fn raw_from(from: &str, to: SocketAddr, send: &str, wait: Duration) -> Vec<Value> {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{from}:0").parse().expect("addr"))
        .expect("bind");
    let mut s = sock.connect(to).await.expect("connect");
    s.write_all(send.as_bytes()).await.expect("write");
    let (rd, _wr) = s.split();
    let mut lines = BufReader::new(rd).lines();
    let mut out = vec![];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(Some(l))) = tokio::time::timeout_at(deadline, lines.next_line()).await {
        out.push(serde_json::from_str(&l).expect("json"));
    }
    out
}

#[tokio::test]
async fn a_silent_connection_gets_closing_idle_timeout() {
    let srv = TestServer::builder()
        .config(|c| c.limits.idle_timeout_secs = 1)
        .start();
    let mut a = srv.user("alice").await;
    let frames = a.expect_closed().await;
    assert_eq!(closing_reason(&frames), Some("idle_timeout"), "{frames:?}");
}

#[tokio::test]
async fn a_connection_that_never_logs_in_is_closed_even_while_pinging() {
    let srv = TestServer::builder()
        .config(|c| c.limits.login_timeout_secs = 1)
        .start();
    let s = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let (rd, mut wr) = s.into_split();
    let mut lines = BufReader::new(rd).lines();
    let started = std::time::Instant::now();
    let mut frames: Vec<Value> = vec![];
    loop {
        // Pings do not extend the login deadline. Writing fails once the
        // server has closed: that ends it too.
        let _ = wr.write_all(b"{\"type\":\"ping\"}\n").await;
        match tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await {
            Ok(Ok(Some(l))) => frames.push(serde_json::from_str(&l).expect("json")),
            Ok(_) => break,
            Err(_) => {}
        }
        assert!(
            started.elapsed() < WAIT,
            "still open after {WAIT:?}: {frames:?}"
        );
    }
    assert!(frames.iter().any(|f| f["type"] == "pong"), "pings answered");
    assert_eq!(
        closing_reason(&frames),
        Some("login_timeout"),
        "{:?}",
        frames.last()
    );
}

#[tokio::test]
async fn logging_in_in_time_beats_the_login_deadline() {
    let srv = TestServer::builder()
        .config(|c| c.limits.login_timeout_secs = 2)
        .start();
    let mut a = srv.user("alice").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(a.request(json!({"type":"ping"})).await["type"], "pong");
}

#[tokio::test]
async fn one_address_over_its_cap_is_refused_and_another_still_gets_in() {
    let srv = TestServer::builder()
        .config(|c| c.limits.max_connections_per_peer = 3)
        .start();
    // Three connections from 127.0.0.2 that only trickle pings.
    let mut held = vec![];
    for _ in 0..3 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        held.push(sock.connect(srv.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fourth = raw_from("127.0.0.2", srv.addr, "", WAIT).await;
    assert_eq!(fourth[0]["type"], "hello", "{fourth:?}");
    assert_eq!(closing_reason(&fourth), Some("server_full"), "{fourth:?}");
    assert_eq!(
        fourth.len(),
        2,
        "hello, closing, then the close: {fourth:?}"
    );
    // Another address is not kept out.
    let other = raw_from(
        "127.0.0.3",
        srv.addr,
        "{\"type\":\"ping\"}\n",
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(other.len(), 2, "{other:?}");
    assert_eq!(other[1]["type"], "pong");
    // A place freed is a place again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = raw_from(
        "127.0.0.2",
        srv.addr,
        "{\"type\":\"ping\"}\n",
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(
        again.get(1).map(|v| &v["type"]),
        Some(&json!("pong")),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_overall_cap_refuses_with_server_full() {
    let srv = TestServer::builder()
        .config(|c| c.limits.max_connections = 2)
        .start();
    let _a = srv.client().await;
    let _b = srv.client().await;
    let third = raw_from("127.0.0.1", srv.addr, "", WAIT).await;
    assert_eq!(closing_reason(&third), Some("server_full"), "{third:?}");
}

#[tokio::test]
async fn requests_past_the_rate_are_refused_then_a_flood_is_closed() {
    let srv = TestServer::builder()
        .config(|c| {
            c.limits.frames_per_sec = 1;
            c.limits.frames_burst = 10;
            c.limits.flood_close_after = 20;
        })
        .start();
    let mut a = srv.user("alice").await;
    let mut batch = String::new();
    for i in 0..100 {
        batch.push_str(&format!("{{\"type\":\"ping\",\"id\":{i}}}\n"));
    }
    a.send_bytes(batch.as_bytes()).await;
    let frames = a.expect_closed().await;
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    let limited = frames
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "rate_limited")
        .count();
    // The login took one token of the burst.
    assert!((8..=10).contains(&pongs), "{pongs} pongs: {frames:?}");
    assert_eq!(limited, 20, "{frames:?}");
    assert_eq!(closing_reason(&frames), Some("rate_limited"), "{frames:?}");
}

#[tokio::test]
async fn typing_is_relayed_at_most_once_per_two_seconds() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for _ in 0..20 {
        a.ok(json!({"type":"typing","to":"bob"})).await;
    }
    let got = b.drain(500).await;
    let typing = got.iter().filter(|f| f["type"] == "typing").count();
    assert_eq!(typing, 1, "{got:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    a.ok(json!({"type":"typing","to":"bob"})).await;
    assert_eq!(b.expect("typing").await["user"], "alice");
}

#[tokio::test]
async fn a_client_that_does_not_read_its_replies_is_cut_off_by_bytes() {
    let srv = TestServer::builder()
        .config(|c| {
            c.limits.outbound_bytes = 256 * 1024;
            c.limits.outbound_queue = 100_000;
        })
        .start();
    let mut a = srv.user("alice").await;
    a.ok(json!({"type":"room.create","name":"mine","public":false}))
        .await;
    let body = "x".repeat(16_000);
    for _ in 0..20 {
        a.ok(json!({"type":"msg.send","room":"mine","body":body}))
            .await;
    }
    // Each reply is about 320 KB; the kernel's buffers take some, the
    // queue's byte budget the rest, then the connection is cut.
    let mut batch = String::new();
    for i in 0..400 {
        batch.push_str(&format!(
            "{{\"type\":\"history\",\"conv\":\"room:mine\",\"limit\":200,\"id\":{i}}}\n"
        ));
    }
    a.send_bytes(batch.as_bytes()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let frames = a.expect_closed().await;
    let replies = frames.iter().filter(|f| f["type"] == "ok").count();
    assert!(replies < 400, "all {replies} replies queued: no byte bound");
    // Nothing stored is lost: a new login sees the room's 20 messages.
    let mut again = srv.user_on("alice", "other").await;
    let h = again
        .ok(json!({"type":"history","conv":"room:mine","limit":200}))
        .await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(20));
}

#[tokio::test]
async fn stored_strings_may_not_contain_nul() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for frame in [
        json!({"type":"msg.send","to":"bob","body":"a\u{0}b"}),
        json!({"type":"msg.send","to":"bob","body":"ok","client_id":"c\u{0}"}),
        json!({"type":"presence.set","status":"away","note":"\u{0}"}),
        json!({"type":"room.create","name":"nul","topic":"t\u{0}"}),
        json!({"type":"file.begin","name":"a\u{0}.png","size":1}),
        json!({"type":"register","username":"eve\u{0}","password":"password123"}),
    ] {
        a.err(frame, "bad_request").await;
    }
    let h = a.ok(json!({"type":"history","conv":"dm:alice:bob"})).await;
    assert_eq!(h["messages"], json!([]), "nothing was stored");
    b.expect_silence(200).await;
}

#[tokio::test]
async fn password_change_closes_every_other_session_even_under_the_same_device_name() {
    let srv = TestServer::start();
    let mut victim = srv.user("alice").await;
    // An attacker with the password logs in under the same device name.
    let mut attacker = srv.client().await;
    let stolen = attacker.login("alice", PASSWORD).await;
    let mut laptop = srv.user_on("alice", "laptop").await;
    victim
        .ok(json!({"type":"password.change","old":PASSWORD,"new":"new password 1"}))
        .await;
    for c in [&mut attacker, &mut laptop] {
        let frames = c.expect_closed().await;
        assert_eq!(
            closing_reason(&frames),
            Some("password_changed"),
            "{frames:?}"
        );
    }
    assert_eq!(victim.request(json!({"type":"ping"})).await["type"], "pong");
    let mut again = srv.client().await;
    again
        .err(
            json!({"type":"login","username":"alice","token":stolen.ok["token"]}),
            "invalid_credentials",
        )
        .await;
}

#[tokio::test]
async fn wrong_old_passwords_count_against_the_login_limit() {
    let srv = TestServer::builder()
        .config(|c| c.auth.login_failures_per_user = 3)
        .start();
    let mut a = srv.user("alice").await;
    for _ in 0..3 {
        a.err(
            json!({"type":"password.change","old":"wrong password","new":"new password 1"}),
            "invalid_credentials",
        )
        .await;
    }
    // Past the limit, not even the right password is checked.
    a.err(
        json!({"type":"password.change","old":PASSWORD,"new":"new password 1"}),
        "rate_limited",
    )
    .await;
    let mut b = srv.client().await;
    b.err(
        json!({"type":"login","username":"alice","password":PASSWORD}),
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn password_logins_beyond_the_bcrypt_queue_bound_are_answered_unavailable() {
    // One bcrypt thread, real cost, a short bound: a burst of password
    // logins is more than the thread can check within the bound.
    let srv = TestServer::builder()
        .config(|c| {
            c.auth.bcrypt_cost = 10;
            c.pool.bcrypt_threads = 1;
            c.pool.bcrypt_max_wait_ms = 200;
            c.auth.login_failures_per_user = 1000;
            c.auth.login_failures_per_peer = 1000;
        })
        .start();
    srv.register("alice").await;
    let mut clients = Vec::new();
    for _ in 0..24 {
        clients.push(srv.client().await);
    }
    let storm = clients.into_iter().map(|mut c| async move {
        let r = c
            .request(
                json!({"type":"login","username":"alice","password":PASSWORD,"device":"storm"}),
            )
            .await;
        if r["type"] == "ok" {
            "ok".to_owned()
        } else {
            r["code"].as_str().unwrap_or("?").to_owned()
        }
    });
    let codes = futures_util::future::join_all(storm).await;
    let count = |c: &str| codes.iter().filter(|x| *x == c).count();
    assert!(count("ok") >= 1, "{codes:?}");
    assert!(count("unavailable") >= 1, "{codes:?}");
    assert_eq!(count("ok") + count("unavailable"), codes.len(), "{codes:?}");
    // Once the queue has drained, password logins are checked again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    srv.user_on("alice", "later").await;
}

#[tokio::test]
async fn a_revoked_device_gets_closing_device_revoked() {
    let srv = TestServer::start();
    let mut phone = srv.user_on("alice", "phone").await;
    let mut laptop = srv.user_on("alice", "laptop").await;
    laptop
        .ok(json!({"type":"device.revoke","device":"phone"}))
        .await;
    let frames = phone.expect_closed().await;
    assert_eq!(
        closing_reason(&frames),
        Some("device_revoked"),
        "{frames:?}"
    );
}

#[tokio::test]
async fn sixteen_bad_frames_get_closing_too_many_errors() {
    let srv = TestServer::start();
    let mut a = srv.client().await;
    for _ in 0..16 {
        a.send_line("not json").await;
    }
    let frames = a.expect_closed().await;
    assert_eq!(
        closing_reason(&frames),
        Some("too_many_errors"),
        "{frames:?}"
    );
}

#[tokio::test]
async fn shutdown_says_closing_shutdown() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    drop(srv);
    let frames = a.expect_closed().await;
    assert_eq!(closing_reason(&frames), Some("shutdown"), "{frames:?}");
}

/// An integrator that stops its TCP listener without shutting the hub down
/// first: the connections still tell their clients why they close.
#[tokio::test]
async fn a_stopping_tcp_listener_says_closing_shutdown() {
    let mut srv = TestServer::builder().serve_own(|hub, listener, stop| async move {
        listener.set_nonblocking(true).unwrap();
        let tcp = tokio::net::TcpListener::from_std(listener).unwrap();
        im_transport_tcp::serve(tcp, hub, stop).await.unwrap();
    });
    let mut a = Client::connect(srv.addr).await;
    a.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    a.login("alice", PASSWORD).await;
    srv.stop();
    let frames = a.expect_closed().await;
    assert_eq!(closing_reason(&frames), Some("shutdown"), "{frames:?}");
    srv.join();
}

#[tokio::test]
async fn per_user_caps_on_rooms_devices_and_requests() {
    let srv = TestServer::builder()
        .config(|c| {
            c.limits.max_rooms_owned = 2;
            c.limits.max_devices = 2;
            c.limits.max_pending_requests = 2;
            c.limits.max_pending_invites = 2;
        })
        .start();
    let mut a = srv.user_on("alice", "d1").await;
    for r in ["room1", "room2"] {
        a.ok(json!({"type":"room.create","name":r})).await;
    }
    a.err(json!({"type":"room.create","name":"room3"}), "conflict")
        .await;
    let _d2 = srv.user_on("alice", "d2").await;
    let mut d3 = srv.client().await;
    d3.err(
        json!({"type":"login","username":"alice","password":PASSWORD,"device":"d3"}),
        "conflict",
    )
    .await;
    // A device already signed in may sign in again.
    let _d1_again = srv.user_on("alice", "d1").await;
    // Revoking one frees its place.
    a.ok(json!({"type":"device.revoke","device":"d2"})).await;
    d3.login_device("alice", PASSWORD, "d3").await;
    for u in ["user1", "user2", "user3"] {
        srv.register(u).await;
    }
    let mut b = srv.user("bob").await;
    b.ok(json!({"type":"contact.add","user":"user1"})).await;
    b.ok(json!({"type":"contact.add","user":"user2"})).await;
    b.err(json!({"type":"contact.add","user":"user3"}), "rate_limited")
        .await;
    // Invitations waiting for one user, from two inviters.
    for r in ["club1", "club2"] {
        b.ok(json!({"type":"room.create","name":r,"public":false}))
            .await;
        b.ok(json!({"type":"room.invite","name":r,"user":"user1"}))
            .await;
    }
    let mut c = srv.user("carol").await;
    c.ok(json!({"type":"room.create","name":"club3","public":false}))
        .await;
    c.err(
        json!({"type":"room.invite","name":"club3","user":"user1"}),
        "rate_limited",
    )
    .await;
    // Renewing one is not a new place.
    b.ok(json!({"type":"room.invite","name":"club1","user":"user1"}))
        .await;
}

/// Sends `frames[i]` on `clients[i]`, every frame before any reply is
/// read, and returns each reply's code: `ok` or the error's code.
async fn all_at_once(clients: &mut [Client], frames: &[Vec<Value>]) -> Vec<String> {
    for (c, fs) in clients.iter_mut().zip(frames) {
        for (i, f) in fs.iter().enumerate() {
            let mut f = f.clone();
            f["id"] = json!(format!("race-{i}"));
            c.send(f).await;
        }
    }
    let mut codes = Vec::new();
    for (c, fs) in clients.iter_mut().zip(frames) {
        let mut got = 0;
        while got < fs.len() {
            let v = c.recv().await;
            if !v["id"].as_str().is_some_and(|id| id.starts_with("race-")) {
                continue;
            }
            got += 1;
            codes.push(match v["type"].as_str() {
                Some("ok") => "ok".to_owned(),
                _ => v["code"].as_str().unwrap_or("?").to_owned(),
            });
        }
    }
    codes
}

fn count(codes: &[String], code: &str) -> usize {
    codes.iter().filter(|c| *c == code).count()
}

#[tokio::test]
async fn parallel_requests_never_pass_the_per_user_caps() {
    let srv = TestServer::builder()
        .config(|c| {
            c.limits.max_rooms_owned = 3;
            c.limits.max_pending_requests = 3;
            c.limits.max_pending_invites = 2;
        })
        .start();
    // Four sessions of alice, each asking three times at once.
    let mut alice = Vec::new();
    for d in 0..4 {
        alice.push(srv.user_on("alice", &format!("d{d}")).await);
    }
    let each = |f: &dyn Fn(usize) -> Value| -> Vec<Vec<Value>> {
        (0..4)
            .map(|d| (0..3).map(|i| f(d * 3 + i)).collect())
            .collect()
    };
    let creates = each(&|n| json!({"type":"room.create","name":format!("room{n}")}));
    let codes = all_at_once(&mut alice, &creates).await;
    assert_eq!(count(&codes, "ok"), 3, "{codes:?}");
    assert_eq!(count(&codes, "conflict"), 9, "{codes:?}");
    for u in 0..12 {
        srv.register(&format!("user{u}")).await;
    }
    let adds = each(&|n| json!({"type":"contact.add","user":format!("user{n}")}));
    let codes = all_at_once(&mut alice, &adds).await;
    assert_eq!(count(&codes, "ok"), 3, "{codes:?}");
    assert_eq!(count(&codes, "rate_limited"), 9, "{codes:?}");
    // Four owners of private rooms invite carol at once.
    srv.register("carol").await;
    let mut owners = Vec::new();
    for o in 0..4 {
        let mut c = srv.user(&format!("owner{o}")).await;
        c.ok(json!({"type":"room.create","name":format!("club{o}"),"public":false}))
            .await;
        owners.push(c);
    }
    let invites: Vec<Vec<Value>> = (0..4)
        .map(|o| vec![json!({"type":"room.invite","name":format!("club{o}"),"user":"carol"})])
        .collect();
    let codes = all_at_once(&mut owners, &invites).await;
    assert_eq!(count(&codes, "ok"), 2, "{codes:?}");
    assert_eq!(count(&codes, "rate_limited"), 2, "{codes:?}");
}

#[tokio::test]
async fn a_connection_trickling_bytes_is_closed_on_time() {
    let srv = TestServer::builder()
        .config(|c| {
            c.limits.login_timeout_secs = 1;
            c.limits.idle_timeout_secs = 2;
        })
        .start();
    // Before login: one byte of a frame every 100 ms, never a newline.
    let s = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let (rd, mut wr) = s.into_split();
    let mut lines = BufReader::new(rd).lines();
    let trickle = tokio::spawn(async move {
        for b in b"{\"type\":\"login\",\"username\":\"alice\"".iter().cycle() {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut frames: Vec<Value> = vec![];
    while let Ok(Ok(Some(l))) = tokio::time::timeout(WAIT, lines.next_line()).await {
        frames.push(serde_json::from_str(&l).expect("json"));
    }
    trickle.abort();
    assert_eq!(closing_reason(&frames), Some("login_timeout"), "{frames:?}");
    // After login: bytes that never make a frame do not count as activity.
    let mut a = srv.user("alice").await;
    a.send_bytes(b"{\"type\":").await;
    let started = std::time::Instant::now();
    let frames = a.expect_closed().await;
    assert_eq!(closing_reason(&frames), Some("idle_timeout"), "{frames:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn the_idle_timeout_fires_during_a_login_replay_nobody_reads() {
    let srv = TestServer::builder()
        .config(|c| {
            c.limits.idle_timeout_secs = 1;
            c.limits.outbound_queue = 16;
            c.limits.replay_max = 100_000;
            c.limits.replay_total_max = 100_000;
            c.policy.dm_requires_contact = false;
        })
        .start();
    srv.register("bob").await;
    let mut a = srv.user("alice").await;
    // Far more than the socket buffers and the queue hold.
    let body = "r".repeat(10_000);
    for round in 0..200 {
        // Ten at a time: alice's own queue is small too.
        let mut batch = String::new();
        for i in 0..10 {
            let id = round * 10 + i;
            batch.push_str(&json!({"type":"msg.send","to":"bob","body":body,"id":id}).to_string());
            batch.push('\n');
        }
        a.send_bytes(batch.as_bytes()).await;
        for _ in 0..10 {
            assert_eq!(a.recv().await["type"], "ok");
        }
    }
    // Bob logs in and then neither reads nor writes: the replay stalls.
    let mut b = srv.client().await;
    b.send(json!({"type":"login","username":"bob","password":PASSWORD}))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Closed by the idle timeout (after its grace for queued frames), not
    // held open by the stalled replay.
    b.expect_closed_within(Duration::from_secs(20)).await;
}

/// M3: failures under a name that can never exist are counted per peer
/// address only, so random (or huge) names cannot grow the per-user
/// counters, and they never lock anyone out.
#[tokio::test]
async fn invalid_names_are_counted_per_peer_only() {
    let srv = TestServer::builder()
        .config(|c| {
            c.auth.login_failures_per_user = 3;
            c.auth.login_failures_per_peer = 1000;
        })
        .start();
    let mut c = srv.client().await;
    let huge = "x".repeat(60_000);
    for name in [huge.as_str(), "no", "no", "no", "no", "no"] {
        c.err(
            json!({"type":"login","username":name,"password":"wrong password"}),
            "invalid_credentials",
        )
        .await;
    }
}
