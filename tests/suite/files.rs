//! docs/PROTOCOL.md "Files" over the protocol itself (every transport):
//! `file.begin`, `file.chunk`, `file.status`, `file.end`, `file.read`,
//! `file.url`, and `msg.send` with `attachment` (direct, forwarded, rooms).
//! HTTP downloads are in `tests/http_files.rs`.

use std::time::Duration;

use im_tests::*;
use serde_json::{json, Value};

use super::server;

fn begin(name: &str, mime: Option<&str>, size: u64) -> Value {
    let mut f = json!({"type":"file.begin","name":name,"size":size});
    if let Some(m) = mime {
        f["mime"] = json!(m);
    }
    f
}

fn chunk(file: &str, offset: usize, data: &[u8]) -> Value {
    json!({"type":"file.chunk","file":file,"offset":offset,"data":b64(data)})
}

fn status(file: &str) -> Value {
    json!({"type":"file.status","file":file})
}

fn end(file: &str) -> Value {
    json!({"type":"file.end","file":file})
}

fn read(file: &str, offset: usize, len: usize) -> Value {
    json!({"type":"file.read","file":file,"offset":offset,"len":len})
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// alice and bob, mutual contacts, both online.
async fn pair(srv: &TestServer) -> (Client, Client) {
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    (a, b)
}

async fn history(c: &mut Client, conv: &str) -> Vec<Value> {
    let r = c
        .ok(json!({"type":"history","conv":conv,"limit":200}))
        .await;
    r["messages"].as_array().unwrap().clone()
}

/// The attachment object receivers must see for an upload.
fn meta(file: &str, name: &str, mime: &str, data: &[u8]) -> Value {
    json!({"file":file,"name":name,"mime":mime,"size":data.len(),"sha256":sha256_hex(data)})
}

#[tokio::test]
async fn file_methods_need_a_login() {
    let srv = server().start();
    let mut c = srv.client().await;
    c.err(begin("a.txt", None, 1), "unauthenticated").await;
    c.err(chunk("f-x", 0, b"a"), "unauthenticated").await;
    c.err(status("f-x"), "unauthenticated").await;
    c.err(end("f-x"), "unauthenticated").await;
    c.err(read("f-x", 0, 10), "unauthenticated").await;
    c.err(json!({"type":"file.url","file":"f-x"}), "unauthenticated")
        .await;
}

#[tokio::test]
async fn file_begin_returns_an_id_and_checks_name_and_mime() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let r = a.ok(begin("cat.png", Some("image/png"), 48213)).await;
    let f1 = r["file"].as_str().expect("file id").to_owned();
    assert!(!f1.is_empty());
    let f2 = a.file_begin("cat.png", Some("image/png"), 48213).await;
    assert_ne!(f1, f2, "every upload gets its own id");
    // Name: 1 to 255 characters (characters, not bytes).
    a.err(begin("", None, 1), "bad_request").await;
    a.file_begin(&"é".repeat(255), None, 1).await;
    a.file_begin(&"😀".repeat(255), None, 1).await;
    a.err(begin(&"é".repeat(256), None, 1), "bad_request").await;
    a.err(begin(&"a".repeat(256), None, 1), "bad_request").await;
    // Mime: optional, `type/subtype`.
    a.file_begin("x", None, 1).await;
    for good in [
        "application/octet-stream",
        "audio/ogg",
        "video/mp4",
        "image/svg+xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ] {
        a.file_begin("x", Some(good), 1).await;
    }
    for bad in ["png", "image/", "/png", "", "image png", "image/png/x", "/"] {
        a.err(begin("x", Some(bad), 1), "bad_request").await;
    }
    // Fields of the wrong type or missing.
    a.err(
        json!({"type":"file.begin","name":"x","size":-1}),
        "bad_request",
    )
    .await;
    a.err(json!({"type":"file.begin","name":"x"}), "bad_request")
        .await;
    a.err(json!({"type":"file.begin","size":1}), "bad_request")
        .await;
    a.err(
        json!({"type":"file.begin","name":7,"size":1}),
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn file_begin_over_max_file_is_too_large() {
    let srv = server().config(|c| c.limits.max_file = 1000).start();
    let mut a = srv.user("alice").await;
    a.file_begin("max.bin", None, 1000).await;
    a.err(begin("big.bin", None, 1001), "too_large").await;
    a.err(begin("huge.bin", None, u64::MAX), "too_large").await;
    // Fields are checked before sizes.
    a.err(begin("", None, 5000), "bad_request").await;
    a.err(begin("x", Some("nope"), 5000), "bad_request").await;
}

#[tokio::test]
async fn file_begin_over_the_quota_is_too_large() {
    let srv = server()
        .config(|c| {
            c.limits.user_quota = 1000;
            c.limits.max_file = 5000;
        })
        .start();
    let mut a = srv.user("alice").await;
    // Over the quota even when empty-handed.
    a.err(begin("big.bin", None, 1001), "too_large").await;
    let data = random_bytes(600, 1);
    a.upload("first.bin", None, &data).await;
    // 400 bytes of quota remain.
    a.err(begin("second.bin", None, 401), "too_large").await;
    a.file_begin("second.bin", None, 400).await;
    // Quotas are per user.
    let mut b = srv.user("bob").await;
    b.file_begin("bob.bin", None, 1000).await;
}

#[tokio::test]
async fn chunks_are_contiguous_from_zero_and_within_the_size() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(100, 2);
    let f = a.file_begin("a.bin", None, 100).await;
    // Not from 0.
    a.err(chunk(&f, 10, &data[10..20]), "bad_request").await;
    a.file_chunk(&f, 0, &data[..60]).await;
    // Again at 0, a gap, behind: all refused.
    a.err(chunk(&f, 0, &data[..60]), "bad_request").await;
    a.err(chunk(&f, 61, &data[61..70]), "bad_request").await;
    a.err(chunk(&f, 59, &data[59..70]), "bad_request").await;
    // Past the announced size.
    let mut over = data[60..].to_vec();
    over.push(0);
    a.err(chunk(&f, 60, &over), "bad_request").await;
    // Refused chunks stored nothing.
    let s = a.ok(status(&f)).await;
    assert_eq!(s["received"], 60, "{s}");
    a.file_chunk(&f, 60, &data[60..]).await;
    // A chunk at the end of a full upload goes past the size too.
    a.err(chunk(&f, 100, b"x"), "bad_request").await;
    a.file_end(&f, &data).await;
    assert_eq!(a.download(&f).await, data);
}

#[tokio::test]
async fn chunk_size_and_encoding() {
    let srv = server().config(|c| c.limits.max_file = 200_000).start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(CHUNK + 1, 3);
    let f = a.file_begin("a.bin", None, data.len()).await;
    // One byte over 32768 decoded bytes.
    a.err(chunk(&f, 0, &data), "too_large").await;
    // Sizes are checked before existence.
    a.err(chunk("f-does-not-exist", 0, &data), "too_large")
        .await;
    // Not standard base64 with padding.
    for bad in ["@@@@", "YQ", "YQ=", "-_-_", "YW Jj", "YWJj\n"] {
        a.err(
            json!({"type":"file.chunk","file":f,"offset":0,"data":bad}),
            "bad_request",
        )
        .await;
    }
    // Exactly 32768 is fine, and the connection is still there.
    a.file_chunk(&f, 0, &data[..CHUNK]).await;
    a.file_chunk(&f, CHUNK, &data[CHUNK..]).await;
    a.file_end(&f, &data).await;
    assert_eq!(a.download(&f).await, data);
}

#[tokio::test]
async fn chunks_after_end_conflict_and_others_uploads_are_not_found() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let data = random_bytes(10, 4);
    let f = a.file_begin("a.bin", None, 20).await;
    a.file_chunk(&f, 0, &data).await;
    // Bob cannot see, extend, finish or read Alice's upload.
    b.err(chunk(&f, 10, &data), "not_found").await;
    b.err(status(&f), "not_found").await;
    b.err(end(&f), "not_found").await;
    b.err(read(&f, 0, 10), "not_found").await;
    // ... nor can anyone touch an unknown id.
    for id in ["f-0000", "../x"] {
        a.err(chunk(id, 0, b"x"), "not_found").await;
        a.err(status(id), "not_found").await;
        a.err(end(id), "not_found").await;
    }
    // Bob's attempt changed nothing.
    let s = a.ok(status(&f)).await;
    assert_eq!(s["received"], 10, "{s}");
    a.file_chunk(&f, 10, &data).await;
    let whole = [data.clone(), data.clone()].concat();
    a.file_end(&f, &whole).await;
    // Finished: further chunks are a conflict (even a plausible one).
    a.err(chunk(&f, 20, b""), "conflict").await;
    a.err(chunk(&f, 0, &data), "conflict").await;
    // Bob still gets not_found, not conflict.
    b.err(chunk(&f, 20, b"x"), "not_found").await;
    assert_eq!(a.download(&f).await, whole);
}

#[tokio::test]
async fn file_status_reports_progress_and_done() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(70000, 5);
    let f = a.file_begin("a.bin", None, data.len()).await;
    let s = a.ok(status(&f)).await;
    assert_eq!(
        (&s["received"], &s["size"], &s["done"]),
        (&json!(0), &json!(70000), &json!(false)),
        "{s}"
    );
    a.file_chunk(&f, 0, &data[..CHUNK]).await;
    let s = a.ok(status(&f)).await;
    assert_eq!(
        (&s["received"], &s["size"], &s["done"]),
        (&json!(CHUNK), &json!(70000), &json!(false)),
        "{s}"
    );
    a.file_chunk(&f, CHUNK, &data[CHUNK..2 * CHUNK]).await;
    a.file_chunk(&f, 2 * CHUNK, &data[2 * CHUNK..]).await;
    let s = a.ok(status(&f)).await;
    assert_eq!(
        (&s["received"], &s["size"], &s["done"]),
        (&json!(70000), &json!(70000), &json!(false)),
        "{s}"
    );
    a.file_end(&f, &data).await;
    let s = a.ok(status(&f)).await;
    assert_eq!(
        (&s["received"], &s["size"], &s["done"]),
        (&json!(70000), &json!(70000), &json!(true)),
        "{s}"
    );
}

#[tokio::test]
async fn an_interrupted_upload_resumes_where_file_status_says() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let token = a.token.clone().expect("token");
    let data = random_bytes(6 * CHUNK + 123, 6);
    let f = a
        .file_begin("movie.mp4", Some("video/mp4"), data.len())
        .await;
    a.file_chunk(&f, 0, &data[..CHUNK]).await;
    a.file_chunk(&f, CHUNK, &data[CHUNK..2 * CHUNK]).await;
    // Two more without waiting, then the connection drops.
    for i in 2..4 {
        a.send(chunk(&f, i * CHUNK, &data[i * CHUNK..(i + 1) * CHUNK]))
            .await;
    }
    drop(a);

    // A new connection asks where to resume: whatever arrived, no more.
    let mut a = srv.client().await;
    a.login_token("alice", &token).await;
    // The old connection's last chunks may still be in progress: ask until
    // the answer settles, as a client would before resuming.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut s = a.ok(status(&f)).await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = a.ok(status(&f)).await;
        if again["received"] == s["received"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{again}");
        s = again;
    }
    assert_eq!(s["size"], data.len(), "{s}");
    assert_eq!(s["done"], false, "{s}");
    let at = s["received"].as_u64().expect("received") as usize;
    assert!(
        [2 * CHUNK, 3 * CHUNK, 4 * CHUNK].contains(&at),
        "received {at} after two acknowledged and two unacknowledged chunks"
    );
    // Anywhere else is refused; from `received` it goes on.
    a.err(chunk(&f, at - CHUNK, &data[at - CHUNK..at]), "bad_request")
        .await;
    for (i, part) in data[at..].chunks(CHUNK).enumerate() {
        a.file_chunk(&f, at + i * CHUNK, part).await;
    }
    a.file_end(&f, &data).await;
    assert_eq!(a.download(&f).await, data);
}

#[tokio::test]
async fn chunks_may_be_pipelined() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(10 * CHUNK + 7, 7);
    let f = a.upload_pipelined("p.bin", None, &data).await;
    assert_eq!(a.download(&f).await, data);
}

#[tokio::test]
async fn file_end_returns_the_sha256_and_needs_every_byte() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(40000, 8);
    let f = a
        .file_begin("a.bin", Some("application/pdf"), data.len())
        .await;
    // Nothing received yet.
    a.err(end(&f), "bad_request").await;
    a.file_chunk(&f, 0, &data[..CHUNK]).await;
    // Part of it.
    a.err(end(&f), "bad_request").await;
    let s = a.ok(status(&f)).await;
    assert_eq!(s["done"], false, "a refused end finishes nothing: {s}");
    a.file_chunk(&f, CHUNK, &data[CHUNK..]).await;
    let r = a.ok(end(&f)).await;
    assert_eq!(r["file"], f.as_str());
    assert_eq!(r["size"], 40000);
    let sha = r["sha256"].as_str().expect("sha256");
    assert_eq!(sha, sha256_hex(&data));
    assert_eq!(sha.len(), 64);
    assert!(sha
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    // Two uploads of the same bytes: two files, the same hash.
    let g = a.upload("copy.bin", None, &data).await;
    assert_ne!(f, g);
}

#[tokio::test]
async fn an_empty_file_can_be_uploaded() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let f = a.file_begin("empty.txt", Some("text/plain"), 0).await;
    a.file_end(&f, b"").await;
    let (data, eof) = a.file_read(&f, 0, CHUNK).await;
    assert!(data.is_empty());
    assert!(eof);
}

#[tokio::test]
async fn file_read_serves_the_uploader_in_pieces_of_at_most_32768_bytes() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(40000, 9);
    let f = a.upload("a.bin", None, &data).await;
    // A larger len is served as 32768.
    let (d, eof) = a.file_read(&f, 0, 100_000).await;
    assert_eq!(d, data[..CHUNK]);
    assert!(!eof);
    let (d, eof) = a.file_read(&f, 0, 100).await;
    assert_eq!(d, data[..100]);
    assert!(!eof);
    let (d, eof) = a.file_read(&f, 1000, 5000).await;
    assert_eq!(d, data[1000..6000]);
    assert!(!eof);
    // Reaching the end exactly, and asking for more than is left.
    let (d, eof) = a.file_read(&f, 39900, 100).await;
    assert_eq!(d, data[39900..]);
    assert!(eof);
    let (d, eof) = a.file_read(&f, CHUNK, CHUNK).await;
    assert_eq!(d, data[CHUNK..]);
    assert!(eof);
    assert_eq!(a.download(&f).await, data);
    // A file of exactly one piece.
    let one = random_bytes(CHUNK, 10);
    let g = a.upload("one.bin", None, &one).await;
    let (d, eof) = a.file_read(&g, 0, CHUNK).await;
    assert_eq!(d, one);
    assert!(eof);
}

#[tokio::test]
async fn unfinished_and_unknown_files_cannot_be_read() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let data = random_bytes(100, 11);
    let f = a.file_begin("a.bin", None, 100).await;
    a.file_chunk(&f, 0, &data).await;
    // Complete but not ended: still unfinished.
    a.err(read(&f, 0, 100), "not_found").await;
    a.err(json!({"type":"file.url","file":f}), "not_found")
        .await;
    a.err(
        json!({"type":"msg.send","to":"bob","body":"x","attachment":f}),
        "not_found",
    )
    .await;
    b.err(read(&f, 0, 100), "not_found").await;
    a.err(
        read("f-00000000000000000000000000000000", 0, 100),
        "not_found",
    )
    .await;
    a.err(read("nope", 0, 100), "not_found").await;
    a.file_end(&f, &data).await;
    assert_eq!(a.download(&f).await, data);
    // Bob was never sent it.
    b.err(read(&f, 0, 100), "not_found").await;
}

#[tokio::test]
async fn attachments_reach_the_receiver_with_their_metadata() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let data = random_bytes(48213, 12);
    let f = a.upload("cat.png", Some("image/png"), &data).await;
    b.err(read(&f, 0, 10), "not_found").await;

    // No body at all: allowed with an attachment.
    let ok = a
        .ok(json!({"type":"msg.send","to":"bob","attachment":f}))
        .await;
    assert_eq!(ok["conv"], "dm:alice:bob");
    let m = b.expect("msg").await;
    let want = meta(&f, "cat.png", "image/png", &data);
    assert_eq!(
        m,
        json!({"type":"msg","conv":"dm:alice:bob","seq":ok["seq"],"from":"alice","body":"","ts":ok["ts"],"attachment":want})
    );
    assert_eq!(b.download(&f).await, data);

    // White space only, with an attachment: allowed too; with text.
    a.ok(json!({"type":"msg.send","to":"bob","body":"  ","attachment":f}))
        .await;
    assert_eq!(b.expect("msg").await["attachment"], want);
    a.ok(json!({"type":"msg.send","to":"bob","body":"look","attachment":f,"client_id":"c-1"}))
        .await;
    let m = b.expect("msg").await;
    assert_eq!(m["body"], "look");
    assert_eq!(m["client_id"], "c-1");
    assert_eq!(m["attachment"], want);
    // A message without one carries none.
    a.send_dm("bob", "plain").await;
    let m = b.expect("msg").await;
    assert!(m.get("attachment").is_none(), "{m}");

    // History, for both.
    for c in [&mut a, &mut b] {
        let h = history(c, "dm:alice:bob").await;
        assert_eq!(h.len(), 4);
        for m in &h[..3] {
            assert_eq!(m["attachment"], want, "{m}");
        }
        assert!(h[3].get("attachment").is_none(), "{}", h[3]);
        assert_eq!(h[0]["body"], "");
    }
    // A file the receiver can read can be linked too.
    let u = b.ok(json!({"type":"file.url","file":f})).await;
    assert!(u["url"].as_str().is_some(), "{u}");

    // The login replay of a device that never acknowledged them.
    let mut b2 = srv.client().await;
    let login = b2.login_device("bob", PASSWORD, "tablet").await;
    let msgs: Vec<&Value> = login.replay.iter().filter(|m| m["type"] == "msg").collect();
    assert_eq!(msgs.len(), 4, "{:?}", login.replay);
    for m in &msgs[..3] {
        assert_eq!(m["attachment"], want, "{m}");
    }
    assert_eq!(b2.download(&f).await, data);
}

#[tokio::test]
async fn an_offline_receiver_gets_the_attachment_in_the_replay() {
    let srv = server().start();
    let (mut a, b) = pair(&srv).await;
    b.close().await;
    let data = random_bytes(5000, 13);
    // No mime: the default is what receivers see.
    let f = a.upload("notes", None, &data).await;
    a.ok(json!({"type":"msg.send","to":"bob","attachment":f}))
        .await;
    let mut b = srv.client().await;
    let login = b.login("bob", PASSWORD).await;
    let m = login
        .replay
        .iter()
        .find(|m| m["type"] == "msg")
        .expect("replayed msg");
    assert_eq!(
        m["attachment"],
        meta(&f, "notes", "application/octet-stream", &data)
    );
    assert_eq!(m["body"], "");
    assert_eq!(b.download(&f).await, data);
}

#[tokio::test]
async fn unknown_or_unreadable_attachments_are_not_found() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let mut c = srv.user("carol").await;
    let carols = c.upload("carol.txt", None, b"carol's").await;
    let unfinished = a.file_begin("u.bin", None, 10).await;
    for bad in [
        "f-00000000000000000000000000000000".to_owned(),
        "nope".to_owned(),
        carols.clone(),
        unfinished,
    ] {
        a.err(
            json!({"type":"msg.send","to":"bob","body":"x","attachment":bad}),
            "not_found",
        )
        .await;
    }
    // Nothing was sent, and Bob still cannot read Carol's file.
    b.expect_silence(200).await;
    b.err(read(&carols, 0, 10), "not_found").await;
    // Existence is checked before permission: Carol is no contact.
    a.err(
        json!({"type":"msg.send","to":"carol","attachment":"f-nope"}),
        "not_found",
    )
    .await;
    // A readable file to a non-contact: forbidden, and no access gained.
    let mine = a.upload("mine.txt", None, b"mine").await;
    a.err(
        json!({"type":"msg.send","to":"carol","attachment":mine}),
        "forbidden",
    )
    .await;
    c.err(read(&mine, 0, 10), "not_found").await;
    // Without an attachment an empty body is still refused.
    a.err(json!({"type":"msg.send","to":"bob"}), "bad_request")
        .await;
    a.err(
        json!({"type":"msg.send","to":"bob","body":" "}),
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn a_receiver_may_forward_an_attachment() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut b, &mut c).await;
    let data = random_bytes(70000, 14);
    let f = a.upload("song.ogg", Some("audio/ogg"), &data).await;
    // Bob cannot forward what he was never sent.
    b.err(
        json!({"type":"msg.send","to":"carol","attachment":f}),
        "not_found",
    )
    .await;
    a.ok(json!({"type":"msg.send","to":"bob","attachment":f}))
        .await;
    b.expect("msg").await;
    c.err(read(&f, 0, 10), "not_found").await;
    let ok = b
        .ok(json!({"type":"msg.send","to":"carol","body":"fwd","attachment":f}))
        .await;
    assert_eq!(ok["conv"], "dm:bob:carol");
    let m = c.expect("msg").await;
    assert_eq!(m["from"], "bob");
    assert_eq!(m["attachment"], meta(&f, "song.ogg", "audio/ogg", &data));
    assert_eq!(c.download(&f).await, data);
    // Carol may pass it on in turn, to Bob's conversation she is in.
    c.ok(json!({"type":"msg.send","to":"bob","attachment":f}))
        .await;
    // The uploader still reads it.
    assert_eq!(a.download(&f).await, data);
}

#[tokio::test]
async fn room_attachments_are_for_current_members() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    a.ok(json!({"type":"room.create","name":"pics"})).await;
    b.ok(json!({"type":"room.join","name":"pics"})).await;
    a.expect("room.joined").await;
    b.expect("room.joined").await;
    let data = random_bytes(33000, 15);
    let f = a.upload("sunset.jpg", Some("image/jpeg"), &data).await;
    let ok = a
        .ok(json!({"type":"msg.send","room":"pics","attachment":f}))
        .await;
    assert_eq!(ok["conv"], "room:pics");
    let m = b.expect("msg").await;
    let want = meta(&f, "sunset.jpg", "image/jpeg", &data);
    assert_eq!(m["attachment"], want);
    assert_eq!(m["body"], "");
    assert_eq!(b.download(&f).await, data);
    // Carol is no member.
    c.err(read(&f, 0, 10), "not_found").await;
    c.err(json!({"type":"file.url","file":f}), "not_found")
        .await;
    // Once she joins, the room's history and its files are hers to read.
    c.ok(json!({"type":"room.join","name":"pics"})).await;
    let h = history(&mut c, "room:pics").await;
    assert_eq!(h[0]["attachment"], want);
    assert_eq!(c.download(&f).await, data);
    // Bob leaves: no longer a member, no longer a reader.
    b.ok(json!({"type":"room.leave","name":"pics"})).await;
    b.err(read(&f, 0, 10), "not_found").await;
    b.err(json!({"type":"file.url","file":f}), "not_found")
        .await;
    // A private room works the same.
    a.ok(json!({"type":"room.create","name":"secret","public":false}))
        .await;
    let g = a.upload("plan.txt", Some("text/plain"), b"the plan").await;
    a.ok(json!({"type":"msg.send","room":"secret","body":"x","attachment":g}))
        .await;
    c.err(read(&g, 0, 10), "not_found").await;
    // A member cannot attach to a room she is not in.
    c.err(
        json!({"type":"msg.send","room":"secret","attachment":f}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn file_url_gives_a_signed_link_for_an_hour() {
    let srv = server().start();
    let (mut a, mut b) = pair(&srv).await;
    let f = a.upload("cat.png", Some("image/png"), b"\x89PNG...").await;
    let before = now_ms();
    let r = a.ok(json!({"type":"file.url","file":f})).await;
    let url = r["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("/files/{f}?")), "{url}");
    assert!(url.contains("exp=") && url.contains("sig="), "{url}");
    let expires = r["expires"].as_i64().expect("expires (ms)");
    let hour = 3_600_000;
    assert!(
        expires >= before + hour - 60_000 && expires <= now_ms() + hour + 60_000,
        "expires {expires} is not about an hour from now ({before})"
    );
    // Only readers get links.
    b.err(json!({"type":"file.url","file":f}), "not_found")
        .await;
    a.err(
        json!({"type":"file.url","file":"f-00000000000000000000000000000000"}),
        "not_found",
    )
    .await;
    a.err(json!({"type":"file.url"}), "bad_request").await;
}

#[tokio::test]
async fn unfinished_uploads_are_removed_after_upload_ttl() {
    let srv = server().config(|c| c.limits.upload_ttl_secs = 1).start();
    let (mut a, mut b) = pair(&srv).await;
    // A file that was sent stays.
    let kept = random_bytes(1000, 16);
    let k = a.upload("kept.bin", None, &kept).await;
    a.ok(json!({"type":"msg.send","to":"bob","attachment":k}))
        .await;
    b.expect("msg").await;
    let f = a.file_begin("left.bin", None, 100).await;
    a.file_chunk(&f, 0, &random_bytes(50, 17)).await;
    assert_eq!(a.ok(status(&f)).await["received"], 50);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = a.request(status(&f)).await;
        if r["type"] == "error" {
            assert_eq!(r["code"], "not_found", "{r}");
            break;
        }
        assert_eq!(r["received"], 50, "{r}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unfinished upload is still there after 10 s: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.err(chunk(&f, 50, &[0; 50]), "not_found").await;
    a.err(end(&f), "not_found").await;
    // The sent file survived the same cleanup.
    assert_eq!(a.download(&k).await, kept);
    assert_eq!(b.download(&k).await, kept);
}

/// Two sessions of one user race every step of the same upload (a chunk at
/// one offset, the next chunk, `file.end`): one chunk per offset is taken,
/// the other is told the offset it should have used (never `unavailable`),
/// both ends agree, and the stored bytes are exactly those the hash names,
/// so a later upload of the same bytes (stored once, by hash) reads back
/// the same.
#[tokio::test]
async fn sessions_racing_one_upload_never_mix_its_bytes() {
    const HALF: usize = 300;
    let srv = server().start();
    let mut a1 = srv.user_on("alice", "phone").await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    for round in 0..40u64 {
        let x = random_bytes(2 * HALF, 1000 + round);
        let y = random_bytes(2 * HALF, 5000 + round);
        let f = a1.file_begin("race.bin", None, 2 * HALF).await;
        let mut won = Vec::new();
        for at in [0, HALF] {
            let (r1, r2) = tokio::join!(
                a1.request(chunk(&f, at, &x[at..at + HALF])),
                a2.request(chunk(&f, at, &y[at..at + HALF])),
            );
            let (loser, bytes) = match (r1["type"].as_str(), r2["type"].as_str()) {
                (Some("ok"), Some("error")) => (&r2, &x),
                (Some("error"), Some("ok")) => (&r1, &y),
                _ => panic!("round {round} offset {at}: one chunk must win: {r1} / {r2}"),
            };
            assert_eq!(loser["code"], "bad_request", "round {round}: {loser}");
            won.extend_from_slice(&bytes[at..at + HALF]);
        }
        let (e1, e2) = tokio::join!(a1.request(end(&f)), a2.request(end(&f)));
        for e in [&e1, &e2] {
            assert_eq!(e["type"], "ok", "round {round}: {e}");
            assert_eq!(e["size"], 2 * HALF, "round {round}: {e}");
            assert_eq!(e["sha256"], sha256_hex(&won), "round {round}: {e}");
        }
        assert_eq!(a2.download(&f).await, won, "round {round}: stored bytes");
        // The same bytes again share the stored copy, which must be them.
        let g = a2.upload("again.bin", None, &won).await;
        assert_eq!(
            a1.download(&g).await,
            won,
            "round {round}: deduplicated copy"
        );
    }
}

/// `file.read` never serves a byte past the recorded size, and an offset
/// at or past the end, however large, is an empty `eof` answer.
#[tokio::test]
async fn file_read_stops_at_the_recorded_size() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(1000, 30);
    let f = a.upload("a.bin", None, &data).await;
    for offset in [1000, 1001, 1 << 32, 1 << 63, u64::MAX - 1, u64::MAX] {
        let r = a
            .ok(json!({"type":"file.read","file":f,"offset":offset,"len":CHUNK}))
            .await;
        assert_eq!(
            (&r["data"], &r["eof"]),
            (&json!(""), &json!(true)),
            "{offset}: {r}"
        );
    }
    // A stored copy longer than the record (a torn write, an older
    // server) leaks nothing past `size`: lengthen it behind the server's
    // back where the bytes are on disk.
    if let Some(dir) = srv.data().dir() {
        let sha = sha256_hex(&data);
        let path = dir.join("files/blobs").join(&sha[..2]).join(&sha);
        let mut longer = std::fs::read(&path).expect("stored copy");
        longer.extend_from_slice(b"secret bytes past the end");
        std::fs::write(&path, longer).expect("lengthen the stored copy");
    }
    let (d, eof) = a.file_read(&f, 990, CHUNK).await;
    assert_eq!((d.as_slice(), eof), (&data[990..], true));
    assert_eq!(a.download(&f).await, data);
}

#[tokio::test]
async fn once_the_quota_is_used_up_even_an_empty_file_is_too_large() {
    let srv = server()
        .config(|c| {
            c.limits.user_quota = 1000;
            c.limits.max_file = 5000;
        })
        .start();
    let mut a = srv.user("alice").await;
    let empty = a.file_begin("empty-before.txt", None, 0).await;
    a.file_end(&empty, b"").await;
    a.file_begin("all.bin", None, 1000).await;
    a.err(begin("empty.txt", None, 0), "too_large").await;
    a.err(begin("one.bin", None, 1), "too_large").await;
    // Someone else's quota is their own.
    let mut b = srv.user("bob").await;
    b.file_begin("empty.txt", None, 0).await;
}

/// Begins racing on several sessions of one user never take more than the
/// quota between them.
#[tokio::test]
async fn racing_begins_never_exceed_the_quota() {
    let srv = server()
        .config(|c| {
            c.limits.user_quota = 1000;
            c.limits.max_file = 1000;
        })
        .start();
    for round in 0..15 {
        let name = format!("racer{round}");
        let mut s1 = srv.user_on(&name, "one").await;
        let mut s2 = srv.user_on(&name, "two").await;
        let mut s3 = srv.user_on(&name, "three").await;
        let (r1, r2, r3) = tokio::join!(
            s1.request(begin("a.bin", None, 600)),
            s2.request(begin("b.bin", None, 600)),
            s3.request(begin("c.bin", None, 600)),
        );
        let oks = [&r1, &r2, &r3].iter().filter(|r| r["type"] == "ok").count();
        assert_eq!(oks, 1, "round {round}: {r1} / {r2} / {r3}");
        for r in [&r1, &r2, &r3].iter().filter(|r| r["type"] != "ok") {
            assert_eq!(r["code"], "too_large", "round {round}: {r}");
        }
    }
}

#[tokio::test]
async fn too_many_unfinished_uploads_are_rate_limited() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    // The default is 20 at a time.
    let mut open: Vec<String> = Vec::new();
    for i in 0..20 {
        open.push(a.file_begin(&format!("{i}.bin"), None, 1).await);
    }
    a.err(begin("21.bin", None, 1), "rate_limited").await;
    a.err(begin("empty.bin", None, 0), "rate_limited").await;
    // Sizes come first.
    a.err(begin("huge.bin", None, u64::MAX), "too_large").await;
    // Finishing one frees its place; other users have their own.
    a.file_chunk(&open[0], 0, b"x").await;
    a.file_end(&open[0], b"x").await;
    a.file_begin("21.bin", None, 1).await;
    a.err(begin("22.bin", None, 1), "rate_limited").await;
    let mut b = srv.user("bob").await;
    b.file_begin("b.bin", None, 1).await;
}

#[tokio::test]
async fn the_unfinished_upload_cap_is_configurable() {
    let srv = server().config(|c| c.limits.max_open_uploads = 2).start();
    let mut a = srv.user("alice").await;
    a.file_begin("1.bin", None, 1).await;
    a.file_begin("2.bin", None, 1).await;
    a.err(begin("3.bin", None, 1), "rate_limited").await;
}

/// The moment the periodic cleanup (every second with `upload_ttl_secs =
/// 1`) takes a probe upload; it runs again a whole number of seconds later.
async fn cleanup_tick(c: &mut Client) -> tokio::time::Instant {
    let probe = c.file_begin("probe.bin", None, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.request(status(&probe)).await;
        if r["type"] == "error" {
            assert_eq!(r["code"], "not_found", "{r}");
            return tokio::time::Instant::now();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cleanup within 5 s"
        );
    }
}

/// Uploads `n` small unsent files with distinct bytes; by id, ascending,
/// as cleanup goes through them.
async fn unsent_files(c: &mut Client, n: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let data = random_bytes(64, seed + i as u64);
        files.push((c.upload("old.bin", None, &data).await, data));
    }
    files.sort();
    files
}

/// Sends every request of `frames` without waiting, then returns the
/// replies in the same order (events arriving meanwhile are dropped).
async fn pipelined(c: &mut Client, frames: Vec<Value>) -> Vec<Value> {
    let n = frames.len();
    for (i, mut f) in frames.into_iter().enumerate() {
        f["id"] = json!(format!("p-{i}"));
        c.send(f).await;
    }
    let mut replies = vec![Value::Null; n];
    let mut got = 0;
    while got < n {
        let v = c.recv().await;
        let at = v["id"]
            .as_str()
            .and_then(|s| s.strip_prefix("p-")?.parse::<usize>().ok());
        if let Some(i) = at {
            replies[i] = v;
            got += 1;
        }
    }
    replies
}

/// A file sent at the moment cleanup collects it is either refused
/// (`not_found`) or kept: an `ok` send always leaves the receiver a file
/// to read.
#[tokio::test]
async fn cleanup_never_takes_a_file_as_it_is_sent() {
    let srv = server().config(|c| c.limits.upload_ttl_secs = 1).start();
    let (mut a, mut b) = pair(&srv).await;
    for round in 0..3u64 {
        let tick = cleanup_tick(&mut a).await;
        // Begun after `tick`: first collected one tick later.
        let files = unsent_files(&mut a, 150, round * 1000).await;
        tokio::time::sleep_until(tick + Duration::from_millis(1995)).await;
        // Latest first: cleanup reaches those last.
        let sends = files
            .iter()
            .rev()
            .map(|(f, _)| json!({"type":"msg.send","to":"bob","attachment":f}))
            .collect();
        let replies = pipelined(&mut a, sends).await;
        for ((f, data), r) in files.iter().rev().zip(&replies) {
            if r["type"] == "error" {
                assert_eq!(r["code"], "not_found", "round {round}: {r}");
                continue;
            }
            assert_eq!(r["type"], "ok", "round {round}: {r}");
            let got = b.request(read(f, 0, CHUNK)).await;
            assert_eq!(
                got["type"], "ok",
                "round {round}: {f} was sent, then removed: {got}"
            );
            assert_eq!(unb64(got["data"].as_str().unwrap_or("")), *data);
        }
    }
}

/// A file finished (`file.end`) at the moment cleanup removes an unsent
/// file with the same bytes keeps its bytes: they are stored once, by
/// hash, and cleanup removes them only when no file uses them.
#[tokio::test]
async fn cleanup_never_takes_the_bytes_of_a_file_as_it_is_finished() {
    const PAIRS: usize = 40;
    const ENDERS: usize = 4;
    let srv = server()
        .config(|c| {
            c.limits.upload_ttl_secs = 1;
            c.limits.max_open_uploads = 100_000;
        })
        .start();
    let (mut a, mut b) = pair(&srv).await;
    let mut enders = Vec::new();
    for i in 0..ENDERS {
        enders.push(srv.user_on("alice", &format!("ender-{i}")).await);
    }
    let mut junk = srv.user("junk").await;
    for round in 0..3u64 {
        let tick = cleanup_tick(&mut a).await;
        let old = unsent_files(&mut a, PAIRS, 7000 + round * 1000).await;
        // Unfinished uploads among them, in the order cleanup takes
        // files, so that it goes from one old file to the next about as
        // fast as the copies below are finished.
        let begins = (0..PAIRS * 15)
            .map(|_| begin("junk.bin", None, 1))
            .collect();
        pipelined(&mut junk, begins).await;
        // The copies begin after the next tick, so the one after that
        // collects the old files but not them.
        tokio::time::sleep_until(tick + Duration::from_millis(1050)).await;
        let mut copies = Vec::with_capacity(old.len());
        for (k, (_, data)) in old.iter().enumerate() {
            let e = &mut enders[k % ENDERS];
            let f = e.file_begin("new.bin", None, data.len()).await;
            e.file_chunk(&f, 0, data).await;
            copies.push((k % ENDERS, f, data.clone()));
        }
        tokio::time::sleep_until(tick + Duration::from_millis(1995)).await;
        // Every session finishes its copies in the order cleanup goes
        // through the old files, all sessions at once.
        let ends = enders.iter_mut().enumerate().map(|(i, e)| {
            let mine = copies.iter().filter(|c| c.0 == i).map(|c| end(&c.1));
            pipelined(e, mine.collect())
        });
        let ended = futures_util::future::join_all(ends).await;
        // On a slow machine a copy may be older than the TTL by now and
        // rightly collected (`not_found`); a lost blob shows as a copy
        // that was finished and sent but cannot be read.
        for r in ended.iter().flatten() {
            assert!(
                r["type"] == "ok" || r["code"] == "not_found",
                "round {round}: {r}"
            );
        }
        // Sent at once, so that only lost bytes can make them unreadable.
        let sends = copies
            .iter()
            .map(|(_, f, _)| json!({"type":"msg.send","to":"bob","attachment":f}))
            .collect();
        let sent = pipelined(&mut a, sends).await;
        for ((_, f, data), s) in copies.iter().zip(&sent) {
            if s["type"] != "ok" {
                assert_eq!(s["code"], "not_found", "round {round}: {s}");
                continue;
            }
            let got = b.request(read(f, 0, CHUNK)).await;
            assert_eq!(
                got["type"], "ok",
                "round {round}: {f} lost its bytes: {got}"
            );
            assert_eq!(unb64(got["data"].as_str().unwrap_or("")), *data);
        }
    }
}
