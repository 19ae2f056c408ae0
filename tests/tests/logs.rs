//! Logs of the real example server: with `log.format = "json"` every line
//! is a JSON object and a session's lines carry its span (id, transport,
//! peer, user); at the most verbose level no password, token or message
//! body appears anywhere.

use std::time::Duration;

use im_tests::process::ServerProcess;
use im_tests::*;
use serde_json::{json, Value};

const SECRET_PASSWORD: &str = "pw-ZZ-never-logged-ZZ";
const SECRET_BODY: &str = "body-QQ-never-logged-QQ";

#[tokio::test]
async fn json_lines_with_session_fields_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(
        dir.path(),
        &[("IM__LOG__FORMAT", "json"), ("RUST_LOG", "trace")],
    );
    let mut alice = Client::connect(srv.addr).await;
    alice
        .ok(json!({"type":"register","username":"alice","password":SECRET_PASSWORD}))
        .await;
    let token = alice.login("alice", SECRET_PASSWORD).await.ok["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bob = Client::connect_ws(srv.http).await;
    bob.ok(json!({"type":"register","username":"bob","password":SECRET_PASSWORD}))
        .await;
    bob.login("bob", SECRET_PASSWORD).await;
    alice.ok(json!({"type":"contact.add","user":"bob"})).await;
    bob.expect("contact.request").await;
    bob.ok(json!({"type":"contact.accept","user":"alice"}))
        .await;
    alice.send_dm("bob", SECRET_BODY).await;
    while bob.recv().await["type"] != "msg" {}
    alice
        .err(
            json!({"type":"password.change","old":"wrong-old-pw-XX","new":SECRET_PASSWORD}),
            "invalid_credentials",
        )
        .await;
    let mut again = Client::connect(srv.addr).await;
    again.login_token("alice", &token).await;
    let mut wrong = Client::connect(srv.addr).await;
    wrong
        .err(
            json!({"type":"login","username":"alice","password":"wrong-pw-YY"}),
            "invalid_credentials",
        )
        .await;
    alice.ok(json!({"type":"logout"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logs = srv.logs();
    assert!(logs.len() > 10, "{logs:?}");
    let mut lines: Vec<Value> = Vec::new();
    for l in &logs {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        lines.push(v);
        for secret in [
            SECRET_PASSWORD,
            SECRET_BODY,
            token.as_str(),
            "wrong-pw-YY",
            "wrong-old-pw-XX",
        ] {
            assert!(!l.contains(secret), "a secret in the logs: {l}");
        }
    }
    // The logins, in the session's span, with its fields.
    let logged_in: Vec<&Value> = lines
        .iter()
        .filter(|v| v["fields"]["message"] == "logged in")
        .collect();
    assert!(logged_in.len() >= 3, "{logs:#?}");
    for v in &logged_in {
        let span = &v["span"];
        assert_eq!(span["name"], "session", "{v}");
        assert!(span["id"].is_string() && span["peer"].is_string(), "{v}");
        assert!(
            span["transport"] == "tcp" || span["transport"] == "ws",
            "{v}"
        );
    }
    assert!(
        logged_in
            .iter()
            .any(|v| v["fields"]["method"] == "token" && v["fields"]["user"] == "alice"),
        "{logs:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "login refused"
                && v["fields"]["code"] == "invalid_credentials"),
        "{logs:#?}"
    );
    // The close of the logged-out session carries the user.
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "closing the connection"
                && v["span"]["user"] == "alice"),
        "{logs:#?}"
    );
}
