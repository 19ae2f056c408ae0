//! Actor-level tests on the in-memory transport (no sockets): slow
//! consumers, actor retirement, fan-out to many sessions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{friends, hub, hub_on, recv, until, Client, PASSWORD};
use im_core::MemoryStore;
use serde_json::json;

#[actix_rt::test]
async fn slow_consumer_is_disconnected_and_gets_replay() {
    let hub = hub(|c| c.limits.outbound_queue = 8);
    let (mut a, _) = Client::login(&hub, "alice", "d").await;
    let (mut b, _) = Client::login(&hub, "bob", "d").await;
    friends(&mut a, &mut b, "bob", "alice").await;
    // Bob stops reading; Alice sends more than his queue holds.
    for i in 0..40 {
        let r = a
            .req(json!({"type":"msg.send","to":"bob","body":format!("m{i}")}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    // Bob's connection was closed: reading ends (after at most the queue).
    let mut n = 0;
    while recv(&mut b.inner).await.is_some() {
        n += 1;
        assert!(n <= 8, "more frames than the queue holds");
    }
    // Nothing was lost: all 40 replay at his next login.
    let (_b2, replay) = Client::login(&hub, "bob", "d").await;
    let seqs: Vec<u64> = replay.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn idle_conversation_actor_retires_and_numbering_continues() {
    let hub = hub(|c| c.limits.conv_idle_secs = 1);
    let (mut a, _) = Client::login(&hub, "alice", "d").await;
    let (mut b, _) = Client::login(&hub, "bob", "d").await;
    friends(&mut a, &mut b, "bob", "alice").await;
    let r = a
        .req(json!({"type":"msg.send","to":"bob","body":"one"}))
        .await;
    assert_eq!(r["seq"], 1);
    assert_eq!(hub.census().conversations, 1);
    let census = until(&hub, |c| c.conversations == 0).await;
    assert_eq!(census.conversations, 0, "the idle conversation retired");
    let r = a
        .req(json!({"type":"msg.send","to":"bob","body":"two"}))
        .await;
    assert_eq!(r["seq"], 2);
    // Bob got both, in order.
    let mut got = vec![];
    while got.len() < 2 {
        let f = recv(&mut b.inner).await.expect("msg");
        if f["type"] == "msg" {
            got.push(f["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(got, vec![1, 2]);
}

#[actix_rt::test]
async fn relogin_after_last_session_gets_a_fresh_user_actor() {
    let hub = hub(|_| {});
    for round in 0..3 {
        let (mut a, _) = Client::login(&hub, "alice", "d").await;
        assert_eq!(hub.census().users, 1, "round {round}: alice's actor");
        let r = a
            .req(json!({"type":"presence.set","status":"busy","note":format!("r{round}")}))
            .await;
        assert_eq!(r["type"], "ok");
        let r = a.req(json!({"type":"logout"})).await;
        assert_eq!(r["type"], "ok");
        assert!(recv(&mut a.inner).await.is_none(), "closed after logout");
        let census = until(&hub, |c| c.users == 0).await;
        assert_eq!(census.users, 0, "round {round}: the actor retired");
    }
}

#[actix_rt::test]
async fn many_sessions_of_one_user_all_get_each_message_in_order() {
    let hub = hub(|_| {});
    let (mut a, _) = Client::login(&hub, "alice", "d").await;
    let (mut b, _) = Client::login(&hub, "bob", "d0").await;
    friends(&mut a, &mut b, "bob", "alice").await;
    let mut bobs = vec![];
    for i in 1..20 {
        bobs.push(Client::login(&hub, "bob", &format!("d{i}")).await.0);
    }
    for i in 0..30 {
        a.req(json!({"type":"msg.send","to":"bob","body":format!("m{i}")}))
            .await;
    }
    for s in bobs.iter_mut() {
        let mut seqs = vec![];
        while seqs.len() < 30 {
            let f = recv(&mut s.inner).await.expect("msg");
            if f["type"] == "msg" {
                seqs.push(f["seq"].as_u64().unwrap());
            }
        }
        assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    }
}

#[actix_rt::test]
async fn suspending_closes_sessions_and_refuses_logins() {
    let hub = hub(|_| {});
    let (mut a, _) = Client::login(&hub, "alice", "phone").await;
    let (mut a2, _) = Client::login(&hub, "alice", "laptop").await;
    let token = {
        let ok = a2
            .req(json!({"type":"login","username":"alice","password":PASSWORD}))
            .await;
        assert_eq!(ok["code"], "conflict");
        let (mut t, _) = Client::login(&hub, "alice", "tablet").await;
        let r = t.req(json!({"type":"devices"})).await;
        assert_eq!(r["devices"].as_array().map(Vec::len), Some(3), "{r}");
        t
    };
    hub.suspend("Alice").await.expect("suspend");
    for c in [&mut a, &mut a2] {
        let mut frames = vec![];
        while let Some(f) = recv(&mut c.inner).await {
            frames.push(f);
        }
        assert!(
            frames
                .iter()
                .any(|f| f["type"] == "error" && f["code"] == "account_suspended"),
            "{frames:?}"
        );
    }
    drop(token);
    let mut c = Client::new(&hub).await;
    let r = c
        .req(json!({"type":"login","username":"alice","password":PASSWORD}))
        .await;
    assert_eq!(r["code"], "account_suspended", "{r}");
    // A wrong password still says nothing about the account.
    let r = c
        .req(json!({"type":"login","username":"alice","password":"wrong-password"}))
        .await;
    assert_eq!(r["code"], "invalid_credentials", "{r}");
}

#[actix_rt::test]
async fn suspension_written_to_the_store_by_another_process_closes_sessions() {
    let store = Arc::new(MemoryStore::new());
    let hub = hub_on(store.clone(), |c| c.auth.suspension_poll_secs = 1);
    let (mut a, _) = Client::login(&hub, "alice", "phone").await;
    // As the admin CLI does: straight to the store, not through this hub.
    im_core::store::AccountStore::set_suspended(
        &*store,
        &im_core::UserId::parse("alice").unwrap(),
        true,
    )
    .unwrap();
    let mut frames = vec![];
    while let Some(f) = recv(&mut a.inner).await {
        frames.push(f);
    }
    assert!(
        frames.iter().any(|f| f["code"] == "account_suspended"),
        "{frames:?}"
    );
}

#[actix_rt::test]
async fn a_room_of_a_thousand_members_gets_every_message_in_order() {
    const MEMBERS: usize = 1000;
    const MSGS: u64 = 20;
    let hub = hub(|c| {
        c.limits.outbound_queue = 4096;
        c.auth.register_per_peer = u32::MAX;
    });
    let (mut owner, _) = Client::login(&hub, "owner", "d").await;
    let r = owner
        .req(json!({"type":"room.create","name":"big","topic":"everyone"}))
        .await;
    assert_eq!(r["conv"], "room:big", "{r}");
    let mut members = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS - 1 {
        let (mut c, _) = Client::login(&hub, &format!("m{i:04}"), "d").await;
        let r = c.req(json!({"type":"room.join","name":"big"})).await;
        assert_eq!(r["type"], "ok", "{r}");
        members.push(c);
    }
    for i in 0..MSGS {
        let r = owner
            .req(json!({"type":"msg.send","room":"big","body":format!("m{i}")}))
            .await;
        assert_eq!(r["seq"], i + 1, "{r}");
    }
    for c in members.iter_mut() {
        let mut seqs = Vec::new();
        while seqs.len() < MSGS as usize {
            let f = recv(&mut c.inner).await.expect("frame");
            if f["type"] == "msg" {
                assert_eq!(f["conv"], "room:big");
                seqs.push(f["seq"].as_u64().unwrap());
            }
        }
        assert_eq!(seqs, (1..=MSGS).collect::<Vec<_>>());
    }
}

/// The `ok` of a send, and its delivery, wait for the commit: with the
/// store's commits held, nothing about the message leaves the server; once
/// they are let go, the `ok` comes, then the delivery.
#[actix_rt::test]
async fn no_ok_and_no_delivery_before_the_commit() {
    let store = Arc::new(MemoryStore::new());
    let hub = hub_on(store.clone(), |_| {});
    let (mut a, _) = Client::login(&hub, "alice", "d").await;
    let (mut b, _) = Client::login(&hub, "bob", "d").await;
    friends(&mut a, &mut b, "bob", "alice").await;
    for c in [&mut a, &mut b] {
        // contact.added and presence
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(200), c.inner.recv()).await
        {}
    }
    let gate = store.hold_commits();
    let send = json!({"type":"msg.send","to":"bob","body":"held","id":"s"});
    a.inner.send(&send.to_string()).await.expect("send");
    // Long enough for an eager server to have answered many times over.
    let early = tokio::time::timeout(Duration::from_millis(500), a.inner.recv()).await;
    assert!(early.is_err(), "a frame before the commit: {early:?}");
    let early = tokio::time::timeout(Duration::from_millis(100), b.inner.recv()).await;
    assert!(early.is_err(), "a delivery before the commit: {early:?}");
    drop(gate);
    let ok = recv(&mut a.inner).await.expect("ok after the commit");
    assert_eq!(
        (ok["type"].as_str(), ok["id"].as_str()),
        (Some("ok"), Some("s"))
    );
    assert_eq!(ok["seq"], 1);
    let msg = recv(&mut b.inner).await.expect("delivery after the commit");
    assert_eq!(
        (msg["type"].as_str(), msg["body"].as_str()),
        (Some("msg"), Some("held"))
    );
}
