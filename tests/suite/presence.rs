//! docs/PROTOCOL.md "Contacts and presence": presence frames, notes, offline
//! with last_seen, multi-session presence, and who may see it.

use serde_json::{json, Value};

use super::server;

fn set(status: &str) -> Value {
    json!({"type":"presence.set","status":status})
}

fn set_note(status: &str, note: &str) -> Value {
    json!({"type":"presence.set","status":status,"note":note})
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn assert_offline(p: &Value, user: &str, not_before: i64) {
    assert_eq!(p["type"], "presence", "{p}");
    assert_eq!(p["user"], user, "{p}");
    assert_eq!(p["status"], "offline", "{p}");
    let ls = p["last_seen"]
        .as_i64()
        .unwrap_or_else(|| panic!("last_seen: {p}"));
    // Server and test share a clock; allow for rounding.
    assert!(
        ls >= not_before - 1000,
        "last_seen {ls} before {not_before}"
    );
    assert!(p.get("note").is_none(), "{p}");
}

#[tokio::test]
async fn the_first_session_announces_online_with_no_note() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.ok(set_note("busy", "in a meeting")).await;
    assert_eq!(b.expect("presence").await["status"], "busy");
    a.close().await;
    b.expect("presence").await;
    let a = srv.user("alice").await;
    // Online again, and the old note is gone.
    assert_eq!(
        b.recv().await,
        json!({"type":"presence","user":"alice","status":"online"})
    );
    // A second session does not announce anything.
    let _a2 = srv.user_on("alice", "laptop").await;
    b.expect_silence(300).await;
    drop(a);
}

#[tokio::test]
async fn presence_set_reaches_contacts_and_own_other_sessions() {
    let srv = server().start();
    let mut a = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    let mut c = srv.user("carol").await;
    srv.befriend(&mut a, &mut b).await;
    let mut a2 = srv.user_on("alice", "laptop").await;
    a.ok(set_note("away", "at lunch")).await;
    let want = json!({"type":"presence","user":"alice","status":"away","note":"at lunch"});
    assert_eq!(b.recv().await, want);
    assert_eq!(a2.recv().await, want);
    // Busy without a note clears the note.
    a.ok(set("busy")).await;
    let want = json!({"type":"presence","user":"alice","status":"busy"});
    assert_eq!(b.recv().await, want);
    assert_eq!(a2.recv().await, want);
    a2.ok(set_note("online", "back")).await;
    let want = json!({"type":"presence","user":"alice","status":"online","note":"back"});
    assert_eq!(b.recv().await, want);
    assert_eq!(a.recv().await, want);
    // The setting session only gets its ok; strangers get nothing.
    a2.expect_silence(200).await;
    c.expect_silence(0).await;
    // The roster of a new contact session shows status and note.
    let b2 = srv.user_on("bob", "laptop").await;
    assert_eq!(
        b2.login_frames.roster["contacts"],
        json!([{"user":"alice","state":"mutual","presence":"online","note":"back"}])
    );
}

#[tokio::test]
async fn a_note_change_alone_is_announced() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.ok(set_note("away", "one")).await;
    assert_eq!(b.expect("presence").await["note"], "one");
    a.ok(set_note("away", "two")).await;
    let p = b.expect("presence").await;
    assert_eq!(p["status"], "away");
    assert_eq!(p["note"], "two");
}

#[tokio::test]
async fn setting_the_same_presence_again_sends_nothing() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.ok(set_note("away", "same")).await;
    b.expect("presence").await;
    a.ok(set_note("away", "same")).await;
    b.expect_silence(300).await;
    // Already online with no note at login: nothing changes either.
    a.ok(set("online")).await;
    b.expect("presence").await;
    a.ok(set("online")).await;
    b.expect_silence(300).await;
}

#[tokio::test]
async fn presence_set_validation() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for status in ["offline", "invisible", "", "Away"] {
        a.err(set(status), "bad_request").await;
    }
    a.err(json!({"type":"presence.set"}), "bad_request").await;
    a.err(json!({"type":"presence.set","note":"x"}), "bad_request")
        .await;
    // The note is counted in characters: 256 is fine, 257 is too large.
    a.err(set_note("away", &"n".repeat(257)), "too_large").await;
    a.err(set_note("away", &"é".repeat(257)), "too_large").await;
    b.expect_silence(200).await;
    let note = "é".repeat(256);
    a.ok(set_note("away", &note)).await;
    let p = b.expect("presence").await;
    assert_eq!(p["note"], note.as_str());
}

#[tokio::test]
async fn strangers_and_pending_contacts_never_see_presence() {
    let srv = server().start();
    let mut c = srv.user("carol").await;
    let mut d = srv.user("dave").await;
    let mut e = srv.user("erin").await;
    let mut a = srv.user("alice").await;
    // dave has asked alice; alice has asked erin: neither is mutual.
    d.ok(json!({"type":"contact.add","user":"alice"})).await;
    a.expect("contact.request").await;
    a.ok(json!({"type":"contact.add","user":"erin"})).await;
    e.expect("contact.request").await;
    a.ok(set_note("away", "secret")).await;
    a.ok(set("busy")).await;
    let a2 = srv.user_on("alice", "laptop").await;
    a2.close().await;
    a.close().await;
    let a = srv.user("alice").await;
    a.close().await;
    for x in [&mut c, &mut d, &mut e] {
        x.expect_silence(400).await;
    }
    // Rosters do not show it either.
    assert_eq!(
        d.ok(json!({"type":"contact.list"})).await["contacts"],
        json!([{"user":"alice","state":"pending_out"}])
    );
    assert_eq!(
        e.ok(json!({"type":"contact.list"})).await["contacts"],
        json!([{"user":"alice","state":"pending_in"}])
    );
}

#[tokio::test]
async fn closing_the_last_session_sends_offline_with_last_seen() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let before = now_ms();
    a.close().await;
    let p = b.expect("presence").await;
    assert_offline(&p, "alice", before);
    // The roster keeps it.
    let list = b.ok(json!({"type":"contact.list"})).await;
    assert_eq!(
        list["contacts"],
        json!([{"user":"alice","state":"mutual","presence":"offline","last_seen":p["last_seen"]}])
    );
}

#[tokio::test]
async fn logout_sends_offline_with_last_seen() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.ok(set_note("away", "gone")).await;
    b.expect("presence").await;
    let before = now_ms();
    a.ok(json!({"type":"logout"})).await;
    a.expect_closed().await;
    assert_offline(&b.expect("presence").await, "alice", before);
}

#[tokio::test]
async fn an_idle_timeout_sends_offline_with_last_seen() {
    let srv = server().config(|c| c.limits.idle_timeout_secs = 1).start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let before = now_ms();
    // Alice says nothing more; bob keeps pinging.
    let p = b.expect_pinging("presence").await;
    assert_offline(&p, "alice", before);
    a.expect_closed().await;
}

#[tokio::test]
async fn a_user_is_online_while_any_session_lives() {
    let srv = server().start();
    let a1 = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    let mut a1 = a1;
    srv.befriend(&mut a1, &mut b).await;
    let a2 = srv.user_on("alice", "laptop").await;
    let mut a3 = srv.client().await;
    a3.login_token("alice", a1.token.as_deref().unwrap()).await;
    b.expect_silence(200).await;
    a1.close().await;
    a3.ok(json!({"type":"logout"})).await;
    a3.expect_closed().await;
    b.expect_silence(400).await;
    assert_eq!(
        b.ok(json!({"type":"contact.list"})).await["contacts"][0]["presence"],
        "online"
    );
    let before = now_ms();
    a2.close().await;
    assert_offline(&b.expect("presence").await, "alice", before);
    b.expect_silence(200).await;
}

#[tokio::test]
async fn a_quick_reconnect_ends_online_for_contacts() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    for round in 0..8 {
        let token = a.token.clone().expect("token");
        let mut again = srv.client().await;
        a.close().await;
        again.login_token("alice", &token).await;
        a = again;
        // An `offline` may come first, but never after the `online`.
        let last = b
            .drain(300)
            .await
            .into_iter()
            .rfind(|f| f["type"] == "presence");
        if let Some(p) = last {
            assert_eq!(p["status"], "online", "round {round}: {p}");
        }
        assert_eq!(
            b.ok(json!({"type":"contact.list"})).await["contacts"][0]["presence"],
            "online",
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_second_session_keeps_the_chosen_status() {
    let srv = server().start();
    let mut a = srv.user_on("alice", "phone").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    a.ok(set_note("away", "brb")).await;
    b.expect("presence").await;
    let _a2 = srv.user_on("alice", "laptop").await;
    b.expect_silence(300).await;
    assert_eq!(
        b.ok(json!({"type":"contact.list"})).await["contacts"],
        json!([{"user":"alice","state":"mutual","presence":"away","note":"brb"}])
    );
}

#[tokio::test]
async fn every_session_of_a_contact_gets_presence() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b1 = srv.user_on("bob", "phone").await;
    srv.befriend(&mut a, &mut b1).await;
    let mut b2 = srv.user_on("bob", "laptop").await;
    a.ok(set("busy")).await;
    assert_eq!(b1.expect("presence").await["status"], "busy");
    assert_eq!(b2.expect("presence").await["status"], "busy");
    a.close().await;
    assert_eq!(b1.expect("presence").await["status"], "offline");
    assert_eq!(b2.expect("presence").await["status"], "offline");
}

#[tokio::test]
async fn the_roster_shows_offline_contacts_with_last_seen() {
    let srv = server().start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    b.close().await;
    let p = a.expect("presence").await;
    a.close().await;
    let a = srv.user("alice").await;
    assert_eq!(
        a.login_frames.roster,
        json!({"type":"roster","contacts":[
            {"user":"bob","state":"mutual","presence":"offline","last_seen":p["last_seen"]}
        ]})
    );
}
