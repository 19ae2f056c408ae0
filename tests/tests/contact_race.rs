//! "Contact changes take effect with their `ok`, for both users": a
//! `msg.send` either user sends right after the `ok` of a `contact.accept`
//! is never refused for want of the contact, and one sent right after the
//! `ok` of a `contact.remove` or `contact.block` is never let through.
//! 200 rounds per transport mix, each user with a second device logged in
//! on which the racing send goes out.

use im_tests::{Client, TestServer, PASSWORD};
use serde_json::json;

const ROUNDS: usize = 200;

#[derive(Clone, Copy, Debug)]
enum Mix {
    Tcp,
    Ws,
    /// Each user's two devices on different transports.
    Mixed,
}

async fn device(srv: &TestServer, ws: bool, user: &str, device: &str) -> Client {
    let mut c = if ws {
        Client::connect_ws(srv.http).await
    } else {
        Client::connect(srv.addr).await
    };
    c.login_device(user, PASSWORD, device).await;
    c
}

/// Alice and Bob, each on a phone and a laptop.
async fn devices(srv: &TestServer, mix: Mix) -> [Client; 4] {
    srv.register("alice").await;
    srv.register("bob").await;
    let (first, second) = match mix {
        Mix::Tcp => (false, false),
        Mix::Ws => (true, true),
        Mix::Mixed => (false, true),
    };
    [
        device(srv, first, "alice", "phone").await,
        device(srv, second, "alice", "laptop").await,
        device(srv, second, "bob", "phone").await,
        device(srv, first, "bob", "laptop").await,
    ]
}

fn send(to: &str, body: String) -> serde_json::Value {
    json!({"type":"msg.send","to":to,"body":body})
}

/// The reply with `id`, skipping events.
async fn reply_to(c: &mut Client, id: &str) -> serde_json::Value {
    loop {
        let v = c.recv().await;
        if v["id"] == id {
            return v;
        }
    }
}

async fn accept_then_send_at_once(mix: Mix) {
    let srv = TestServer::start();
    let [mut a_phone, mut a_laptop, mut b_phone, mut b_laptop] = devices(&srv, mix).await;
    for round in 0..ROUNDS {
        a_phone.ok(json!({"type":"contact.add","user":"bob"})).await;
        b_phone
            .ok(json!({"type":"contact.accept","user":"alice"}))
            .await;
        // Both users send the moment the accept's `ok` is in, each from
        // their other device, both on the wire before either reply.
        let id = format!("r{round}");
        let mut to_bob = send("bob", format!("a{round}"));
        to_bob["id"] = json!(id);
        let mut to_alice = send("alice", format!("b{round}"));
        to_alice["id"] = json!(id);
        a_laptop.send(to_bob).await;
        b_laptop.send(to_alice).await;
        let from_alice = reply_to(&mut a_laptop, &id).await;
        let from_bob = reply_to(&mut b_laptop, &id).await;
        assert_eq!(
            from_alice["type"], "ok",
            "{mix:?} round {round}: {from_alice}"
        );
        assert_eq!(from_bob["type"], "ok", "{mix:?} round {round}: {from_bob}");
        // The end of a contact takes effect with its `ok` too.
        if round % 2 == 0 {
            a_phone
                .ok(json!({"type":"contact.remove","user":"bob"}))
                .await;
        } else {
            a_phone
                .ok(json!({"type":"contact.block","user":"bob"}))
                .await;
        }
        b_laptop
            .err(send("alice", format!("late b{round}")), "forbidden")
            .await;
        a_laptop
            .err(send("bob", format!("late a{round}")), "forbidden")
            .await;
        if round % 2 == 1 {
            a_phone
                .ok(json!({"type":"contact.unblock","user":"bob"}))
                .await;
        }
    }
}

#[tokio::test]
async fn accept_then_send_over_tcp() {
    accept_then_send_at_once(Mix::Tcp).await;
}

#[tokio::test]
async fn accept_then_send_over_websocket() {
    accept_then_send_at_once(Mix::Ws).await;
}

#[tokio::test]
async fn accept_then_send_with_devices_on_both_transports() {
    accept_then_send_at_once(Mix::Mixed).await;
}
