//! Actor-level tests on the in-memory transport (no sockets): slow
//! consumers, actor retirement, fan-out to many sessions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{friends, hub, hub_on, recv, Client, PASSWORD};
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
    // TODO(arch): needs a `Hub::live_conversations() -> usize` hook to
    // assert that the conversation's actor did retire here (today nothing
    // public shows it), so this only shows numbering continues after an
    // idle spell.
    tokio::time::sleep(Duration::from_millis(2500)).await;
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
    // TODO(arch): needs a `Hub::live_users() -> usize` hook to assert that
    // the user's actor retired after each logout and a new one started;
    // today this only shows that logging in again works.
    let hub = hub(|_| {});
    for round in 0..3 {
        let (mut a, _) = Client::login(&hub, "alice", "d").await;
        let r = a
            .req(json!({"type":"presence.set","status":"busy","note":format!("r{round}")}))
            .await;
        assert_eq!(r["type"], "ok");
        let r = a.req(json!({"type":"logout"})).await;
        assert_eq!(r["type"], "ok");
        assert!(recv(&mut a.inner).await.is_none(), "closed after logout");
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
    im_core::Store::set_suspended(&*store, &im_core::UserId::parse("alice").unwrap(), true)
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
