//! docs/PROTOCOL.md "Framing" and "Requests and replies".

use im_tests::*;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::server;

/// True when the frame carries no `id` (absent or null).
fn no_id(v: &Value) -> bool {
    v.get("id").is_none_or(Value::is_null)
}

/// Sends a raw line and returns the `bad_request` it must get.
async fn bad(c: &mut Client, line: &str) -> Value {
    c.send_line(line).await;
    let v = c.recv().await;
    assert_eq!(v["type"], "error", "{line} -> {v}");
    assert_eq!(v["code"], "bad_request", "{line} -> {v}");
    assert!(v["message"].is_string(), "{line} -> {v}");
    v
}

/// The connection still answers requests.
async fn alive(c: &mut Client) {
    let r = c.request(json!({"type":"ping"})).await;
    assert_eq!(r["type"], "pong", "{r}");
}

/// A ping frame of exactly `len` bytes of UTF-8 (padded with `fill`).
fn ping_of_len(len: usize, fill: char) -> String {
    let base = r#"{"type":"ping","id":1,"pad":""}"#;
    let room = len - base.len();
    let n = room / fill.len_utf8();
    let mut pad: String = std::iter::repeat_n(fill, n).collect();
    while pad.len() < room {
        pad.push('x');
    }
    let s = format!(r#"{{"type":"ping","id":1,"pad":"{pad}"}}"#);
    assert_eq!(s.len(), len);
    s
}

#[tokio::test]
async fn hello_is_the_first_frame() {
    let srv = server().start();
    // `client()` reads the first frame before sending anything.
    let c = srv.client().await;
    assert_eq!(c.hello["type"], "hello");
    assert_eq!(c.hello["protocol"], 1);
    let server = c.hello["server"].as_str().expect("server is a string");
    let (name, version) = server.split_once('/').expect("server is <name>/<version>");
    assert!(!name.is_empty() && !version.is_empty(), "{server}");
}

#[tokio::test]
async fn ping_gets_pong_echoing_id_before_and_after_login() {
    let srv = server().start();
    let mut c = srv.client().await;
    c.send_line(r#"{"type":"ping"}"#).await;
    let v = c.recv().await;
    assert_eq!(v["type"], "pong");
    assert!(no_id(&v), "{v}");
    c.send_line(r#"{"type":"ping","id":"p-1"}"#).await;
    assert_eq!(c.recv().await, json!({"type":"pong","id":"p-1"}));
    c.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    c.login("alice", PASSWORD).await;
    c.send_line(r#"{"type":"ping","id":42}"#).await;
    assert_eq!(c.recv().await, json!({"type":"pong","id":42}));
}

#[tokio::test]
async fn valid_ids_are_echoed_exactly() {
    let srv = server().start();
    let mut c = srv.client().await;
    let ids = vec![
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(""),
        json!("7"),
        json!("x".repeat(64)),
        // 64 characters, 128 bytes: the limit is in characters.
        json!("é".repeat(64)),
    ];
    for id in ids {
        c.send(json!({"type":"ping","id":id.clone()})).await;
        let v = c.recv().await;
        assert_eq!(v["type"], "pong", "{v}");
        assert_eq!(v["id"], id, "id must be echoed unchanged");
    }
    // `null` means absent.
    c.send_line(r#"{"type":"ping","id":null}"#).await;
    let v = c.recv().await;
    assert_eq!(v["type"], "pong");
    assert!(no_id(&v), "{v}");
    // Errors echo the id too.
    c.send_line(r#"{"type":"convs","id":"e-1"}"#).await;
    let v = c.recv().await;
    assert_eq!(v["type"], "error");
    assert_eq!(v["code"], "unauthenticated");
    assert_eq!(v["id"], "e-1");
}

#[tokio::test]
async fn malformed_frames_get_bad_request_and_the_connection_stays_open() {
    let srv = server().start();
    let mut c = srv.client().await;
    let long_id = "x".repeat(65);
    // (line, the id the reply must echo, or None when it cannot be read)
    let cases: Vec<(String, Option<Value>)> = vec![
        (r#"{"type":"ping""#.into(), None),
        ("this is not json".into(), None),
        ("[1,2,3]".into(), None),
        (r#""ping""#.into(), None),
        ("42".into(), None),
        ("null".into(), None),
        (r#"{"type":"no.such.type","id":5}"#.into(), Some(json!(5))),
        (r#"{"id":6}"#.into(), Some(json!(6))),
        (r#"{"type":7,"id":8}"#.into(), Some(json!(8))),
        (r#"{"type":null,"id":9}"#.into(), Some(json!(9))),
        (
            r#"{"type":"contact.add","id":"m1"}"#.into(),
            Some(json!("m1")),
        ),
        (
            r#"{"type":"contact.add","user":5,"id":"m2"}"#.into(),
            Some(json!("m2")),
        ),
        (
            r#"{"type":"contact.add","user":null,"id":"m3"}"#.into(),
            Some(json!("m3")),
        ),
        (
            r#"{"type":"msg.ack","conv":"dm:alice:bob","seq":"1","id":10}"#.into(),
            Some(json!(10)),
        ),
        (
            r#"{"type":"login","username":["alice"],"password":"password123","id":11}"#.into(),
            Some(json!(11)),
        ),
        (
            r#"{"type":"register","username":"alice","id":12}"#.into(),
            Some(json!(12)),
        ),
        (r#"{"type":"ping","id":1.5}"#.into(), None),
        (format!(r#"{{"type":"ping","id":"{long_id}"}}"#), None),
        (r#"{"type":"ping","id":true}"#.into(), None),
        (r#"{"type":"ping","id":[1]}"#.into(), None),
        (r#"{"type":"ping","id":{"n":1}}"#.into(), None),
        (r#"{"type":"ping","id":9223372036854775808}"#.into(), None),
        (r#"{"type":"ping","id":-9223372036854775809}"#.into(), None),
    ];
    for (line, id) in cases {
        let v = bad(&mut c, &line).await;
        match id {
            Some(id) => assert_eq!(v["id"], id, "{line} -> {v}"),
            None => assert!(no_id(&v), "{line} -> {v}"),
        }
        alive(&mut c).await;
    }
    // Duplicate keys, at the top and nested.
    bad(&mut c, r#"{"type":"ping","type":"ping"}"#).await;
    alive(&mut c).await;
    bad(&mut c, r#"{"type":"ping","x":{"a":1,"a":2}}"#).await;
    alive(&mut c).await;
    bad(&mut c, r#"{"id":1,"type":"ping","id":2}"#).await;
    alive(&mut c).await;
}

tcp_only! {
    #[tokio::test]
    async fn a_line_that_is_not_utf8_gets_bad_request_and_the_connection_stays_open() {
        let srv = server().start();
        let mut c = srv.client().await;
        c.send_bytes(b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}\n")
            .await;
        let v = c.recv().await;
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["code"], "bad_request", "{v}");
        alive(&mut c).await;
    }
}

#[tokio::test]
async fn malformed_frames_after_login_keep_the_session() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let v = bad(&mut a, r#"{"type":"presence.set","status":7,"id":3}"#).await;
    assert_eq!(v["id"], 3);
    bad(&mut a, r#"{"type":"msg.send","to":"bob","body":{"x":1}}"#).await;
    bad(
        &mut a,
        r#"{"type":"history","conv":"dm:alice:bob","limit":"5"}"#,
    )
    .await;
    // Still logged in as alice.
    let r = a.ok(json!({"type":"contact.list"})).await;
    assert_eq!(r["contacts"], json!([]));
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_null_means_absent() {
    let srv = server().start();
    let mut c = srv.client().await;
    c.send_line(r#"{"type":"ping","id":1,"extra":{"deep":[1,2,{"x":null}]},"more":true}"#)
        .await;
    assert_eq!(c.recv().await, json!({"type":"pong","id":1}));
    c.ok(json!({"type":"register","username":"alice","password":PASSWORD,"color":"blue"}))
        .await;
    // token: null is "no token", so this is a plain password login.
    let ok = c
        .ok(json!({"type":"login","username":"alice","password":PASSWORD,"token":null,"device":null}))
        .await;
    assert_eq!(ok["user"], "alice");
    c.expect("roster").await;
    c.expect("synced").await;
    let r = c.ok(json!({"type":"devices"})).await;
    assert_eq!(
        r["devices"][0]["device"], "default",
        "null device is the default: {r}"
    );
}

#[tokio::test]
async fn every_frame_gets_exactly_one_reply() {
    let srv = server().start();
    srv.register("bob").await;
    let mut a = srv.user("alice").await;
    // Many frames, good and bad, in one write, without waiting.
    let frames: Vec<(Value, String)> = vec![
        (json!(1), r#"{"type":"ping","id":1}"#.into()),
        (json!("two"), r#"{"type":"contact.list","id":"two"}"#.into()),
        (json!(3), r#"{"type":"convs","id":3}"#.into()),
        (json!(4), r#"{"type":"nope","id":4}"#.into()),
        (
            json!(5),
            r#"{"type":"contact.add","user":"alice","id":5}"#.into(),
        ),
        (
            json!(6),
            r#"{"type":"msg.send","to":"zed","body":"x","id":6}"#.into(),
        ),
        (
            json!(7),
            r#"{"type":"msg.send","to":"bob","body":"x","id":7}"#.into(),
        ),
        (
            json!(8),
            r#"{"type":"history","conv":"dm:alice:bob","id":8}"#.into(),
        ),
        (json!(9), r#"{"type":"contact.blocks","id":9}"#.into()),
        (
            json!(10),
            r#"{"type":"presence.set","status":"away","id":10}"#.into(),
        ),
        (
            json!(11),
            r#"{"type":"login","username":"alice","password":"password123","id":11}"#.into(),
        ),
        (
            json!(12),
            r#"{"type":"register","username":"alice","password":"password123","id":12}"#.into(),
        ),
        (json!(13), r#"{"type":"devices","id":13}"#.into()),
        (
            json!(14),
            r#"{"type":"msg.ack","conv":"dm:alice:bob","seq":1,"id":14}"#.into(),
        ),
        (
            json!(15),
            r#"{"type":"contact.add","user":"bob","id":15}"#.into(),
        ),
        (json!(16), r#"{"type":"typing","to":"bob","id":16}"#.into()),
    ];
    let mut batch = String::new();
    for _ in 0..5 {
        for (_, f) in &frames {
            batch.push_str(f);
            batch.push('\n');
        }
    }
    a.send_bytes(batch.as_bytes()).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for _ in 0..frames.len() * 5 {
        let v = a.recv().await;
        assert!(
            matches!(v["type"].as_str(), Some("ok" | "error" | "pong")),
            "only replies expected here, got {v}"
        );
        *count.entry(v["id"].to_string()).or_default() += 1;
    }
    for (id, _) in &frames {
        assert_eq!(count.get(&id.to_string()), Some(&5), "id {id}: {count:?}");
    }
    a.expect_silence(300).await;
}

#[tokio::test]
async fn a_reply_comes_before_the_events_its_request_causes() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    a.ok(json!({"type":"contact.add","user":"bob"})).await;
    b.expect("contact.request").await;
    b.send_line(r#"{"type":"contact.accept","user":"alice","id":"acc"}"#)
        .await;
    let first = b.recv().await;
    assert_eq!(first, json!({"type":"ok","id":"acc"}));
    assert_eq!(b.expect("contact.added").await["user"], "alice");
    assert_eq!(b.expect("presence").await["user"], "alice");
    a.expect("contact.added").await;
    a.expect("presence").await;
    // presence.set from a second session: that session gets only its ok,
    // the other gets the event.
    let mut b2 = srv.user_on("bob", "laptop").await;
    b2.send_line(r#"{"type":"presence.set","status":"busy","id":"ps"}"#)
        .await;
    assert_eq!(b2.recv().await, json!({"type":"ok","id":"ps"}));
    assert_eq!(b.expect("presence").await["status"], "busy");
    b2.expect_silence(200).await;
}

#[tokio::test]
async fn sixteen_consecutive_bad_requests_close_the_connection() {
    let srv = server().start();
    let mut c = srv.client().await;
    let mut batch = String::new();
    for i in 1..=16 {
        batch.push_str(&format!("{{\"type\":\"bogus\",\"id\":{i}}}\n"));
    }
    c.send_bytes(batch.as_bytes()).await;
    let seen = c.expect_closed().await;
    let ids: Vec<Value> = seen
        .iter()
        .filter(|v| v["type"] == "error" && v["code"] == "bad_request")
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(
        ids,
        (1..=16).map(|i| json!(i)).collect::<Vec<_>>(),
        "{seen:?}"
    );
}

#[tokio::test]
async fn sixteen_bad_requests_after_login_close_too() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    for _ in 0..15 {
        bad(&mut a, "{").await;
    }
    a.send_line("{").await;
    let seen = a.expect_closed().await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["code"], "bad_request");
    assert_eq!(
        seen[1],
        json!({"type":"closing","reason":"too_many_errors"})
    );
}

#[tokio::test]
async fn a_good_frame_resets_the_bad_request_streak() {
    let srv = server().start();
    let mut c = srv.client().await;
    for _ in 0..3 {
        for _ in 0..15 {
            bad(&mut c, "{oops").await;
        }
        alive(&mut c).await;
    }
    // Another kind of error is not a bad_request either.
    for _ in 0..15 {
        bad(&mut c, "{oops").await;
    }
    c.err(json!({"type":"convs"}), "unauthenticated").await;
    for _ in 0..15 {
        bad(&mut c, "{oops").await;
    }
    alive(&mut c).await;
}

#[tokio::test]
async fn an_oversized_frame_gets_too_large_and_the_connection_closes() {
    let srv = server().config(|c| c.limits.max_frame = 1024).start();
    let mut c = srv.client().await;
    alive(&mut c).await;
    c.send_line(&ping_of_len(1500, 'x')).await;
    let seen = c.expect_closed().await;
    assert_eq!(seen.len(), 1, "only the error, no pong: {seen:?}");
    assert_eq!(seen[0]["type"], "error");
    assert_eq!(seen[0]["code"], "too_large");
}

#[tokio::test]
async fn an_oversized_frame_is_refused_before_its_newline() {
    let srv = server().config(|c| c.limits.max_frame = 1024).start();
    let mut a = srv.user("alice").await;
    // No terminator: the server must not wait for one.
    a.send_bytes(format!(r#"{{"type":"ping","pad":"{}"#, "y".repeat(3000)).as_bytes())
        .await;
    let seen = a.expect_closed().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["code"], "too_large");
}

#[tokio::test]
async fn max_frame_counts_bytes_without_the_terminator() {
    let srv = server().config(|c| c.limits.max_frame = 256).start();
    let mut c = srv.client().await;
    // Exactly max_frame bytes, of one-byte and of two-byte characters.
    c.send_line(&ping_of_len(256, 'x')).await;
    assert_eq!(c.recv().await, json!({"type":"pong","id":1}));
    c.send_line(&ping_of_len(256, 'é')).await;
    assert_eq!(c.recv().await, json!({"type":"pong","id":1}));
    // One byte over (fewer characters than bytes: bytes count).
    let over = ping_of_len(257, 'é');
    assert!(over.chars().count() < 256);
    c.send_line(&over).await;
    let seen = c.expect_closed().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["code"], "too_large");
}

#[tokio::test]
async fn the_default_max_frame_is_65536_bytes() {
    let srv = server().start();
    let mut c = srv.client().await;
    c.send_line(&ping_of_len(65536, 'x')).await;
    assert_eq!(c.recv().await, json!({"type":"pong","id":1}));
    c.send_line(&ping_of_len(65537, 'x')).await;
    let seen = c.expect_closed().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["code"], "too_large");
}

#[tokio::test]
async fn server_frames_are_not_limited_by_max_frame() {
    let srv = server().config(|c| c.limits.max_frame = 2048).start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for i in 0..10 {
        a.send_dm("bob", &format!("{i}{}", "z".repeat(1500))).await;
    }
    // A history page far bigger than max_frame.
    let r = b.ok(json!({"type":"history","conv":"dm:alice:bob"})).await;
    assert_eq!(r["messages"].as_array().unwrap().len(), 10);
    assert!(r.to_string().len() > 10_000);
}

tcp_only! {
    #[tokio::test]
    async fn crlf_and_empty_lines_are_tolerated() {
        let srv = server().start();
        let mut c = srv.client().await;
        c.send_bytes(b"\n\n\r\n{\"type\":\"ping\",\"id\":1}\r\n\n\n{\"type\":\"ping\",\"id\":2}\n\r\n")
            .await;
        assert_eq!(c.recv().await, json!({"type":"pong","id":1}));
        assert_eq!(c.recv().await, json!({"type":"pong","id":2}));
        // Empty lines get no reply at all, and do not count as bad requests.
        c.expect_silence(300).await;
        c.send_bytes("\n".repeat(40).as_bytes()).await;
        c.expect_silence(200).await;
        c.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
            .await;
        // A CRLF login works like any other frame.
        c.send_bytes(b"{\"type\":\"login\",\"username\":\"alice\",\"password\":\"password123\",\"id\":\"l\"}\r\n")
            .await;
        let ok = c.recv().await;
        assert_eq!(ok["type"], "ok", "{ok}");
        assert_eq!(ok["id"], "l");
    }

    #[tokio::test]
    async fn a_crlf_terminator_does_not_count_towards_max_frame() {
        let srv = server().config(|c| c.limits.max_frame = 256).start();
        let mut c = srv.client().await;
        c.send_bytes(format!("{}\r\n", ping_of_len(256, 'é')).as_bytes())
            .await;
        assert_eq!(c.recv().await, json!({"type":"pong","id":1}));
    }
}

#[tokio::test]
async fn checks_run_in_protocol_order() {
    let srv = server().config(|c| c.limits.max_body = 16).start();
    let big = "b".repeat(17);
    // Before login: a malformed frame is bad_request, not unauthenticated.
    let mut c = srv.client().await;
    c.err(json!({"type":"contact.add"}), "bad_request").await;
    c.err(json!({"type":"msg.send","to":5,"body":"x"}), "bad_request")
        .await;
    c.err(
        json!({"type":"presence.set","status":"nope"}),
        "bad_request",
    )
    .await;
    c.err(json!({"type":"msg.ack","conv":"dm:a:b"}), "bad_request")
        .await;

    srv.register("bob").await;
    srv.register("carol").await;
    let mut a = srv.user("alice").await;
    let mut m = srv.user("mallory").await;
    // bad_request before too_large.
    a.err(
        json!({"type":"msg.send","to":"alice","body":big}),
        "bad_request",
    )
    .await;
    a.err(
        json!({"type":"msg.send","to":"bob","room":"rust","body":big}),
        "bad_request",
    )
    .await;
    a.err(
        json!({"type":"presence.set","status":"gone","note":"n".repeat(300)}),
        "bad_request",
    )
    .await;
    a.err(
        json!({"type":"msg.send","to":"bob","body":big,"client_id":"c".repeat(65)}),
        "bad_request",
    )
    .await;
    // too_large before not_found and forbidden.
    a.err(
        json!({"type":"msg.send","to":"zed","body":big}),
        "too_large",
    )
    .await;
    a.err(
        json!({"type":"msg.send","to":"bob","body":big}),
        "too_large",
    )
    .await;
    // not_found before forbidden: an unknown user is not a contact either.
    a.err(
        json!({"type":"msg.send","to":"zed","body":"x"}),
        "not_found",
    )
    .await;
    a.err(json!({"type":"typing","to":"zed"}), "not_found")
        .await;
    // bad_request before not_found.
    a.err(
        json!({"type":"history","conv":"dm:bob:carol","limit":0}),
        "bad_request",
    )
    .await;
    // too_large before forbidden: blocked both ways.
    a.ok(json!({"type":"contact.block","user":"mallory"})).await;
    m.ok(json!({"type":"contact.block","user":"alice"})).await;
    a.err(
        json!({"type":"msg.send","to":"mallory","body":big}),
        "too_large",
    )
    .await;
    a.err(
        json!({"type":"msg.send","to":"mallory","body":"x"}),
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn login_field_errors_win_over_conflict() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let token = a.token.clone().unwrap();
    // Already logged in, but the frame itself is wrong: bad_request first.
    a.err(
        json!({"type":"login","username":"alice","password":PASSWORD,"token":token}),
        "bad_request",
    )
    .await;
    a.err(json!({"type":"login","username":"alice"}), "bad_request")
        .await;
    a.err(
        json!({"type":"login","username":"alice","password":PASSWORD,"device":"d".repeat(65)}),
        "bad_request",
    )
    .await;
    a.err(
        json!({"type":"login","username":"alice","password":PASSWORD}),
        "conflict",
    )
    .await;
}
