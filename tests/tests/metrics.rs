//! `GET /metrics` on the real example server: after some traffic over TCP
//! and WebSocket, the contract's metric names are there and the numbers
//! moved; `metrics.listen` moves them off the public port.

use std::collections::HashMap;

use im_tests::process::ServerProcess;
use im_tests::*;
use serde_json::json;

/// The samples of a Prometheus text exposition: `name{labels}` -> value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

async fn scrape(addr: std::net::SocketAddr) -> (String, HashMap<String, f64>) {
    let r = http_get(addr, "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    let text = String::from_utf8(r.body).expect("utf-8");
    let s = samples(&text);
    (text, s)
}

fn at_least(s: &HashMap<String, f64>, key: &str, min: f64, text: &str) {
    let v = s.get(key).copied();
    assert!(
        v.is_some_and(|v| v >= min),
        "{key} = {v:?}, want >= {min}\n{text}"
    );
}

#[tokio::test]
async fn the_numbers_move_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(dir.path(), &[]);
    let (_, before) = scrape(srv.http).await;
    assert_eq!(
        before
            .get("im_messages_stored_total")
            .copied()
            .unwrap_or(0.0),
        0.0
    );

    let mut alice = Client::connect(srv.addr).await;
    alice
        .ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    alice.login("alice", PASSWORD).await;
    let mut bob = Client::connect_ws(srv.http).await;
    bob.ok(json!({"type":"register","username":"bob","password":PASSWORD}))
        .await;
    let token = bob.login("bob", PASSWORD).await.ok["token"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.ok(json!({"type":"contact.add","user":"bob"})).await;
    bob.expect("contact.request").await;
    bob.ok(json!({"type":"contact.accept","user":"alice"}))
        .await;
    for i in 0..3 {
        alice.send_dm("bob", &format!("m{i}")).await;
    }
    alice
        .err(json!({"type":"history","conv":"dm:bob:zed"}), "not_found")
        .await;
    let mut bob2 = Client::connect(srv.addr).await;
    bob2.login_token("bob", &token).await;

    let (text, s) = scrape(srv.http).await;
    at_least(&s, "im_sessions{transport=\"tcp\"}", 2.0, &text);
    at_least(&s, "im_sessions{transport=\"ws\"}", 1.0, &text);
    at_least(&s, "im_users_online", 2.0, &text);
    at_least(&s, "im_frames_in_total{type=\"msg.send\"}", 3.0, &text);
    at_least(&s, "im_frames_in_total{type=\"login\"}", 3.0, &text);
    at_least(&s, "im_frames_out_total", 10.0, &text);
    at_least(&s, "im_errors_total{code=\"not_found\"}", 1.0, &text);
    at_least(&s, "im_messages_stored_total", 3.0, &text);
    at_least(&s, "im_store_batch_size_count", 3.0, &text);
    at_least(&s, "im_store_batch_seconds_count", 3.0, &text);
    at_least(&s, "im_logins_total{method=\"password\"}", 2.0, &text);
    at_least(&s, "im_logins_total{method=\"token\"}", 1.0, &text);
    at_least(&s, "process_resident_memory_bytes", 1.0, &text);
    at_least(&s, "process_open_fds", 1.0, &text);
    at_least(&s, "process_cpu_seconds_total", 0.0, &text);
    for name in [
        "im_slow_consumer_disconnects_total",
        "im_login_throttled_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} counter")),
            "{name} missing\n{text}"
        );
    }

    // Sessions that end are no longer counted.
    drop((alice, bob, bob2));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (text, s) = scrape(srv.http).await;
        let online = s.get("im_users_online").copied().unwrap_or(-1.0);
        if online == 0.0 {
            assert_eq!(
                s.get("im_sessions{transport=\"tcp\"}"),
                Some(&0.0),
                "{text}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_listen_moves_them_off_the_public_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listen = port.to_string();
    let srv = ServerProcess::start(dir.path(), &[("IM__METRICS__LISTEN", &listen)]);
    assert_eq!(http_get(srv.http, "/metrics", &[]).await.status, 404);
    let (text, _) = scrape(port).await;
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}
