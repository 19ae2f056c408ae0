//! The authorization matrix: every request that names another user's or
//! another conversation's data, sent by an outsider (logged in, but no
//! member, owner or contact of anyone involved).
//!
//! For each row the outsider is refused, and the refusal for something
//! that exists is the same (`code` and `message`, or HTTP status and body)
//! as for a made-up id, room or conversation: an outsider cannot tell
//! "hidden" from "absent" (docs/PROTOCOL.md: `not_found` is "does not exist
//! or is not visible to you"). The outsider also never sees another
//! user's conversations in `convs`, nor any event about them (`receipt`,
//! `presence`, `msg`, `typing`, room events), and neither does a user
//! whose contact request is still pending.
//!
//! Every failing row is collected and reported together.

use im_tests::*;
use serde_json::{json, Value};

/// A protocol request, in a version that names existing data and one that
/// names made-up data.
struct Row {
    what: &'static str,
    existing: Value,
    made_up: Value,
}

fn row(what: &'static str, existing: Value, made_up: Value) -> Row {
    Row {
        what,
        existing,
        made_up,
    }
}

/// The same request with `key` set to `existing` and then to `made_up`.
fn row_on(what: &'static str, base: Value, key: &str, existing: &str, made_up: &str) -> Row {
    let (mut e, mut m) = (base.clone(), base);
    e[key] = json!(existing);
    m[key] = json!(made_up);
    row(what, e, m)
}

/// A file id of the same shape as `id` that names no file.
fn fake_file_id(id: &str) -> String {
    let (prefix, rest) = id.split_at(2.min(id.len()));
    let flipped: String = rest
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    format!("{prefix}{flipped}")
}

fn refusal(v: &Value) -> String {
    if v["type"] == "error" {
        format!("{} {}", v["code"], v["message"])
    } else {
        format!("not refused: {v}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_cannot_tell_hidden_data_from_absent_data() {
    let srv = TestServer::start();

    // alice and bob: contacts with a direct conversation, a private room
    // (carol banned from it) and a public room, a file alice sent bob and
    // an upload of alice's still in progress. alice also has a second
    // device, `alice-phone`.
    let mut alice = srv.user("alice").await;
    let mut bob = srv.user("bob").await;
    srv.befriend(&mut alice, &mut bob).await;
    let phone = srv.user_on("alice", "alice-phone").await;
    let mut carol = srv.user("carol").await;

    alice
        .ok(json!({"type":"room.create","name":"secret","topic":"ours","public":false}))
        .await;
    alice
        .ok(json!({"type":"room.create","name":"lobby","topic":"open"}))
        .await;
    for who in ["bob", "carol"] {
        alice
            .ok(json!({"type":"room.invite","name":"secret","user":who}))
            .await;
    }
    bob.ok(json!({"type":"room.join","name":"secret"})).await;
    carol.ok(json!({"type":"room.join","name":"secret"})).await;
    alice
        .ok(json!({"type":"room.kick","name":"secret","user":"carol"}))
        .await;
    alice
        .ok(json!({"type":"msg.send","room":"secret","body":"private words"}))
        .await;
    alice
        .ok(json!({"type":"msg.send","room":"lobby","body":"public words"}))
        .await;
    let data = random_bytes(5000, 3);
    let file = alice.upload("cat.png", Some("image/png"), &data).await;
    alice
        .ok(json!({"type":"msg.send","to":"bob","body":"look","attachment":file}))
        .await;
    let upload = alice.file_begin("draft.bin", None, 1000).await;
    alice.file_chunk(&upload, 0, &random_bytes(10, 4)).await;
    bob.ok(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":1,"read":true}))
        .await;
    let fake = fake_file_id(&file);
    let fake_upload = fake_file_id(&upload);
    assert_ne!(fake, file);

    // The outsider, and a user whose contact request alice never answers.
    let mut eve = srv.user("eve").await;
    let mut pat = srv.user("pat").await;
    pat.ok(json!({"type":"contact.add","user":"alice"})).await;

    let rows = vec![
        row_on(
            "history of a direct conversation",
            json!({"type":"history"}),
            "conv",
            "dm:alice:bob",
            "dm:alice:zed",
        ),
        row_on(
            "history of a private room",
            json!({"type":"history"}),
            "conv",
            "room:secret",
            "room:nosuchroom",
        ),
        row_on(
            "history of a public room not joined",
            json!({"type":"history"}),
            "conv",
            "room:lobby",
            "room:nosuchroom",
        ),
        row_on(
            "msg.ack of a direct conversation",
            json!({"type":"msg.ack","seq":1,"read":true}),
            "conv",
            "dm:alice:bob",
            "dm:alice:zed",
        ),
        row_on(
            "msg.ack of a private room",
            json!({"type":"msg.ack","seq":1,"read":true}),
            "conv",
            "room:secret",
            "room:nosuchroom",
        ),
        row_on(
            "msg.ack of a public room not joined",
            json!({"type":"msg.ack","seq":1}),
            "conv",
            "room:lobby",
            "room:nosuchroom",
        ),
        row_on(
            "file.read of another's file",
            json!({"type":"file.read","offset":0,"len":100}),
            "file",
            &file,
            &fake,
        ),
        row_on(
            "file.url of another's file",
            json!({"type":"file.url"}),
            "file",
            &file,
            &fake,
        ),
        row_on(
            "file.status of another's upload",
            json!({"type":"file.status"}),
            "file",
            &upload,
            &fake_upload,
        ),
        row_on(
            "file.status of another's finished file",
            json!({"type":"file.status"}),
            "file",
            &file,
            &fake,
        ),
        row_on(
            "file.chunk to another's upload",
            json!({"type":"file.chunk","offset":10,"data":b64(b"evil")}),
            "file",
            &upload,
            &fake_upload,
        ),
        row_on(
            "file.chunk to another's finished file",
            json!({"type":"file.chunk","offset":0,"data":b64(b"evil")}),
            "file",
            &file,
            &fake,
        ),
        row_on(
            "file.end of another's upload",
            json!({"type":"file.end"}),
            "file",
            &upload,
            &fake_upload,
        ),
        row_on(
            "file.end of another's finished file",
            json!({"type":"file.end"}),
            "file",
            &file,
            &fake,
        ),
        row_on(
            "msg.send attaching another's file",
            json!({"type":"msg.send","room":"eves-room","body":"fwd"}),
            "attachment",
            &file,
            &fake,
        ),
        row_on(
            "room.members of a private room",
            json!({"type":"room.members"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.topic of a private room",
            json!({"type":"room.topic","topic":"pwned"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.kick in a private room",
            json!({"type":"room.kick","user":"bob"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.invite to a private room",
            json!({"type":"room.invite","user":"pat"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.unban in a private room",
            json!({"type":"room.unban","user":"carol"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.join of a private room without invitation",
            json!({"type":"room.join"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.leave of a private room",
            json!({"type":"room.leave"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "typing to a private room",
            json!({"type":"typing"}),
            "room",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "msg.send to a private room",
            json!({"type":"msg.send","body":"hello?"}),
            "room",
            "secret",
            "nosuchroom",
        ),
        // The same requests with other fields that a server checking in
        // the wrong order would trip over before hiding the room or file.
        row_on(
            "room.kick of the owner in a private room",
            json!({"type":"room.kick","user":"alice"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.kick of oneself in a private room",
            json!({"type":"room.kick","user":"eve"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.invite of oneself to a private room",
            json!({"type":"room.invite","user":"eve"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.invite of an unknown user to a private room",
            json!({"type":"room.invite","user":"zed"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "room.unban of an unknown user in a private room",
            json!({"type":"room.unban","user":"zed"}),
            "name",
            "secret",
            "nosuchroom",
        ),
        row_on(
            "file.chunk at a wrong offset to another's upload",
            json!({"type":"file.chunk","offset":0,"data":b64(b"evil")}),
            "file",
            &upload,
            &fake_upload,
        ),
        row_on(
            "file.url of another's upload",
            json!({"type":"file.url"}),
            "file",
            &upload,
            &fake_upload,
        ),
        row_on(
            "file.read past the end of another's file",
            json!({"type":"file.read","offset":1_000_000}),
            "file",
            &file,
            &fake,
        ),
        row_on(
            "msg.ack far past the end of a direct conversation",
            json!({"type":"msg.ack","seq":u64::MAX}),
            "conv",
            "dm:alice:bob",
            "dm:alice:zed",
        ),
        row_on(
            "history of a direct conversation, paged",
            json!({"type":"history","before":2,"limit":1}),
            "conv",
            "dm:alice:bob",
            "dm:alice:zed",
        ),
        row_on(
            "device.revoke of another user's device",
            json!({"type":"device.revoke"}),
            "device",
            "alice-phone",
            "never-used",
        ),
    ];

    // eve's own public room, where the attachment row sends.
    eve.ok(json!({"type":"room.create","name":"eves-room"}))
        .await;

    let mut failures: Vec<String> = Vec::new();
    for r in &rows {
        let e = eve.request(r.existing.clone()).await;
        let m = eve.request(r.made_up.clone()).await;
        let same = e["type"] == "error"
            && m["type"] == "error"
            && e["code"] == m["code"]
            && e["message"] == m["message"];
        let line = format!(
            "{}: existing -> {}; nonexistent -> {}",
            r.what,
            refusal(&e),
            refusal(&m)
        );
        println!("{line}");
        if !same {
            failures.push(line);
        }
    }
    // A device name is all device.revoke takes: another user's device is
    // simply not one of yours.
    let r = eve
        .request(json!({"type":"device.revoke","device":"alice-phone"}))
        .await;
    if r["code"] != "not_found" {
        failures.push(format!(
            "device.revoke of another user's device: {} (want not_found)",
            refusal(&r)
        ));
    }

    // HTTP downloads with eve's token, and a forged signed link.
    let auth = format!("Bearer {}", eve.token.clone().expect("token"));
    let headers = [("Authorization", auth.as_str())];
    let http_rows = [
        (
            "GET /files/<id> with an outsider's token",
            format!("/files/{file}"),
            format!("/files/{fake}"),
            &headers[..],
        ),
        (
            "GET /files/<id> of an upload with an outsider's token",
            format!("/files/{upload}"),
            format!("/files/{fake_upload}"),
            &headers[..],
        ),
        (
            "GET /files/<id> with a forged link signature",
            format!("/files/{file}?exp=4102444800&sig={}", "0".repeat(64)),
            format!("/files/{fake}?exp=4102444800&sig={}", "0".repeat(64)),
            &[][..],
        ),
    ];
    let methods = ["GET", "HEAD"];
    for ((what, existing, made_up, h), method) in http_rows
        .iter()
        .flat_map(|r| methods.iter().map(move |m| (r, *m)))
    {
        let what = what.replacen("GET", method, 1);
        let e = http_request(srv.http, method, existing, h).await;
        let m = http_request(srv.http, method, made_up, h).await;
        let show =
            |r: &HttpResponse| format!("{} {:?}", r.status, String::from_utf8_lossy(&r.body));
        let line = format!(
            "{what}: existing -> {}; nonexistent -> {}",
            show(&e),
            show(&m)
        );
        println!("{line}");
        if e.status < 400 || e.status != m.status || e.body != m.body {
            failures.push(line);
        }
    }

    // What others do now must not reach eve or pat: receipts, presence,
    // typing, room events, messages.
    bob.ok(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":2,"read":true}))
        .await;
    alice
        .ok(json!({"type":"msg.ack","conv":"dm:alice:bob","seq":2,"read":true}))
        .await;
    alice
        .ok(json!({"type":"presence.set","status":"away","note":"at lunch"}))
        .await;
    bob.ok(json!({"type":"presence.set","status":"busy"})).await;
    alice.ok(json!({"type":"typing","to":"bob"})).await;
    alice.ok(json!({"type":"typing","room":"secret"})).await;
    alice
        .ok(json!({"type":"room.topic","name":"secret","topic":"still ours"}))
        .await;
    alice.send_dm("bob", "more").await;
    phone.close().await;
    let _ = srv.user_on("alice", "alice-phone").await;

    for (who, c) in [("eve", &mut eve), ("pat", &mut pat)] {
        let convs = c.ok(json!({"type":"convs"})).await;
        let foreign: Vec<&Value> = convs["convs"]
            .as_array()
            .map(|a| a.iter().filter(|e| e["conv"] != "room:eves-room").collect())
            .unwrap_or_default();
        if !foreign.is_empty() {
            failures.push(format!(
                "convs of {who} lists others' conversations: {foreign:?}"
            ));
        }
        for v in c.drain(300).await {
            failures.push(format!("{who} received an event about others: {v}"));
        }
    }
    // A pending request shows no presence.
    let list = pat.ok(json!({"type":"contact.list"})).await;
    for entry in list["contacts"].as_array().into_iter().flatten() {
        if entry.get("presence").is_some() || entry.get("note").is_some() {
            failures.push(format!("pat's pending request shows presence: {entry}"));
        }
    }

    // Nothing eve tried had an effect.
    let members = alice
        .ok(json!({"type":"room.members","name":"secret"}))
        .await;
    let names: Vec<&str> = members["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["user"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["alice", "bob"], "{members}");
    let devices = alice.ok(json!({"type":"devices"})).await;
    assert!(
        devices.to_string().contains("alice-phone"),
        "alice's phone is gone: {devices}"
    );

    assert!(
        failures.is_empty(),
        "{} authorization row(s) fail:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
