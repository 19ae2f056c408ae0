//! Arbitrary input as client frames (one per line, at most 64) to a
//! logged-in session of an in-memory hub (`im_core::testing`), through
//! request routing and every handler's validation.
//!
//! Checked: no panic anywhere (the fuzzer aborts on one, on any thread);
//! every frame gets exactly one reply (`ok`, `error` or `pong`) with the
//! `id` the decoder read, until the session closes for a reason the
//! protocol gives (an oversized frame, 16 undecodable frames in a row,
//! `logout`, a revoked device, the request rate limit); besides replies
//! only events arrive; no reply is `internal`. After the frames, a `ping`
//! must get its `pong` next, so no stray reply was queued.
//!
//! One hub serves every run (the state accumulates, like a real server's);
//! each run logs in on a new connection.

#![no_main]

use std::cell::RefCell;
use std::time::Duration;

use im_core::protocol::{decode, ClientFrame, RequestId};
use im_core::testing::MemoryClient;
use im_core::{Config, Hub};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// Small, so that oversized frames are within the fuzzer's reach.
const MAX_FRAME: usize = 1024;
const STREAK: u32 = 16;
const PASSWORD: &str = "password123";
const WAIT: Duration = Duration::from_secs(10);
/// What the server may send unasked (docs/PROTOCOL.md, server events).
const EVENTS: &[&str] = &[
    "msg",
    "gap",
    "typing",
    "receipt",
    "presence",
    "contact.request",
    "contact.added",
    "contact.removed",
    "room.joined",
    "room.left",
    "room.invited",
    "room.topic",
];

struct World {
    hub: Hub,
    /// The user the runs log in as, and its current token.
    user: String,
    token: String,
    /// Users registered so far (a run may change a password).
    users: u32,
}

thread_local! {
    static RUNNER: actix_rt::SystemRunner = actix_rt::System::new();
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

async fn recv(c: &mut MemoryClient) -> Option<Value> {
    let f = tokio::time::timeout(WAIT, c.recv())
        .await
        .expect("no frame from the server within 10 s")?;
    Some(serde_json::from_str(&f).expect("server sent bad JSON"))
}

/// Sends `frame` and returns its reply, skipping events.
async fn request(c: &mut MemoryClient, frame: Value) -> Value {
    c.send(&frame.to_string()).await.expect("session closed");
    loop {
        let v = recv(c).await.expect("closed before the reply");
        if matches!(v["type"].as_str(), Some("ok" | "error" | "pong")) {
            return v;
        }
    }
}

/// Reads the login's `roster`, replay and `synced`.
async fn synced(c: &mut MemoryClient) {
    loop {
        let v = recv(c).await.expect("closed during login");
        if v["type"] == "synced" {
            return;
        }
    }
}

/// Registers `name` and a contact for it, with a room, on `hub`.
async fn set_up_user(hub: &Hub, name: &str) -> String {
    let peer = format!("{name}-peer");
    let mut c = MemoryClient::connect(hub);
    recv(&mut c).await.expect("hello");
    for u in [name, peer.as_str()] {
        request(
            &mut c,
            json!({"type":"register","username":u,"password":PASSWORD}),
        )
        .await;
    }
    let mut p = MemoryClient::connect(hub);
    recv(&mut p).await.expect("hello");
    request(
        &mut p,
        json!({"type":"login","username":peer,"password":PASSWORD}),
    )
    .await;
    synced(&mut p).await;
    let ok = request(
        &mut c,
        json!({"type":"login","username":name,"password":PASSWORD}),
    )
    .await;
    synced(&mut c).await;
    request(&mut c, json!({"type":"contact.add","user":peer})).await;
    request(&mut p, json!({"type":"contact.accept","user":name})).await;
    request(
        &mut c,
        json!({"type":"room.create","name":format!("{name}-room")}),
    )
    .await;
    request(&mut c, json!({"type":"msg.send","to":peer,"body":"hi"})).await;
    c.disconnect();
    p.disconnect();
    ok["token"].as_str().expect("token").to_owned()
}

async fn world() -> World {
    let mut c = Config::default();
    c.auth.bcrypt_cost = 4;
    c.auth.login_failures_per_user = 1_000_000;
    c.auth.login_failures_per_peer = 1_000_000;
    c.auth.register_per_peer = 1_000_000;
    c.limits.max_frame = MAX_FRAME;
    let hub = Hub::in_memory(c);
    let token = set_up_user(&hub, "fuzz0").await;
    World {
        hub,
        user: "fuzz0".into(),
        token,
        users: 1,
    }
}

/// What the server must answer to one frame.
enum Expect {
    TooLarge,
    Bad(Option<RequestId>),
    Reply(Option<RequestId>, Box<ClientFrame>),
}

fn id_is(v: &Value, id: &Option<RequestId>) -> bool {
    match id {
        None => v.get("id").is_none(),
        Some(RequestId::Int(i)) => v["id"] == json!(i),
        Some(RequestId::Str(s)) => v["id"] == json!(s),
    }
}

/// One run: log in, send the frames, check every reply.
async fn run(w: &mut World, data: &[u8]) {
    let mut c = MemoryClient::connect(&w.hub);
    recv(&mut c).await.expect("hello");
    let r = request(
        &mut c,
        json!({"type":"login","username":w.user,"token":w.token}),
    )
    .await;
    if r["type"] != "ok" {
        // The last run logged out, revoked the device or changed the
        // password: log in again, or start over with a new user.
        let r = request(
            &mut c,
            json!({"type":"login","username":w.user,"password":PASSWORD}),
        )
        .await;
        if r["type"] == "ok" {
            w.token = r["token"].as_str().expect("token").to_owned();
        } else {
            w.user = format!("fuzz{}", w.users);
            w.users += 1;
            w.token = set_up_user(&w.hub, &w.user).await;
        }
        c.disconnect();
        return;
    }
    synced(&mut c).await;

    let mut streak = 0;
    for raw in data.split(|b| *b == b'\n').take(64) {
        // The in-memory transport carries text only (invalid UTF-8 is the
        // `decode` target's business).
        let text = String::from_utf8_lossy(raw);
        let frame = text.as_bytes();
        let expect = if frame.len() > MAX_FRAME {
            Expect::TooLarge
        } else {
            match decode(frame) {
                Ok(r) => Expect::Reply(r.id, Box::new(r.frame)),
                Err(bad) => Expect::Bad(bad.id),
            }
        };
        // A refused hand-over means the session is over: the reply
        // (too_large) or the close tells why.
        let _ = c.send(&text).await;
        let v = loop {
            let Some(v) = recv(&mut c).await else {
                panic!("closed without a reply to {text:?}");
            };
            match v["type"].as_str() {
                Some("ok" | "error" | "pong") => break v,
                Some("closing") => {
                    assert_eq!(v["reason"], "rate_limited", "{v}");
                    return;
                }
                Some(t) if EVENTS.contains(&t) => continue,
                _ => panic!("neither a reply nor an event: {v}"),
            }
        };
        let (ty, code) = (v["type"].as_str(), v["code"].as_str());
        assert_ne!(code, Some("internal"), "{v}");
        if code == Some("rate_limited") {
            streak = 0;
            continue;
        }
        match expect {
            Expect::TooLarge => {
                assert_eq!(code, Some("too_large"), "{v}");
                assert!(recv(&mut c).await.is_none(), "still open after too_large");
                return;
            }
            Expect::Bad(id) => {
                assert_eq!(code, Some("bad_request"), "{v}");
                assert!(id_is(&v, &id), "{v} should have id {id:?}");
                streak += 1;
                if streak >= STREAK {
                    while recv(&mut c).await.is_some() {}
                    return;
                }
            }
            Expect::Reply(id, frame) => {
                assert!(id_is(&v, &id), "{v} should have id {id:?}");
                let ping = matches!(*frame, ClientFrame::Ping {});
                assert_eq!(ping, ty == Some("pong"), "{v}");
                streak = 0;
                let ends = ty == Some("ok")
                    && matches!(
                        *frame,
                        ClientFrame::Logout {}
                            | ClientFrame::DeviceRevoke { .. }
                            | ClientFrame::PasswordChange { .. }
                    );
                if ends {
                    c.disconnect();
                    return;
                }
            }
        }
    }
    let v = request(&mut c, json!({"type":"ping","id":"end"})).await;
    assert_eq!(
        v,
        json!({"type":"pong","id":"end"}),
        "a stray reply was queued"
    );
    c.disconnect();
}

fuzz_target!(|data: &[u8]| {
    RUNNER.with(|sys| {
        WORLD.with(|cell| {
            let mut slot = cell.borrow_mut();
            let w = slot.get_or_insert_with(|| sys.block_on(world()));
            sys.block_on(run(w, data));
        })
    });
});
