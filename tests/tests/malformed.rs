//! The malformed-input battery: 10,000 seeded mutations of valid frames of
//! every request kind, sent from several logged-in connections while two
//! other users chat, over TCP and over WebSocket.
//!
//! What must hold (docs/PROTOCOL.md, "Framing", "Exactly one reply",
//! "Closing, limits and floods"):
//! - every frame gets exactly one reply (`ok`, `error` or `pong`) carrying
//!   the `id` the server could read from it, until the server closes the
//!   connection; apart from replies only events arrive;
//! - the server closes only for a reason the protocol names: an oversized
//!   frame (`too_large`, no `id`), 16 undecodable frames in a row, a
//!   `logout`, or a `closing` frame (`rate_limited` once the request rate
//!   limit exists); the battery then logs in again and goes on;
//! - no reply is `internal`;
//! - the chatting users get every one of each other's messages, in `seq`
//!   order, with no hole in the conversation;
//! - the server still answers a `ping` on a fresh connection at the end.
//!
//! The mutations are deterministic for a seed: set `MALFORMED_SEED` to
//! replay a failing run (the seed is printed when a run fails).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use im_core::protocol::{decode, ClientFrame, RequestId};
use im_core::Config;
use im_tests::*;
use serde_json::{json, Value};

/// Mutated frames per test, spread over [`FUZZERS`] connections.
const MUTATIONS: usize = 10_000;
/// Connections sending mutated frames at the same time.
const FUZZERS: usize = 4;
/// Undecodable frames in a row after which the server closes.
const STREAK: u32 = 16;
/// Messages each chatting user sends at least ...
const MIN_CHAT: usize = 200;
/// ... and at most, while the mutated frames are still being sent.
const MAX_CHAT: usize = 3000;
/// Every this many mutations, a plain `ping` with a known id checks that
/// no stray reply is queued.
const PROBE_EVERY: usize = 50;

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

const CODES: &[&str] = &[
    "bad_request",
    "unauthenticated",
    "invalid_credentials",
    "account_suspended",
    "username_taken",
    "invalid_username",
    "weak_password",
    "not_found",
    "forbidden",
    "rate_limited",
    "too_large",
    "conflict",
    "unavailable",
    "internal",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_over_tcp_get_one_reply_each() {
    battery(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_over_websocket_get_one_reply_each() {
    battery(Transport::Ws).await;
}

// ---------------------------------------------------------------------------
// The run: setup, fuzzers and chatters side by side, the final checks.
// ---------------------------------------------------------------------------

async fn battery(transport: Transport) {
    let seed = std::env::var("MALFORMED_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            t ^ (transport as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        });
    let _report = SeedOnFailure(seed, transport);
    let started = Instant::now();

    let srv = TestServer::builder()
        .transport(transport)
        .config(generous)
        .start();
    let max_frame = Config::default().limits.max_frame;

    // The two users who chat through it all.
    let mut ann = srv.user("chat-ann").await;
    let mut ben = srv.user("chat-ben").await;
    srv.befriend(&mut ann, &mut ben).await;

    // The fuzzing users, in contact pairs, each with a public room, a file
    // sent to its peer and an unfinished upload, so that the valid frames
    // the mutations start from can all succeed.
    let mut fuzzers = Vec::new();
    for pair in 0..FUZZERS / 2 {
        let (na, nb) = (format!("fz-{}", 2 * pair), format!("fz-{}", 2 * pair + 1));
        let mut a = srv.user(&na).await;
        let mut b = srv.user(&nb).await;
        srv.befriend(&mut a, &mut b).await;
        let ta = prepare(&mut a, &nb).await;
        let tb = prepare(&mut b, &na).await;
        fuzzers.push((a, ta));
        fuzzers.push((b, tb));
    }

    let done = Arc::new(AtomicBool::new(false));
    let chat_a = tokio::spawn(chat(ann, "chat-ben", done.clone()));
    let chat_b = tokio::spawn(chat(ben, "chat-ann", done.clone()));

    let per = MUTATIONS / FUZZERS;
    let mut tasks = Vec::new();
    for (i, (conn, target)) in fuzzers.into_iter().enumerate() {
        let f = Fuzzer {
            seed,
            index: i,
            transport,
            addr: srv.addr,
            http: srv.http,
            user: target.me.clone(),
            conn: Some(conn),
            lo: 0,
            hi: 0,
            max_frame,
            stats: Stats::default(),
        };
        let corpus = corpus(&target);
        let rng = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        tasks.push(tokio::spawn(f.run(corpus, rng, per, i * per)));
    }
    let mut stats = Stats::default();
    for t in tasks {
        match t.await {
            Ok(s) => stats.add(&s),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let fuzz_time = started.elapsed();
    done.store(true, Ordering::Relaxed);

    let a = match chat_a.await {
        Ok(c) => c,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let b = match chat_b.await {
        Ok(c) => c,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let (a, b) = finish_chat(a, b).await;

    // The server is alive and well.
    let mut fresh = srv.client().await;
    let r = fresh.request(json!({"type":"ping"})).await;
    assert_eq!(r["type"], "pong", "{r}");

    println!(
        "{transport:?} seed {seed}: {} frames in {fuzz_time:?} ({:?} in all), {} reconnects; \
         closes: {} too_large, {} after {STREAK} bad frames, {} logout, {} closing, {} unannounced; \
         replies: {:?}; {} and {} chat messages",
        stats.frames,
        started.elapsed(),
        stats.reconnects,
        stats.too_large_closes,
        stats.streak_closes,
        stats.logout_closes,
        stats.closing_frames,
        stats.unannounced_closes,
        stats.codes,
        a.sent.len(),
        b.sent.len(),
    );
}

/// Prints the seed when the test fails, so the run can be replayed.
struct SeedOnFailure(u64, Transport);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "malformed battery over {:?} failed; replay with MALFORMED_SEED={}",
                self.1, self.0
            );
        }
    }
}

/// The test configuration for a flood of bad frames from one address:
/// throttles that would refuse the battery's own logins and registrations,
/// and the request rate limit, are lifted (the battery still accepts
/// `rate_limited` replies and `closing` frames).
fn generous(c: &mut Config) {
    c.auth.login_failures_per_user = 1_000_000;
    c.auth.login_failures_per_peer = 1_000_000;
    c.auth.register_per_peer = 1_000_000;
    c.limits.frames_per_sec = 1_000_000;
    c.limits.frames_burst = 1_000_000;
    c.limits.flood_close_after = 1_000_000;
}

// ---------------------------------------------------------------------------
// The corpus: valid frames of every request kind.
// ---------------------------------------------------------------------------

/// What a fuzzing user's valid frames refer to.
struct Target {
    me: String,
    peer: String,
    room: String,
    conv: String,
    file: String,
    upload: String,
}

/// A room, a message and a file to the peer, and an unfinished upload.
async fn prepare(c: &mut Client, peer: &str) -> Target {
    let me = c.user.clone().expect("logged in");
    let room = format!("room-{me}");
    c.ok(json!({"type":"room.create","name":room,"topic":"fuzzing"}))
        .await;
    let file = c
        .upload("cat.png", Some("image/png"), &random_bytes(100, 7))
        .await;
    let r = c
        .ok(json!({"type":"msg.send","to":peer,"body":"hi","attachment":file}))
        .await;
    let conv = r["conv"].as_str().expect("conv").to_owned();
    let upload = c.file_begin("partial.bin", None, 1000).await;
    Target {
        me,
        peer: peer.to_owned(),
        room,
        conv,
        file,
        upload,
    }
}

fn corpus(t: &Target) -> Vec<Value> {
    let Target {
        me,
        peer,
        room,
        conv,
        file,
        upload,
    } = t;
    let room_conv = format!("room:{room}");
    let peer_room = format!("room-{peer}");
    vec![
        json!({"type":"ping"}),
        json!({"type":"register","username":"newbie","password":"password123"}),
        json!({"type":"login","username":me,"password":PASSWORD,"device":"laptop"}),
        json!({"type":"login","username":me,"token":"abcdef0123456789abcdef"}),
        json!({"type":"devices"}),
        // A device never used: `not_found`, the connection stays.
        json!({"type":"device.revoke","device":"phone"}),
        // A wrong old password: refused, so the password never changes.
        json!({"type":"password.change","old":"not-my-password","new":"newpassword456"}),
        json!({"type":"logout"}),
        json!({"type":"contact.add","user":peer}),
        json!({"type":"contact.accept","user":peer}),
        json!({"type":"contact.decline","user":"nobody-here"}),
        json!({"type":"contact.remove","user":"nobody-here"}),
        json!({"type":"contact.block","user":"nobody-here"}),
        json!({"type":"contact.unblock","user":"nobody-here"}),
        json!({"type":"contact.blocks"}),
        json!({"type":"contact.list"}),
        json!({"type":"presence.set","status":"away","note":"at lunch"}),
        json!({"type":"presence.set","status":"online"}),
        json!({"type":"msg.send","to":peer,"body":"hello there","client_id":"c-1"}),
        json!({"type":"msg.send","room":room,"body":"hello room"}),
        json!({"type":"msg.send","to":peer,"body":"","attachment":file}),
        json!({"type":"typing","to":peer}),
        json!({"type":"typing","room":room}),
        json!({"type":"msg.ack","conv":conv,"seq":1,"read":true}),
        json!({"type":"msg.ack","conv":room_conv,"seq":1}),
        json!({"type":"history","conv":conv,"before":10,"limit":20}),
        json!({"type":"history","conv":room_conv}),
        json!({"type":"convs"}),
        json!({"type":"room.create","name":"newroom","topic":"a topic","public":false}),
        json!({"type":"room.list","q":"room"}),
        json!({"type":"room.join","name":peer_room}),
        json!({"type":"room.leave","name":peer_room}),
        json!({"type":"room.invite","name":room,"user":peer}),
        json!({"type":"room.invites"}),
        json!({"type":"room.members","name":room}),
        json!({"type":"room.topic","name":room,"topic":"new topic"}),
        json!({"type":"room.kick","name":room,"user":peer}),
        json!({"type":"room.unban","name":room,"user":peer}),
        json!({"type":"file.begin","name":"cat.png","mime":"image/png","size":1000}),
        json!({"type":"file.chunk","file":upload,"offset":0,"data":"aGVsbG8="}),
        json!({"type":"file.status","file":upload}),
        json!({"type":"file.end","file":upload}),
        json!({"type":"file.read","file":file,"offset":0,"len":100}),
        json!({"type":"file.url","file":file}),
    ]
}

// ---------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------

/// xorshift64*: small, fast and the same everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One mutated frame.
struct Mutation {
    bytes: Vec<u8>,
    what: &'static str,
}

/// Stands for a field's value in a frame's text, to be replaced by raw
/// text that a `Value` cannot hold (1e400, deep nesting, bad escapes).
const SLOT: &str = "@@slot@@";

/// `frame` as text with `key`'s value replaced by the raw text `raw`.
fn splice_raw(frame: &Value, key: &str, raw: &str) -> Vec<u8> {
    let mut f = frame.clone();
    f[key] = json!(SLOT);
    f.to_string()
        .replacen(&format!("\"{SLOT}\""), raw, 1)
        .into_bytes()
}

/// A field of `frame` to mutate: any but `type` usually, `type` sometimes,
/// a new one when the frame has no other.
fn pick_key(rng: &mut Rng, frame: &Value) -> String {
    let keys: Vec<&String> = frame
        .as_object()
        .map(|m| m.keys().filter(|k| *k != "type").collect())
        .unwrap_or_default();
    if keys.is_empty() || rng.chance(10) {
        return if rng.chance(50) { "type" } else { "extra" }.to_owned();
    }
    (*rng.pick(&keys)).clone()
}

/// A field holding a string, or a new one.
fn pick_string_key(rng: &mut Rng, frame: &Value) -> String {
    let keys: Vec<&String> = frame
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.is_string())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() || rng.chance(10) {
        return "pad".to_owned();
    }
    (*rng.pick(&keys)).clone()
}

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xc0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
];

const HUGE_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551616",
    "18446744073709551615",
    "-9223372036854775809",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "123456789012345678901234567890",
    "-0",
    "0.5",
    "1e3",
    "1E+2",
    "-1",
    "4294967296",
    "65536",
];

const BAD_IDS: &[&str] = &[
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "1.0",
    "1e3",
    "-0",
    "0",
    "\"\"",
    "null",
    "true",
    "[]",
    "{}",
    "[1]",
    "{\"a\":1}",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\ud83d\\ude00\"",
];

const ODD_STRINGS: &[&str] = &[
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u00e9\"",
    "\"\\uffff\"",
    "\"\\/\"",
    "\"\\x41\"",
    "\"\\u12\"",
    "\"\\\"",
    "\"a\tb\"",
    "\"\\u0000\"",
    "\"\u{feff}bom\"",
    "\"\u{202e}rtl\"",
];

const NOT_OBJECTS: &[&str] = &[
    "[]",
    "\"ping\"",
    "42",
    "null",
    "true",
    "[{\"type\":\"ping\"}]",
    " ",
    "{}",
    "{\"type\":null}",
    "{\"type\":\"ping\"",
    "{\"type\":\"ping\"}}",
    "{\"type\":\"ping\"} {\"type\":\"ping\"}",
    "{\"type\":\"ping\",}",
    "{'type':'ping'}",
    "{\"type\":\"ping\"}\u{0}",
    "\u{feff}{\"type\":\"ping\"}",
];

const TYPES: &[&str] = &[
    "",
    "pingg",
    "PING",
    "ping ",
    "msg",
    "file.",
    "room.",
    "msg.send\u{0}",
    "hello",
    "ok",
    "error",
    "closing",
    "msg",
    "roster",
];

fn any_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(1.5),
        5 => json!(""),
        6 => json!("x"),
        7 => json!([]),
        8 => json!({}),
        9 => json!([1, "a", null]),
        10 => json!({"k": "v"}),
        _ => json!(u64::MAX),
    }
}

fn mutate(rng: &mut Rng, corpus: &[Value], max_frame: usize, id: u64) -> Mutation {
    let mut frame = rng.pick(corpus).clone();
    frame["id"] = json!(id);
    let text = frame.to_string().into_bytes();
    let (mut bytes, what) = match rng.below(16) {
        0 => {
            let mut b = text;
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            (b, "bit flips")
        }
        1 => {
            let cut = rng.below(text.len());
            (text[..cut].to_vec(), "truncation")
        }
        2 => {
            let mut b = text;
            let at = rng.below(b.len() + 1);
            let bad = rng.pick(INVALID_UTF8);
            if rng.chance(50) && at < b.len() {
                b.splice(at..at + 1, bad.iter().copied());
            } else {
                b.splice(at..at, bad.iter().copied());
            }
            (b, "invalid UTF-8")
        }
        3 => {
            let key = pick_key(rng, &frame);
            let depth = *rng.pick(&[129usize, 1000, 10_000]);
            let raw = if rng.chance(70) {
                let close = if rng.chance(80) { depth } else { depth / 2 };
                format!("{}{}", "[".repeat(depth), "]".repeat(close))
            } else {
                let depth = depth.min(5000);
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
            };
            (splice_raw(&frame, &key, &raw), "deep nesting")
        }
        4 => {
            let key = if rng.chance(20) {
                "id".to_owned()
            } else {
                pick_key(rng, &frame)
            };
            let raw = if rng.chance(10) {
                format!("1{}", "0".repeat(400))
            } else {
                (*rng.pick(HUGE_NUMBERS)).to_owned()
            };
            (splice_raw(&frame, &key, &raw), "huge number")
        }
        5 => {
            let key = pick_key(rng, &frame);
            frame[key.as_str()] = any_value(rng);
            (frame.to_string().into_bytes(), "wrong field type")
        }
        6 => {
            // A frame of exactly max_frame + delta bytes.
            let key = pick_string_key(rng, &frame);
            let delta: i64 = match rng.below(6) {
                0 => -1,
                1 => 0,
                2 => 1,
                3 => -(rng.below(200) as i64),
                4 => rng.below(200) as i64,
                _ => max_frame as i64,
            };
            let base = splice_raw(&frame, &key, "\"\"").len() as i64;
            let fill = (max_frame as i64 + delta - base).max(0) as usize;
            let raw = format!("\"{}\"", "x".repeat(fill));
            (splice_raw(&frame, &key, &raw), "enormous string")
        }
        7 => {
            // A key twice: at the top (with another value or the same) or
            // inside a nested object.
            let key = pick_key(rng, &frame);
            let b = if rng.chance(80) {
                let value = if rng.chance(50) {
                    frame.get(key.as_str()).cloned().unwrap_or(Value::Null)
                } else {
                    any_value(rng)
                };
                let mut b = format!("{{{}:{},", json!(key), value).into_bytes();
                b.extend_from_slice(&text[1..]);
                b
            } else {
                splice_raw(&frame, &key, "{\"a\":1,\"b\":[{\"c\":1,\"c\":2}],\"a\":2}")
            };
            (b, "duplicate key")
        }
        8 => {
            let key = pick_string_key(rng, &frame);
            let b = match rng.below(3) {
                0 => {
                    let s = frame[key.as_str()].as_str().unwrap_or("abc").to_owned();
                    let at = rng.below(s.len() + 1);
                    let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    frame[key.as_str()] = json!(format!("{}\u{0}{}", &s[..at], &s[at..]));
                    frame.to_string().into_bytes()
                }
                1 => splice_raw(&frame, &key, "\"a\u{0}b\""),
                _ => {
                    let mut b = text;
                    let at = rng.below(b.len() + 1);
                    b.insert(at, 0);
                    b
                }
            };
            (b, "NUL")
        }
        9 => {
            let raw = match rng.below(6) {
                0 => (rng.next() as i64).to_string(),
                1 => json!("i".repeat(64)).to_string(),
                2 => json!("i".repeat(65)).to_string(),
                3 => json!("é".repeat(64)).to_string(),
                4 => json!("é".repeat(65)).to_string(),
                _ => (*rng.pick(BAD_IDS)).to_owned(),
            };
            (splice_raw(&frame, "id", &raw), "random id")
        }
        10 => {
            let b = match rng.below(3) {
                0 => {
                    let key = pick_key(rng, &frame);
                    if let Some(m) = frame.as_object_mut() {
                        m.remove(&key);
                    }
                    frame.to_string().into_bytes()
                }
                1 => {
                    frame["type"] = json!(*rng.pick(TYPES));
                    frame.to_string().into_bytes()
                }
                _ => {
                    frame[format!("zz{}", rng.below(3))] = any_value(rng);
                    frame.to_string().into_bytes()
                }
            };
            (b, "missing field, unknown type or extra field")
        }
        11 => (rng.pick(NOT_OBJECTS).as_bytes().to_vec(), "not an object"),
        12 => {
            let other = rng.pick(corpus).to_string().into_bytes();
            let mut b = text[..rng.below(text.len())].to_vec();
            b.extend_from_slice(&other[rng.below(other.len())..]);
            (b, "splice")
        }
        13 => {
            let n = 1 + rng.below(300);
            let b = (0..n).map(|_| rng.next() as u8).collect();
            (b, "random bytes")
        }
        14 => {
            let key = pick_string_key(rng, &frame);
            let odd = *rng.pick(ODD_STRINGS);
            (splice_raw(&frame, &key, odd), "odd escapes")
        }
        _ => (text, "unchanged"),
    };
    // Now and then a second, byte-level mutation on top.
    if what != "enormous string" && rng.chance(15) && !bytes.is_empty() {
        if rng.chance(50) {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        } else {
            bytes.truncate(rng.below(bytes.len()));
        }
    }
    Mutation { bytes, what }
}

// ---------------------------------------------------------------------------
// A fuzzing connection.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    frames: usize,
    reconnects: usize,
    too_large_closes: usize,
    streak_closes: usize,
    logout_closes: usize,
    closing_frames: usize,
    unannounced_closes: usize,
    codes: std::collections::BTreeMap<String, usize>,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.frames += o.frames;
        self.reconnects += o.reconnects;
        self.too_large_closes += o.too_large_closes;
        self.streak_closes += o.streak_closes;
        self.logout_closes += o.logout_closes;
        self.closing_frames += o.closing_frames;
        self.unannounced_closes += o.unannounced_closes;
        for (k, v) in &o.codes {
            *self.codes.entry(k.clone()).or_default() += v;
        }
    }
}

/// What the server must answer to one frame.
enum Expect {
    /// Over `limits.max_frame`: `too_large` without an id, then a close.
    TooLarge,
    /// A WebSocket binary message: `bad_request` without an id.
    NotText,
    /// Not decodable: `bad_request` with the id the decoder could read.
    Bad(Option<RequestId>),
    /// Decodable: `ok`, `error` or, for a ping, `pong`, with its id.
    Reply(Option<RequestId>, Box<ClientFrame>),
}

/// How one frame ended.
enum Outcome {
    /// Answered; the connection goes on.
    Answered,
    /// Answered, and then the connection closed as it had to.
    Closed,
    /// The connection closed (for a reason the protocol allows) before
    /// this frame was answered: it goes again on a new connection.
    Lost,
}

struct Fuzzer {
    seed: u64,
    index: usize,
    transport: Transport,
    addr: SocketAddr,
    http: SocketAddr,
    user: String,
    conn: Option<Client>,
    /// Undecodable frames in a row, counting a WebSocket binary message
    /// (which the server answers `bad_request` without decoding) as
    /// ending the run ...
    lo: u32,
    /// ... and as extending it: the server must close once `lo` reaches
    /// [`STREAK`] and may once `hi` does.
    hi: u32,
    max_frame: usize,
    stats: Stats,
}

impl Fuzzer {
    async fn run(mut self, corpus: Vec<Value>, mut rng: Rng, n: usize, first: usize) -> Stats {
        for k in first..first + n {
            let m = mutate(&mut rng, &corpus, self.max_frame, k as u64);
            self.one(k, &m.bytes, m.what).await;
            if k % PROBE_EVERY == 0 {
                let probe = json!({"type":"ping","id":format!("probe-{k}")}).to_string();
                self.one(k, probe.as_bytes(), "probe").await;
            }
        }
        let probe = json!({"type":"ping","id":"last"}).to_string();
        self.one(first + n, probe.as_bytes(), "probe").await;
        self.stats
    }

    /// Sends one frame and checks what comes back, reconnecting when the
    /// server closed the connection.
    async fn one(&mut self, k: usize, bytes: &[u8], what: &'static str) {
        let mut bytes = bytes.to_vec();
        let tcp = self.transport == Transport::Tcp;
        if tcp {
            // A newline would make two frames of one.
            for b in bytes.iter_mut().filter(|b| **b == b'\n') {
                *b = b' ';
            }
        }
        // What the server decodes: the TCP transport drops one `\r` before
        // the newline; an empty line is no frame at all.
        let view: &[u8] = if tcp {
            bytes.strip_suffix(b"\r").unwrap_or(&bytes)
        } else {
            &bytes
        };
        if tcp && view.is_empty() {
            return;
        }
        let binary = !tcp && std::str::from_utf8(view).is_err();
        let expect = if view.len() > self.max_frame {
            Expect::TooLarge
        } else if binary {
            Expect::NotText
        } else {
            match decode(view) {
                Ok(r) => Expect::Reply(r.id, Box::new(r.frame)),
                Err(bad) => Expect::Bad(bad.id),
            }
        };
        let ctx = Ctx {
            seed: self.seed,
            fuzzer: self.index,
            k,
            what,
            bytes: &bytes,
        };
        self.stats.frames += 1;
        // A connection that closed before answering (allowed: see
        // `closed`) is replaced and the frame sent again.
        for _ in 0..2 {
            self.ensure_connected().await;
            let conn = self.conn.as_mut().expect("connected");
            // A failed write shows as a close when reading.
            let _ = conn.send_raw(&bytes, binary).await;
            match self.answer(&ctx, &expect).await {
                Outcome::Answered | Outcome::Closed => return,
                Outcome::Lost => {}
            }
        }
        ctx.fail("the connection closed again right after a reconnect", None);
    }

    async fn ensure_connected(&mut self) {
        if self.conn.is_some() {
            return;
        }
        let mut c = match self.transport {
            Transport::Tcp => Client::connect(self.addr).await,
            Transport::Ws => Client::connect_ws(self.http).await,
        };
        c.login(&self.user, PASSWORD).await;
        self.conn = Some(c);
        self.lo = 0;
        self.hi = 0;
        self.stats.reconnects += 1;
    }

    /// Reads until the reply to the frame just sent, or the close.
    async fn answer(&mut self, ctx: &Ctx<'_>, expect: &Expect) -> Outcome {
        loop {
            let conn = self.conn.as_mut().expect("connected");
            let v = match conn.recv_or_closed(WAIT).await {
                None => ctx.fail("no reply", None),
                Some(None) => {
                    self.closed(ctx, None);
                    return Outcome::Lost;
                }
                Some(Some(v)) => v,
            };
            let ty = v["type"].as_str().unwrap_or("");
            match ty {
                "ok" | "error" | "pong" => return self.reply(ctx, expect, &v).await,
                "closing" => {
                    self.closed(ctx, Some(&v));
                    self.expect_close(ctx).await;
                    return Outcome::Lost;
                }
                t if EVENTS.contains(&t) => {}
                _ => ctx.fail("a frame that is neither a reply nor an event", Some(&v)),
            }
        }
    }

    /// Checks a reply against the expectation and updates the streak.
    async fn reply(&mut self, ctx: &Ctx<'_>, expect: &Expect, v: &Value) -> Outcome {
        let ty = v["type"].as_str().unwrap_or("");
        let code = v["code"].as_str().unwrap_or("");
        if ty == "error" {
            if !CODES.contains(&code) || !v["message"].is_string() {
                ctx.fail("an error without a known code and a message", Some(v));
            }
            if code == "internal" {
                ctx.fail("an internal error", Some(v));
            }
        }
        *self.stats.codes.entry(format!("{ty} {code}")).or_default() += 1;
        if code == "rate_limited" {
            // Refused before anything else: the streak is unknown.
            self.lo = 0;
            self.hi += 1;
            return Outcome::Answered;
        }
        let id_is = |id: &Option<RequestId>| match id {
            None => v.get("id").is_none(),
            Some(RequestId::Int(i)) => v["id"] == json!(i),
            Some(RequestId::Str(s)) => v["id"] == json!(s),
        };
        match expect {
            Expect::TooLarge => {
                if ty != "error" || code != "too_large" || v.get("id").is_some() {
                    ctx.fail(
                        "an oversized frame must get `too_large` without id",
                        Some(v),
                    );
                }
                self.expect_close(ctx).await;
                self.stats.too_large_closes += 1;
                return Outcome::Closed;
            }
            Expect::NotText => {
                if ty != "error" || code != "bad_request" || v.get("id").is_some() {
                    ctx.fail("a binary message must get `bad_request`", Some(v));
                }
                self.lo = 0;
                self.hi += 1;
            }
            Expect::Bad(id) => {
                if ty != "error" || code != "bad_request" || !id_is(id) {
                    ctx.fail(
                        &format!("an undecodable frame must get `bad_request` with id {id:?}"),
                        Some(v),
                    );
                }
                self.lo += 1;
                self.hi += 1;
            }
            Expect::Reply(id, frame) => {
                let ping = matches!(**frame, ClientFrame::Ping {});
                let right_type = if ping { ty == "pong" } else { ty != "pong" };
                if !right_type || !id_is(id) {
                    ctx.fail(&format!("expected the reply with id {id:?}"), Some(v));
                }
                self.lo = 0;
                self.hi = 0;
                let closes = ty == "ok"
                    && match &**frame {
                        ClientFrame::Logout {} => true,
                        ClientFrame::DeviceRevoke { device } => device == "default",
                        _ => false,
                    };
                if closes {
                    self.expect_close(ctx).await;
                    self.stats.logout_closes += 1;
                    return Outcome::Closed;
                }
            }
        }
        if self.lo >= STREAK {
            self.expect_close(ctx).await;
            self.stats.streak_closes += 1;
            return Outcome::Closed;
        }
        Outcome::Answered
    }

    /// The server closed (or sent `closing`) while no close was due:
    /// allowed for the request rate limit, and after a run of bad frames
    /// that may have reached [`STREAK`] on the server's count.
    fn closed(&mut self, ctx: &Ctx<'_>, closing: Option<&Value>) {
        let reason = closing.and_then(|v| v["reason"].as_str());
        let ok = match reason {
            Some("rate_limited") => true,
            Some("too_many_errors") | None => self.hi >= STREAK,
            Some(_) => false,
        };
        if !ok {
            ctx.fail(
                &format!(
                    "the server closed the connection without a reason (bad-frame run {}..{})",
                    self.lo, self.hi
                ),
                closing,
            );
        }
        if closing.is_some() {
            self.stats.closing_frames += 1;
        } else {
            self.stats.unannounced_closes += 1;
            self.conn = None;
        }
    }

    /// The connection must close now; only events (and a `closing`) may
    /// come first.
    async fn expect_close(&mut self, ctx: &Ctx<'_>) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match conn.recv_or_closed(left).await {
                None => ctx.fail("the connection stayed open", None),
                Some(None) => return,
                Some(Some(v)) => {
                    let ty = v["type"].as_str().unwrap_or("");
                    if ty == "closing" {
                        self.stats.closing_frames += 1;
                    } else if !EVENTS.contains(&ty) {
                        ctx.fail("a frame after the last reply before a close", Some(&v));
                    }
                }
            }
        }
    }
}

/// Where a fuzzer is, for failure messages.
struct Ctx<'a> {
    seed: u64,
    fuzzer: usize,
    k: usize,
    what: &'static str,
    bytes: &'a [u8],
}

impl Ctx<'_> {
    fn fail(&self, why: &str, got: Option<&Value>) -> ! {
        let shown = String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(300)]);
        let got = got.map_or("nothing".to_owned(), |v| {
            let s = v.to_string();
            s[..s.len().min(300)].to_owned()
        });
        panic!(
            "seed {}, fuzzer {}, mutation {} ({}, {} bytes): {why}\n  sent: {shown:?}\n  got: {got}",
            self.seed,
            self.fuzzer,
            self.k,
            self.what,
            self.bytes.len(),
        );
    }
}

// ---------------------------------------------------------------------------
// The two chatting users.
// ---------------------------------------------------------------------------

struct Chat {
    c: Client,
    me: String,
    peer: String,
    /// `seq` of each message sent, in sending order.
    sent: Vec<u64>,
    /// Each message received from the peer, in arrival order.
    got: Vec<Value>,
}

/// Sends direct messages (with `client_id`s) until the fuzzers are done
/// and at least [`MIN_CHAT`] went out, acknowledging (as read) every
/// message received meanwhile.
async fn chat(c: Client, peer: &str, done: Arc<AtomicBool>) -> Chat {
    let me = c.user.clone().expect("logged in");
    let mut chat = Chat {
        c,
        me: me.clone(),
        peer: peer.to_owned(),
        sent: Vec::new(),
        got: Vec::new(),
    };
    let mut i = 0;
    while i < MIN_CHAT || (!done.load(Ordering::Relaxed) && i < MAX_CHAT) {
        let r = chat
            .c
            .request(json!({"type":"msg.send","to":peer,"body":format!("{me} {i}"),"client_id":format!("{me}-{i}")}))
            .await;
        assert_eq!(r["type"], "ok", "{me}'s message {i}: {r}");
        chat.sent.push(r["seq"].as_u64().expect("seq"));
        chat.absorb(Duration::ZERO).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    chat
}

impl Chat {
    /// Takes what has arrived within `wait`: the peer's messages (each
    /// acknowledged as read) and receipts; anything else fails.
    async fn absorb(&mut self, wait: Duration) {
        while let Some(v) = self.c.try_recv(wait).await {
            match v["type"].as_str() {
                Some("msg") => {
                    assert_eq!(v["from"], self.peer.as_str(), "{}: {v}", self.me);
                    let ack = json!({"type":"msg.ack","conv":v["conv"],"seq":v["seq"],"read":true});
                    self.got.push(v);
                    let r = self.c.request(ack).await;
                    assert_eq!(r["type"], "ok", "{}'s ack: {r}", self.me);
                }
                Some("receipt") => {}
                _ => panic!("{} got an unexpected frame: {v}", self.me),
            }
        }
    }
}

/// Waits for the last messages, then checks both sides: each received all
/// of the other's messages, in order, and the two together hold every
/// `seq` of the conversation exactly once.
async fn finish_chat(mut a: Chat, mut b: Chat) -> (Chat, Chat) {
    let deadline = Instant::now() + WAIT;
    while a.got.len() < b.sent.len() || b.got.len() < a.sent.len() {
        assert!(
            Instant::now() < deadline,
            "messages missing: {} got {} of {}, {} got {} of {}",
            a.me,
            a.got.len(),
            b.sent.len(),
            b.me,
            b.got.len(),
            a.sent.len()
        );
        a.absorb(Duration::from_millis(20)).await;
        b.absorb(Duration::from_millis(20)).await;
    }
    a.absorb(Duration::from_millis(100)).await;
    b.absorb(Duration::from_millis(100)).await;
    for (rx, tx) in [(&a, &b), (&b, &a)] {
        assert_eq!(rx.got.len(), tx.sent.len(), "{} got extra messages", rx.me);
        for (j, (m, seq)) in rx.got.iter().zip(&tx.sent).enumerate() {
            assert_eq!(m["seq"], *seq, "{}'s message {j} to {}: {m}", tx.me, rx.me);
            assert_eq!(m["body"], format!("{} {j}", tx.me), "{m}");
            assert_eq!(m["client_id"], format!("{}-{j}", tx.me), "{m}");
        }
        assert!(
            tx.sent.windows(2).all(|w| w[0] < w[1]),
            "{}'s seqs go down",
            tx.me
        );
    }
    let mut all: Vec<u64> = a.sent.iter().chain(&b.sent).copied().collect();
    all.sort_unstable();
    let n = all.len() as u64;
    assert!(
        all.iter().copied().eq(1..=n),
        "the conversation has a hole or a repeated seq"
    );
    // Both are still connected.
    for c in [&mut a.c, &mut b.c] {
        let r = c.request(json!({"type":"ping"})).await;
        assert_eq!(r["type"], "pong", "{r}");
    }
    (a, b)
}
