//! What only the WebSocket transport has: binary messages, close code
//! 1009, protocol-level ping/pong, `/healthz`, mounting our routes in an
//! integrator's own App, and TCP and WebSocket users talking to each other.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use im_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn binary_messages_get_bad_request_and_the_connection_stays() {
    let srv = TestServer::builder().transport(Transport::Ws).start();
    let mut c = srv.client().await;
    c.ws()
        .send(Message::binary(b"{\"type\":\"ping\"}".to_vec()))
        .await
        .unwrap();
    let e = c.expect("error").await;
    assert_eq!(e["code"], "bad_request");
    assert_eq!(c.request(json!({"type":"ping"})).await["type"], "pong");
}

#[tokio::test]
async fn an_oversized_message_gets_too_large_and_close_1009() {
    let srv = TestServer::builder()
        .transport(Transport::Ws)
        .config(|c| c.limits.max_frame = 1000)
        .start();
    let mut c = srv.client().await;
    let big = json!({"type":"ping","pad":"x".repeat(2000)}).to_string();
    c.ws().send(Message::text(big)).await.unwrap();
    let mut too_large = false;
    let mut code = None;
    while let Ok(Some(m)) = tokio::time::timeout(WAIT, c.ws().next()).await {
        match m {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                too_large |= v["code"] == "too_large";
            }
            Ok(Message::Close(f)) => {
                code = f.map(|f| f.code);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(too_large, "no too_large error");
    assert_eq!(code, Some(CloseCode::Size));
}

/// Over WebSocket the close frame carries the `closing` frame's reason.
#[tokio::test]
async fn the_close_frame_carries_the_closing_reason() {
    let srv = TestServer::builder()
        .transport(Transport::Ws)
        .config(|c| c.limits.login_timeout_secs = 1)
        .start();
    let mut c = srv.client().await;
    let mut closing = None;
    let mut close = None;
    while let Ok(Some(m)) = tokio::time::timeout(WAIT, c.ws().next()).await {
        match m {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "closing" {
                    closing = v["reason"].as_str().map(str::to_owned);
                }
            }
            Ok(Message::Close(f)) => {
                close = f.map(|f| (f.code, f.reason.to_string()));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(closing.as_deref(), Some("login_timeout"));
    assert_eq!(close, Some((CloseCode::Normal, "login_timeout".to_owned())));
}

#[tokio::test]
async fn answering_server_pings_keeps_an_idle_connection_open() {
    let srv = TestServer::builder()
        .transport(Transport::Ws)
        .config(|c| c.limits.idle_timeout_secs = 1)
        .start();
    let mut c = srv.client().await;
    // Sends no frame for 3 idle timeouts; only answers pings (tungstenite
    // does as we read).
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(100), c.ws().next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 3, "server sent {pings} pings");
    assert_eq!(c.request(json!({"type":"ping"})).await["type"], "pong");
}

#[tokio::test]
async fn a_client_ping_counts_as_activity() {
    let srv = TestServer::builder()
        .transport(Transport::Ws)
        .config(|c| c.limits.idle_timeout_secs = 2)
        .start();
    let mut c = srv.client().await;
    let mut silent = srv.client().await;
    // For two and a half timeouts `c` sends a ping every 300 ms and reads
    // nothing, so it answers none of the server's pings (tungstenite
    // answers them only as it reads): its pings alone keep it open. The
    // margins (300 ms against 2 s; 5 s against 2 s) hold on a loaded box.
    let mut every = tokio::time::interval(Duration::from_millis(300));
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < until {
        every.tick().await;
        c.ws()
            .send(Message::Ping(b"hi".to_vec().into()))
            .await
            .expect("connection closed while pinging");
    }
    assert_eq!(c.request(json!({"type":"ping"})).await["type"], "pong");
    // Meanwhile the connection that said nothing was closed.
    // The `closing` frame is best effort: a client that read nothing (and
    // so answered no server ping) may lose it to its own late pongs.
    let frames = silent.expect_closed().await;
    assert!(
        frames.is_empty() || frames == vec![json!({"type":"closing","reason":"idle_timeout"})],
        "{frames:?}"
    );
}

#[tokio::test]
async fn healthz_reports_status() {
    let srv = TestServer::builder().transport(Transport::Ws).start();
    let _c = srv.client().await;
    let r = http_get(srv.http, "/healthz", &[]).await;
    assert_eq!(r.status, 200);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["sessions"], 1);
}

#[tokio::test]
async fn tcp_and_websocket_users_talk_to_each_other() {
    let srv = TestServer::builder().transport(Transport::Ws).start();
    srv.register("bob").await; // over WebSocket
    let mut a = Client::connect(srv.addr).await; // alice over TCP
    a.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    a.login("alice", PASSWORD).await;
    a.ok(json!({"type":"contact.add","user":"bob"})).await;

    // Bob (WebSocket) finds the request in his roster, accepts.
    let mut b = srv.user("bob").await;
    assert_eq!(
        b.login_frames.roster["contacts"],
        json!([{"user":"alice","state":"pending_in"}])
    );
    b.ok(json!({"type":"contact.accept","user":"alice"})).await;
    for c in [&mut a, &mut b] {
        c.expect("contact.added").await;
        assert_eq!(c.expect("presence").await["status"], "online");
    }
    // Presence across transports.
    b.ok(json!({"type":"presence.set","status":"away","note":"lunch"}))
        .await;
    let p = a.expect("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str(), p["note"].as_str()),
        (Some("bob"), Some("away"), Some("lunch"))
    );
    // Messages both ways, and receipts.
    assert_eq!(a.send_dm("bob", "from tcp").await["seq"], 1);
    assert_eq!(b.expect("msg").await["body"], "from tcp");
    assert_eq!(b.send_dm("alice", "from ws").await["seq"], 2);
    assert_eq!(a.expect("msg").await["body"], "from ws");
    b.ok(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":2,"read":true}))
        .await;
    let r = a.expect("receipt").await;
    assert_eq!(
        (r["user"].as_str(), r["seq"].as_u64()),
        (Some("bob"), Some(2))
    );
    // Bob goes offline; Alice's messages replay at his next WebSocket login.
    b.ok(json!({"type":"logout"})).await;
    assert_eq!(a.expect("presence").await["status"], "offline");
    a.send_dm("bob", "while away").await;
    let b = srv.user("bob").await;
    let replay: Vec<&str> = b
        .login_frames
        .replay
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(replay, ["while away"]);
}

#[tokio::test]
async fn our_routes_mount_in_an_integrators_app() {
    use actix_web::{web, App, HttpServer};
    let srv = TestServer::builder().serve_own(|hub, listener, stop| async move {
        let server = HttpServer::new(move || {
            App::new()
                .configure(im_transport_ws::routes(hub.clone()))
                .route("/mine", web::get().to(|| async { "integrator" }))
        })
        .workers(1)
        .shutdown_timeout(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_rt::spawn(async move {
            stop.await;
            handle.stop(true).await;
        });
        let _ = server.await;
    });
    let addr = srv.addr;
    let mut c = Client::connect_ws(addr).await;
    assert_eq!(c.request(json!({"type":"ping"})).await["type"], "pong");
    let r = http_get(addr, "/mine", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"integrator");
    srv.join();
}

#[tokio::test]
async fn a_tab_that_stops_reading_is_cut_off_and_its_messages_replay() {
    const N: u64 = 600;
    let srv = TestServer::builder()
        .transport(Transport::Ws)
        .config(|c| {
            c.limits.outbound_queue = 16;
            c.limits.replay_max = 1000;
        })
        .start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    // Bob's tab stops reading; Alice sends ~10 MB.
    let body = "x".repeat(16_000);
    for _ in 0..N / 8 {
        for _ in 0..8 {
            a.send(json!({"type":"msg.send","to":"bob","body":body}))
                .await;
        }
        let mut oks = 0;
        while oks < 8 {
            if a.recv().await["type"] == "ok" {
                oks += 1;
            }
        }
    }
    // Bob's connection was closed before everything reached him.
    let got = b
        .expect_closed()
        .await
        .iter()
        .filter(|f| f["type"] == "msg")
        .count() as u64;
    assert!(got < N, "a non-reading client received all {N} messages");
    // Nothing is lost: all of it replays at his next login.
    let b = srv.user("bob").await;
    let seqs: Vec<u64> = b
        .login_frames
        .replay
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
}

#[tokio::test]
async fn binary_messages_count_towards_the_sixteen_bad_frames() {
    let srv = TestServer::builder().transport(Transport::Ws).start();
    let mut c = srv.client().await;
    for _ in 0..16 {
        c.ws().send(Message::binary(b"x".to_vec())).await.unwrap();
    }
    let mut closing = None;
    let mut errors = 0;
    while let Ok(Some(m)) = tokio::time::timeout(WAIT, c.ws().next()).await {
        match m {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "error" {
                    errors += 1;
                }
                if v["type"] == "closing" {
                    closing = v["reason"].as_str().map(str::to_owned);
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert_eq!(errors, 16);
    assert_eq!(closing.as_deref(), Some("too_many_errors"));
}

/// An integrator that stops the WebSocket server without shutting the hub
/// down first: its sessions still say why they close.
#[tokio::test]
async fn a_stopping_websocket_server_says_closing_shutdown() {
    let mut srv = TestServer::builder().serve_own(|hub, listener, stop| async move {
        let config = im_transport_ws::WsConfig {
            workers: 1,
            shutdown_timeout_secs: 2,
            ..Default::default()
        };
        im_transport_ws::serve(listener, hub, config, stop)
            .await
            .unwrap();
    });
    let mut a = Client::connect_ws(srv.addr).await;
    a.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    a.login("alice", PASSWORD).await;
    srv.stop();
    let frames = a.expect_closed().await;
    let last = frames.last().map(|f| f["type"].clone());
    assert_eq!(last, Some(json!("closing")), "{frames:?}");
    assert_eq!(frames.last().unwrap()["reason"], "shutdown", "{frames:?}");
    srv.join();
}
