use im_tests::*;
use serde_json::json;

#[tokio::test]
async fn two_users_chat() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    let ok = a.send_dm("bob", "hi").await;
    assert_eq!(ok["seq"], 1);
    assert_eq!(ok["conv"], "dm:alice:bob");
    let m = b.expect("msg").await;
    assert_eq!(m["body"], "hi");
    assert_eq!(m["from"], "alice");
    let r = a.request(json!({"type":"ping"})).await;
    assert_eq!(r["type"], "pong");
}
