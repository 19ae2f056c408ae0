//! The store conformance suite: one set of tests, run against
//! [`MemoryStore`] (the reference), [`SqliteStore`] (a temporary file per
//! test) and, with the `postgres` feature and `IM_TEST_POSTGRES_URL` set,
//! [`PgStore`] (a fresh schema per test, dropped afterwards). When the
//! variable is set but the server cannot be reached, the PostgreSQL tests
//! fail.
//!
//! Every test is a plain function over `&dyn Store`; `conformance_tests!`
//! instantiates the whole list once per store. Beside the targeted tests,
//! `differential_random` replays a long pseudo-random sequence of batches
//! on the store under test and on a `MemoryStore` and compares every result.

use std::sync::Arc;

use im_core::error::StoreError;
use im_core::ids::{ConvId, RoomName, UserId};
use im_core::store::prelude::*;
use im_core::store::{
    Appended, ContactState, ConvSummary, CursorOutcome, CursorUpdate, FileRecord, NewMessage,
    Relation, RoomListing, RoomMember, RoomRecord, RoomRole, StoredMessage, UserRecord,
};
use im_core::MemoryStore;

// ---------------------------------------------------------------- harness

/// A store under test and whatever must outlive it (a temp dir) or run
/// after it (dropping a PostgreSQL schema).
struct Harness {
    store: Option<Arc<dyn Store>>,
    cleanup: Option<Box<dyn FnOnce()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    fn store(&self) -> &dyn Store {
        match &self.store {
            Some(s) => &**s,
            None => unreachable!("store taken"),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.store = None;
        if let Some(f) = self.cleanup.take() {
            f();
        }
    }
}

fn memory_store() -> Option<Harness> {
    Some(Harness {
        store: Some(Arc::new(MemoryStore::new())),
        cleanup: None,
        _dir: None,
    })
}

#[cfg(feature = "sqlite")]
fn sqlite_store() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = im_store::SqliteStore::open(dir.path().join("im.db"), &Default::default())
        .expect("open sqlite store");
    Some(Harness {
        store: Some(Arc::new(store)),
        cleanup: None,
        _dir: Some(dir),
    })
}

#[cfg(feature = "sqlite")]
fn sqlite_memory_store() -> Option<Harness> {
    let store = im_store::SqliteStore::open(":memory:", &Default::default())
        .expect("open in-memory sqlite store");
    Some(Harness {
        store: Some(Arc::new(store)),
        cleanup: None,
        _dir: None,
    })
}

#[cfg(feature = "postgres")]
mod pg_support {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};

    /// The server to test against, or `None` (the tests then pass without
    /// doing anything, saying so on stderr).
    pub fn url() -> Option<String> {
        match std::env::var("IM_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => Some(u),
            _ => {
                eprintln!("IM_TEST_POSTGRES_URL not set: PostgreSQL store not tested");
                None
            }
        }
    }

    /// A schema name no other test (or run) uses.
    pub fn fresh_schema() -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!(
            "im_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos
        )
    }

    pub fn options(schema: &str) -> im_store::StoreOptions {
        im_store::StoreOptions {
            pg_schema: Some(schema.to_owned()),
            pool_size: 4,
            connect_timeout: Duration::from_secs(10),
            ..Default::default()
        }
    }

    /// Drops the schema when it goes out of scope (declare it before the
    /// stores using the schema, so they close first).
    pub struct SchemaGuard(pub String, pub String);

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            drop_schema(&self.0, &self.1);
        }
    }

    pub fn drop_schema(url: &str, schema: &str) {
        match PgConnection::establish(url) {
            Ok(mut c) => {
                if let Err(e) =
                    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                {
                    eprintln!("could not drop test schema {schema}: {e}");
                }
            }
            Err(e) => eprintln!("could not drop test schema {schema}: {e}"),
        }
    }
}

#[cfg(feature = "postgres")]
fn pg_store() -> Option<Harness> {
    let url = pg_support::url()?;
    let schema = pg_support::fresh_schema();
    let store = match im_store::PgStore::open(&url, &pg_support::options(&schema)) {
        Ok(s) => s,
        Err(e) => panic!("IM_TEST_POSTGRES_URL is set but the store cannot be opened: {e}"),
    };
    Some(Harness {
        store: Some(Arc::new(store)),
        cleanup: Some(Box::new(move || pg_support::drop_schema(&url, &schema))),
        _dir: None,
    })
}

macro_rules! conformance_tests {
    ($make:path) => {
        conformance_tests!(@each $make;
            users_create_conflict_lookup,
            users_list_in_byte_order,
            users_password_suspended_last_seen,
            tokens_issue_replace_touch_revoke,
            relations_and_contacts_from_both_sides,
            blocks_and_blocked_by,
            batch_gapless_across_many_conversations,
            batch_ts_never_decreases,
            batch_dedup_within_and_across_batches,
            batch_direct_members_on_first_message,
            batch_sender_cursors_follow_only_from_just_below,
            cursor_updates_clamp_and_never_move_back,
            cursor_updates_in_one_batch_apply_in_order,
            messages_paging,
            conversations_listing,
            conversations_ordering_ties,
            empty_batch,
            rooms_create_lookup_conflict,
            rooms_list_filter_and_order,
            rooms_join_leave_and_ownership,
            rooms_cursors_start_where_members_joined,
            rooms_topic_bans_invites,
            differential_random,
            files_lifecycle,
            files_quota_sum,
            files_stale_selection,
            files_blob_in_use,
            files_delete,
            tokens_user_by_token,
            server_secret_stable,
            users_suspended_listing,
            files_differential_random,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some(h) = $make() else { return };
                crate::$name(h.store());
            }
        )*
    };
}

mod memory {
    conformance_tests!(super::memory_store);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    conformance_tests!(super::sqlite_store);
}

#[cfg(feature = "sqlite")]
mod sqlite_in_memory {
    conformance_tests!(super::sqlite_memory_store);
}

#[cfg(feature = "postgres")]
mod postgres {
    conformance_tests!(super::pg_store);
}

// ---------------------------------------------------------------- helpers

fn uid(s: &str) -> UserId {
    UserId::parse(s).expect("valid user name")
}

fn dm(a: &str, b: &str) -> ConvId {
    ConvId::direct(&uid(a), &uid(b))
}

fn room(name: &str) -> ConvId {
    ConvId::parse(&format!("room:{name}")).expect("valid room")
}

fn user(name: &str, created_at: i64) -> UserRecord {
    UserRecord {
        name: uid(name),
        password_hash: format!("hash-of-{name}"),
        suspended: false,
        created_at,
        last_seen: None,
    }
}

fn msg(conv: &ConvId, from: &str, device: &str, body: &str, now: i64) -> NewMessage {
    NewMessage {
        conv: conv.clone(),
        from: uid(from),
        device: device.to_owned(),
        body: body.to_owned(),
        client_id: None,
        attachment: None,
        now,
    }
}

fn with_cid(mut m: NewMessage, cid: &str) -> NewMessage {
    m.client_id = Some(cid.to_owned());
    m
}

fn cursor(user: &str, device: &str, conv: &ConvId, delivered: u64, read: bool) -> CursorUpdate {
    CursorUpdate {
        user: uid(user),
        device: device.to_owned(),
        conv: conv.clone(),
        delivered,
        read,
    }
}

fn send(s: &dyn Store, msgs: Vec<NewMessage>) -> Vec<Appended> {
    let (a, c) = s.write_batch(&msgs, &[]).expect("write_batch");
    assert_eq!(a.len(), msgs.len());
    assert!(c.is_empty());
    a
}

fn apply(s: &dyn Store, cursors: Vec<CursorUpdate>) -> Vec<CursorOutcome> {
    let (a, c) = s.write_batch(&[], &cursors).expect("write_batch");
    assert!(a.is_empty());
    assert_eq!(c.len(), cursors.len());
    c
}

fn new(seq: u64, ts: i64) -> Appended {
    Appended {
        seq,
        ts,
        duplicate: false,
    }
}

fn dup(seq: u64, ts: i64) -> Appended {
    Appended {
        seq,
        ts,
        duplicate: true,
    }
}

fn summary(s: &dyn Store, user: &str, device: &str, conv: &ConvId) -> ConvSummary {
    s.conversations(&uid(user), device)
        .expect("conversations")
        .into_iter()
        .find(|c| &c.conv == conv)
        .unwrap_or_else(|| panic!("{user} does not list {conv}"))
}

fn all_messages(s: &dyn Store, conv: &ConvId) -> Vec<StoredMessage> {
    s.messages_after(conv, 0, usize::MAX)
        .expect("messages_after")
}

fn seqs(v: &[StoredMessage]) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

// ---------------------------------------------------------------- users

fn users_create_conflict_lookup(s: &dyn Store) {
    let alice = user("alice", 1000);
    s.create_user(&alice).unwrap();
    assert!(matches!(
        s.create_user(&user("alice", 2000)),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.user(&uid("alice")).unwrap(), Some(alice));
    assert_eq!(s.user(&uid("nobody")).unwrap(), None);
    let mut bob = user("bob", 3000);
    bob.suspended = true;
    bob.last_seen = Some(3500);
    s.create_user(&bob).unwrap();
    assert_eq!(s.user(&uid("bob")).unwrap(), Some(bob));
}

fn users_list_in_byte_order(s: &dyn Store) {
    assert!(s.list_users().unwrap().is_empty());
    // Byte order differs from most locales' order on these.
    let names = [
        "zed", "abc", "ab.c", "ab_c", "ab-c", "abc.d", "ab0", "a9z", "b-a",
    ];
    for (i, n) in names.iter().enumerate() {
        s.create_user(&user(n, i as i64)).unwrap();
    }
    let listed: Vec<UserId> = s
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    let mut expected: Vec<UserId> = names.iter().map(|n| uid(n)).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let bytes: Vec<&str> = listed.iter().map(UserId::as_str).collect();
    let mut sorted = bytes.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(bytes, sorted);
}

fn users_password_suspended_last_seen(s: &dyn Store) {
    s.create_user(&user("alice", 1)).unwrap();
    s.set_password_hash(&uid("alice"), "new-hash").unwrap();
    assert!(matches!(
        s.set_password_hash(&uid("nobody"), "x"),
        Err(StoreError::NotFound)
    ));
    s.set_suspended(&uid("alice"), true).unwrap();
    let u = s.user(&uid("alice")).unwrap().unwrap();
    assert_eq!(u.password_hash, "new-hash");
    assert!(u.suspended);
    s.set_suspended(&uid("alice"), false).unwrap();
    assert!(!s.user(&uid("alice")).unwrap().unwrap().suspended);
    assert!(matches!(
        s.set_suspended(&uid("nobody"), true),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.user(&uid("alice")).unwrap().unwrap().last_seen, None);
    s.set_last_seen(&uid("alice"), 4242).unwrap();
    assert_eq!(
        s.user(&uid("alice")).unwrap().unwrap().last_seen,
        Some(4242)
    );
    // Unknown users are ignored.
    s.set_last_seen(&uid("nobody"), 1).unwrap();
    assert_eq!(s.user(&uid("nobody")).unwrap(), None);
    assert_eq!(s.list_users().unwrap().len(), 1);
}

// ---------------------------------------------------------------- devices

fn tokens_issue_replace_touch_revoke(s: &dyn Store) {
    let alice = uid("alice");
    let bob = uid("bob");
    assert!(s.devices(&alice).unwrap().is_empty());
    assert_eq!(s.device_by_token(&alice, "h1").unwrap(), None);

    s.issue_token(&alice, "phone", "h1", 100).unwrap();
    let d = s.device_by_token(&alice, "h1").unwrap().unwrap();
    assert_eq!(d.device, "phone");
    assert_eq!(d.token_hash.as_deref(), Some("h1"));
    assert_eq!((d.token_issued_at, d.last_login), (100, 100));
    // Tokens are per user.
    assert_eq!(s.device_by_token(&bob, "h1").unwrap(), None);

    // A new token replaces (and so revokes) the old one.
    s.issue_token(&alice, "phone", "h2", 200).unwrap();
    assert_eq!(s.device_by_token(&alice, "h1").unwrap(), None);
    let d = s.device_by_token(&alice, "h2").unwrap().unwrap();
    assert_eq!((d.token_issued_at, d.last_login), (200, 200));

    s.touch_device(&alice, "phone", 300).unwrap();
    let d = s.device_by_token(&alice, "h2").unwrap().unwrap();
    assert_eq!((d.token_issued_at, d.last_login), (200, 300));
    // Touching an unknown device creates nothing.
    s.touch_device(&alice, "tablet", 300).unwrap();
    s.touch_device(&bob, "phone", 300).unwrap();
    assert_eq!(s.devices(&alice).unwrap().len(), 1);
    assert!(s.devices(&bob).unwrap().is_empty());

    s.issue_token(&alice, "laptop", "h3", 400).unwrap();
    s.issue_token(&alice, "desktop", "h4", 500).unwrap();
    s.issue_token(&alice, "Desk top", "h5", 510).unwrap();
    s.issue_token(&bob, "phone", "b1", 600).unwrap();
    let names: Vec<String> = s
        .devices(&alice)
        .unwrap()
        .into_iter()
        .map(|d| d.device)
        .collect();
    assert_eq!(names, ["Desk top", "desktop", "laptop", "phone"]);

    assert!(s.revoke_device(&alice, "laptop").unwrap());
    assert!(
        s.revoke_device(&alice, "laptop").unwrap(),
        "still a known device"
    );
    assert!(!s.revoke_device(&alice, "tablet").unwrap());
    assert_eq!(s.device_by_token(&alice, "h3").unwrap(), None);
    let laptop = s
        .devices(&alice)
        .unwrap()
        .into_iter()
        .find(|d| d.device == "laptop")
        .unwrap();
    assert_eq!(laptop.token_hash, None);
    assert_eq!(laptop.token_issued_at, 400);

    s.revoke_all_devices(&alice, Some("phone")).unwrap();
    let live: Vec<String> = s
        .devices(&alice)
        .unwrap()
        .into_iter()
        .filter(|d| d.token_hash.is_some())
        .map(|d| d.device)
        .collect();
    assert_eq!(live, ["phone"]);
    assert!(
        s.device_by_token(&bob, "b1").unwrap().is_some(),
        "other users untouched"
    );

    s.revoke_all_devices(&alice, None).unwrap();
    assert!(s
        .devices(&alice)
        .unwrap()
        .iter()
        .all(|d| d.token_hash.is_none()));
    assert_eq!(s.devices(&alice).unwrap().len(), 4);
    assert!(s.device_by_token(&bob, "b1").unwrap().is_some());

    // A revoked device gets a new token by logging in again.
    s.issue_token(&alice, "laptop", "h6", 700).unwrap();
    assert_eq!(
        s.device_by_token(&alice, "h6").unwrap().unwrap().device,
        "laptop"
    );
}

// ---------------------------------------------------------------- contacts

fn relations_and_contacts_from_both_sides(s: &dyn Store) {
    let (a, b, c, d) = (uid("alice"), uid("bob"), uid("carol"), uid("dave"));
    assert_eq!(s.relation(&a, &b).unwrap(), Relation::None);
    assert!(s.contacts(&a).unwrap().is_empty());

    s.set_relation(&b, &a, &Relation::Requested { by: a.clone() })
        .unwrap();
    assert_eq!(
        s.relation(&a, &b).unwrap(),
        Relation::Requested { by: a.clone() }
    );
    assert_eq!(
        s.relation(&b, &a).unwrap(),
        Relation::Requested { by: a.clone() }
    );
    assert_eq!(
        s.contacts(&a).unwrap(),
        [(b.clone(), ContactState::PendingOut)]
    );
    assert_eq!(
        s.contacts(&b).unwrap(),
        [(a.clone(), ContactState::PendingIn)]
    );

    s.set_relation(&a, &b, &Relation::Mutual).unwrap();
    assert_eq!(s.relation(&b, &a).unwrap(), Relation::Mutual);
    assert_eq!(s.contacts(&a).unwrap(), [(b.clone(), ContactState::Mutual)]);
    assert_eq!(s.contacts(&b).unwrap(), [(a.clone(), ContactState::Mutual)]);

    s.set_relation(&d, &a, &Relation::Requested { by: d.clone() })
        .unwrap();
    s.set_relation(&a, &c, &Relation::Requested { by: a.clone() })
        .unwrap();
    assert_eq!(
        s.contacts(&a).unwrap(),
        [
            (b.clone(), ContactState::Mutual),
            (c.clone(), ContactState::PendingOut),
            (d.clone(), ContactState::PendingIn),
        ]
    );
    assert_eq!(
        s.contacts(&c).unwrap(),
        [(a.clone(), ContactState::PendingIn)]
    );
    assert_eq!(
        s.contacts(&d).unwrap(),
        [(a.clone(), ContactState::PendingOut)]
    );

    s.set_relation(&b, &a, &Relation::None).unwrap();
    assert_eq!(s.relation(&a, &b).unwrap(), Relation::None);
    assert!(s.contacts(&b).unwrap().is_empty());
    assert_eq!(s.contacts(&a).unwrap().len(), 2);
    // Removing what is not there is fine.
    s.set_relation(&b, &c, &Relation::None).unwrap();
}

fn blocks_and_blocked_by(s: &dyn Store) {
    let (a, b, c, d) = (uid("alice"), uid("bob"), uid("carol"), uid("dave"));
    assert!(s.blocks(&a).unwrap().is_empty());
    s.set_block(&a, &c, true).unwrap();
    s.set_block(&a, &b, true).unwrap();
    s.set_block(&a, &b, true).unwrap();
    s.set_block(&d, &b, true).unwrap();
    assert_eq!(s.blocks(&a).unwrap(), [b.clone(), c.clone()]);
    assert_eq!(s.blocked_by(&b).unwrap(), [a.clone(), d.clone()]);
    assert!(s.blocks(&b).unwrap().is_empty(), "blocks are one-way");
    assert!(s.blocked_by(&a).unwrap().is_empty());
    s.set_block(&a, &b, false).unwrap();
    s.set_block(&a, &d, false).unwrap();
    assert_eq!(s.blocks(&a).unwrap(), [c]);
    assert_eq!(s.blocked_by(&b).unwrap(), [d]);
}

// ---------------------------------------------------------------- batches

fn batch_gapless_across_many_conversations(s: &dyn Store) {
    let convs: Vec<ConvId> = (0..40)
        .map(|i| {
            if i % 4 == 0 {
                room(&format!("room{i}"))
            } else {
                dm("alice", &format!("peer{i:02}"))
            }
        })
        .collect();
    let mut expected_next = vec![1u64; convs.len()];
    for round in 0..3 {
        let mut batch = Vec::new();
        let mut which = Vec::new();
        for i in 0..600 {
            let k = (i * 7 + round) % convs.len();
            let from = if i % 3 == 0 { "alice" } else { "bob" };
            let from = if convs[k].is_direct() && from == "bob" {
                convs[k].peer_of(&uid("alice")).unwrap().as_str().to_owned()
            } else {
                from.to_owned()
            };
            batch.push(msg(
                &convs[k],
                &from,
                "d",
                &format!("r{round} m{i}"),
                1000 + i as i64,
            ));
            which.push(k);
        }
        let appended = send(s, batch.clone());
        for (a, k) in appended.iter().zip(&which) {
            assert!(!a.duplicate);
            assert_eq!(a.seq, expected_next[*k], "conversation {}", convs[*k]);
            expected_next[*k] += 1;
        }
    }
    for (k, conv) in convs.iter().enumerate() {
        let stored = all_messages(s, conv);
        let want: Vec<u64> = (1..expected_next[k]).collect();
        assert_eq!(seqs(&stored), want, "{conv}");
        assert!(stored.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert!(stored.iter().all(|m| &m.conv == conv));
    }
}

fn batch_ts_never_decreases(s: &dyn Store) {
    let c = dm("alice", "bob");
    let a = send(
        s,
        vec![
            msg(&c, "alice", "d", "1", 100),
            msg(&c, "bob", "d", "2", 50),
            msg(&c, "alice", "d", "3", 200),
            msg(&c, "bob", "d", "4", 150),
        ],
    );
    assert_eq!(a, [new(1, 100), new(2, 100), new(3, 200), new(4, 200)]);
    let a = send(s, vec![msg(&c, "alice", "d", "5", 10)]);
    assert_eq!(a, [new(5, 200)]);
    let a = send(s, vec![msg(&c, "alice", "d", "6", 300)]);
    assert_eq!(a, [new(6, 300)]);
    // Another conversation has its own clock.
    let a = send(s, vec![msg(&dm("alice", "carol"), "alice", "d", "x", 5)]);
    assert_eq!(a, [new(1, 5)]);
    let ts: Vec<i64> = all_messages(s, &c).iter().map(|m| m.ts).collect();
    assert_eq!(ts, [100, 100, 200, 200, 200, 300]);
}

fn batch_dedup_within_and_across_batches(s: &dyn Store) {
    let r = room("lobby");
    let c = dm("alice", "bob");
    let a = send(
        s,
        vec![
            with_cid(msg(&r, "alice", "d", "first", 100), "x"),
            with_cid(msg(&r, "alice", "d2", "again", 150), "x"),
            with_cid(msg(&r, "bob", "d", "bob's x", 160), "x"),
            with_cid(msg(&r, "alice", "d", "y", 170), "y"),
            msg(&r, "alice", "d", "no id", 180),
            with_cid(msg(&c, "alice", "d", "x in dm", 190), "x"),
        ],
    );
    assert_eq!(
        a,
        [
            new(1, 100),
            dup(1, 100),
            new(2, 160),
            new(3, 170),
            new(4, 180),
            new(1, 190)
        ]
    );
    // Across batches: the original seq and ts, even with a later `now`.
    let a = send(
        s,
        vec![
            msg(&r, "carol", "d", "hello", 200),
            with_cid(msg(&r, "alice", "d", "retry", 999), "x"),
            with_cid(msg(&r, "bob", "d", "retry", 999), "x"),
            with_cid(msg(&c, "alice", "d", "retry", 999), "x"),
            with_cid(msg(&c, "bob", "d", "new", 300), "x"),
        ],
    );
    assert_eq!(
        a,
        [
            new(5, 200),
            dup(1, 100),
            dup(2, 160),
            dup(1, 190),
            new(2, 300)
        ]
    );
    let stored = all_messages(s, &r);
    assert_eq!(seqs(&stored), [1, 2, 3, 4, 5]);
    assert_eq!(stored[0].body, "first");
    assert_eq!(stored[0].client_id.as_deref(), Some("x"));
    assert_eq!(stored[4].client_id, None);
    assert_eq!(all_messages(s, &c).len(), 2);

    assert_eq!(
        s.find_client_id(&r, &uid("alice"), "x").unwrap(),
        Some(dup(1, 100))
    );
    assert_eq!(
        s.find_client_id(&r, &uid("bob"), "x").unwrap(),
        Some(dup(2, 160))
    );
    assert_eq!(
        s.find_client_id(&c, &uid("bob"), "x").unwrap(),
        Some(dup(2, 300))
    );
    assert_eq!(s.find_client_id(&r, &uid("carol"), "x").unwrap(), None);
    assert_eq!(s.find_client_id(&r, &uid("alice"), "z").unwrap(), None);
    assert_eq!(
        s.find_client_id(&room("nowhere"), &uid("alice"), "x")
            .unwrap(),
        None
    );
    // Bob's message 2 was not just above his read cursor (0); alice's
    // cursor followed her message 1.
    assert_eq!(summary(s, "bob", "d", &c).read_seq, 0);
    assert_eq!(summary(s, "alice", "d", &c).read_seq, 1);
    // A duplicate moves no cursor.
    send(s, vec![with_cid(msg(&c, "bob", "d", "retry", 999), "x")]);
    assert_eq!(summary(s, "bob", "d", &c).read_seq, 0);
}

fn batch_direct_members_on_first_message(s: &dyn Store) {
    let c = dm("alice", "bob");
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));
    assert!(!s.is_member(&c, &alice).unwrap());
    assert!(!s.is_member(&c, &bob).unwrap());
    assert!(s.conversations(&bob, "d").unwrap().is_empty());
    send(s, vec![msg(&c, "alice", "d", "hi", 1)]);
    assert!(s.is_member(&c, &alice).unwrap());
    assert!(s.is_member(&c, &bob).unwrap(), "the recipient too");
    assert!(!s.is_member(&c, &carol).unwrap());
    assert_eq!(s.conversations(&bob, "d").unwrap().len(), 1);
    send(s, vec![msg(&c, "bob", "d", "hey", 2)]);
    assert!(s.is_member(&c, &alice).unwrap());
    // Rooms get members only by joining, which this trait does not do:
    // sending does not make the sender a member.
    let r = room("lobby");
    send(s, vec![msg(&r, "alice", "d", "hi", 3)]);
    assert!(!s.is_member(&r, &alice).unwrap());
    assert!(s
        .conversations(&alice, "d")
        .unwrap()
        .iter()
        .all(|c| c.conv.is_direct()));
}

fn batch_sender_cursors_follow_only_from_just_below(s: &dyn Store) {
    let c = dm("alice", "bob");
    // Several messages of one sender in the conversation's first batch.
    let a = send(
        s,
        vec![
            msg(&c, "alice", "phone", "1", 1),
            msg(&c, "alice", "phone", "2", 2),
            msg(&c, "bob", "pc", "3", 3),
            msg(&c, "alice", "phone", "4", 4),
        ],
    );
    assert_eq!(a.iter().map(|a| a.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (2, 2));
    assert_eq!(summary(s, "alice", "laptop", &c).delivered_seq, 0);
    let bo = summary(s, "bob", "pc", &c);
    assert_eq!(
        (bo.read_seq, bo.delivered_seq),
        (0, 0),
        "3 is not just above 0"
    );

    // Alice catches up on her phone, then writes from her laptop.
    apply(s, vec![cursor("alice", "phone", &c, 4, true)]);
    send(s, vec![msg(&c, "alice", "laptop", "5", 5)]);
    let al = summary(s, "alice", "laptop", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (5, 0));
    assert_eq!(summary(s, "alice", "phone", &c).delivered_seq, 4);

    // A run from the phone: read follows (5 -> 6 -> 7), the phone's
    // delivered cursor (4) does not; a different device breaks the run
    // for delivered only.
    send(
        s,
        vec![
            msg(&c, "alice", "phone", "6", 6),
            msg(&c, "alice", "phone", "7", 7),
        ],
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (7, 4));
    apply(s, vec![cursor("alice", "phone", &c, 7, false)]);
    send(
        s,
        vec![
            msg(&c, "alice", "phone", "8", 8),
            msg(&c, "alice", "laptop", "9", 9),
            msg(&c, "alice", "phone", "10", 10),
        ],
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (10, 8));
    // Bob's message in between stops the run.
    send(
        s,
        vec![
            msg(&c, "alice", "phone", "11", 11),
            msg(&c, "bob", "pc", "12", 12),
            msg(&c, "alice", "phone", "13", 13),
        ],
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (11, 8));
    // Rooms too (cursors exist without membership).
    let r = room("lobby");
    send(s, vec![msg(&r, "alice", "phone", "r1", 1)]);
    let (_, out) = s
        .write_batch(&[], &[cursor("alice", "phone", &r, 1, true)])
        .unwrap();
    assert_eq!(out, [CursorOutcome::default()], "already read by sending");
}

fn cursor_updates_clamp_and_never_move_back(s: &dyn Store) {
    let c = dm("alice", "bob");
    send(
        s,
        (1..=5)
            .map(|i| msg(&c, "bob", "pc", &i.to_string(), i))
            .collect(),
    );
    let out = apply(s, vec![cursor("alice", "phone", &c, 100, true)]);
    assert_eq!(out[0].read_advanced_to, Some(5), "clamped to the last seq");
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq, al.unread), (5, 5, 0));
    assert_eq!(
        apply(s, vec![cursor("alice", "phone", &c, 100, true)])[0].read_advanced_to,
        None
    );
    assert_eq!(
        apply(s, vec![cursor("alice", "phone", &c, 2, true)])[0].read_advanced_to,
        None
    );
    let al = summary(s, "alice", "phone", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (5, 5), "never backwards");

    // Delivered is per device, read per user.
    let al = summary(s, "alice", "laptop", &c);
    assert_eq!((al.read_seq, al.delivered_seq), (5, 0));
    apply(s, vec![cursor("alice", "laptop", &c, 3, false)]);
    assert_eq!(summary(s, "alice", "laptop", &c).delivered_seq, 3);
    assert_eq!(summary(s, "alice", "phone", &c).delivered_seq, 5);

    // Delivered without read leaves the read cursor.
    apply(s, vec![cursor("bob", "tab", &c, 4, false)]);
    let bo = summary(s, "bob", "tab", &c);
    assert_eq!((bo.read_seq, bo.delivered_seq), (5, 4));
    assert_eq!(bo.peer_read_seq, Some(5));

    // Zero and u64::MAX.
    assert_eq!(
        apply(s, vec![cursor("carol", "x", &c, 0, true)])[0].read_advanced_to,
        None
    );
    assert_eq!(
        apply(s, vec![cursor("bob", "tab", &c, u64::MAX, false)])[0],
        CursorOutcome::default()
    );
    assert_eq!(summary(s, "bob", "tab", &c).delivered_seq, 5);

    // Unknown conversations: nothing happens.
    let out = apply(
        s,
        vec![cursor("alice", "phone", &dm("alice", "zoe"), 3, true)],
    );
    assert_eq!(out, [CursorOutcome::default()]);
    assert_eq!(s.conversations(&uid("alice"), "phone").unwrap().len(), 1);

    // A cursor in the same batch as messages sees them.
    let (a, out) = s
        .write_batch(
            &[msg(&c, "bob", "pc", "6", 6), msg(&c, "bob", "pc", "7", 7)],
            &[cursor("alice", "phone", &c, 99, true)],
        )
        .unwrap();
    assert_eq!(a.iter().map(|a| a.seq).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(out[0].read_advanced_to, Some(7));
}

fn cursor_updates_in_one_batch_apply_in_order(s: &dyn Store) {
    let c = dm("alice", "bob");
    send(
        s,
        (1..=6)
            .map(|i| msg(&c, "bob", "pc", &i.to_string(), i))
            .collect(),
    );
    let out = apply(
        s,
        vec![
            cursor("alice", "phone", &c, 3, true),
            cursor("alice", "laptop", &c, 4, true),
            cursor("alice", "phone", &c, 2, true),
            cursor("alice", "phone", &c, 5, false),
            cursor("alice", "tab", &c, 6, true),
        ],
    );
    let got: Vec<Option<u64>> = out.iter().map(|o| o.read_advanced_to).collect();
    assert_eq!(got, [Some(3), Some(4), None, None, Some(6)]);
    assert_eq!(summary(s, "alice", "phone", &c).delivered_seq, 5);
    assert_eq!(summary(s, "alice", "laptop", &c).delivered_seq, 4);
    assert_eq!(summary(s, "alice", "tab", &c).read_seq, 6);
}

fn messages_paging(s: &dyn Store) {
    let c = room("books");
    let mut batch = Vec::new();
    for i in 1..=25i64 {
        let mut m = msg(
            &c,
            if i % 2 == 0 { "alice" } else { "bob" },
            "d",
            &format!("m{i}"),
            i * 10,
        );
        if i % 5 == 0 {
            m.client_id = Some(format!("c{i}"));
            m.attachment = Some(format!("file-{i}"));
        }
        if i == 7 {
            m.body = String::new();
        }
        batch.push(m);
    }
    send(s, batch);
    let range = |a: u64, b: u64| (a..=b).collect::<Vec<u64>>();
    assert_eq!(seqs(&s.messages_after(&c, 0, 10).unwrap()), range(1, 10));
    assert_eq!(seqs(&s.messages_after(&c, 10, 10).unwrap()), range(11, 20));
    assert_eq!(seqs(&s.messages_after(&c, 20, 10).unwrap()), range(21, 25));
    assert!(s.messages_after(&c, 25, 10).unwrap().is_empty());
    assert!(s.messages_after(&c, 1000, 10).unwrap().is_empty());
    assert!(s.messages_after(&c, u64::MAX, 10).unwrap().is_empty());
    assert!(s.messages_after(&c, 0, 0).unwrap().is_empty());
    assert_eq!(
        seqs(&s.messages_before(&c, None, 10).unwrap()),
        range(16, 25)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(16), 10).unwrap()),
        range(6, 15)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(3), 10).unwrap()),
        range(1, 2)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(1000), 3).unwrap()),
        range(23, 25)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, Some(u64::MAX), 2).unwrap()),
        range(24, 25)
    );
    assert_eq!(
        seqs(&s.messages_before(&c, None, usize::MAX).unwrap()),
        range(1, 25)
    );
    assert!(s.messages_before(&c, Some(1), 10).unwrap().is_empty());
    assert!(s.messages_before(&c, Some(0), 10).unwrap().is_empty());
    assert!(s.messages_before(&c, None, 0).unwrap().is_empty());
    assert!(s.messages_after(&room("empty"), 0, 10).unwrap().is_empty());
    assert!(s
        .messages_before(&room("empty"), None, 10)
        .unwrap()
        .is_empty());

    let m = &s.messages_after(&c, 4, 1).unwrap()[0];
    assert_eq!(
        m,
        &StoredMessage {
            conv: c.clone(),
            seq: 5,
            from: uid("bob"),
            body: "m5".into(),
            ts: 50,
            client_id: Some("c5".into()),
            attachment: Some("file-5".into()),
        }
    );
    assert_eq!(s.messages_before(&c, Some(8), 1).unwrap()[0].body, "");
    assert_eq!(s.messages_after(&c, 5, 1).unwrap()[0].client_id, None);
}

fn conversations_listing(s: &dyn Store) {
    let ab = dm("alice", "bob");
    let ac = dm("alice", "carol");
    let alice = uid("alice");
    assert!(s.conversations(&alice, "phone").unwrap().is_empty());
    send(
        s,
        vec![
            msg(&ab, "bob", "pc", "b1", 100),
            msg(&ab, "bob", "pc", "b2", 110),
            msg(&ac, "carol", "pc", "c1", 120),
            msg(&ab, "bob", "pc", "b3", 130),
            msg(&ab, "alice", "phone", "a4", 140),
            with_cid(msg(&room("lobby"), "alice", "phone", "r", 500), "r1"),
        ],
    );
    apply(s, vec![cursor("alice", "phone", &ab, 1, false)]);
    let list = s.conversations(&alice, "phone").unwrap();
    assert_eq!(list.len(), 2, "rooms are listed only for members");
    let first = &list[0];
    assert_eq!(first.conv, ab, "most recent activity first");
    assert_eq!(first.last_seq, 4);
    assert_eq!(first.activity, 140);
    assert_eq!(first.read_seq, 0);
    assert_eq!(first.delivered_seq, 1);
    assert_eq!(first.unread, 3, "bob's three; alice's own does not count");
    assert_eq!(
        first.peer_read_seq,
        Some(3),
        "bob's cursor followed his messages"
    );
    assert_eq!(
        first.last,
        Some(StoredMessage {
            conv: ab.clone(),
            seq: 4,
            from: alice.clone(),
            body: "a4".into(),
            ts: 140,
            client_id: None,
            attachment: None,
        })
    );
    let second = &list[1];
    assert_eq!(second.conv, ac);
    assert_eq!(
        (
            second.last_seq,
            second.activity,
            second.read_seq,
            second.delivered_seq
        ),
        (1, 120, 0, 0)
    );
    assert_eq!((second.unread, second.peer_read_seq), (1, Some(1)));

    // Reading some: unread counts others' messages after the cursor.
    apply(s, vec![cursor("alice", "laptop", &ab, 2, true)]);
    let first = summary(s, "alice", "phone", &ab);
    assert_eq!(
        (first.read_seq, first.delivered_seq, first.unread),
        (2, 1, 1)
    );
    let bob_view = summary(s, "bob", "pc", &ab);
    assert_eq!(bob_view.peer_read_seq, Some(2));
    assert_eq!((bob_view.read_seq, bob_view.unread), (3, 1));
    // New activity reorders.
    send(s, vec![msg(&ac, "alice", "phone", "c2", 50)]);
    let list = s.conversations(&alice, "laptop").unwrap();
    assert_eq!(list.iter().map(|c| &c.conv).collect::<Vec<_>>(), [&ab, &ac]);
    assert_eq!(
        list[1].activity, 120,
        "ts never below the conversation's last"
    );
    send(s, vec![msg(&ac, "carol", "pc", "c3", 1000)]);
    let list = s.conversations(&alice, "laptop").unwrap();
    assert_eq!(list.iter().map(|c| &c.conv).collect::<Vec<_>>(), [&ac, &ab]);
    assert_eq!(list[0].unread, 2, "c1 and c3; c2 is alice's");
    assert_eq!(list[0].last.as_ref().map(|m| m.seq), Some(3));
    assert!(s.conversations(&uid("zoe"), "x").unwrap().is_empty());
}

fn conversations_ordering_ties(s: &dyn Store) {
    // Equal activity: ordered by conversation id, which is not the order of
    // the wire names ("dm:abc.d:zed" < "dm:abc:zed" as text).
    let c1 = dm("abc", "zed");
    let c2 = dm("abc.d", "zed");
    let c3 = dm("zed", "zz9");
    assert!(c1 < c2);
    assert!(c2.to_string() < c1.to_string());
    send(
        s,
        vec![
            msg(&c3, "zz9", "d", "x", 7),
            msg(&c2, "abc.d", "d", "x", 7),
            msg(&c1, "abc", "d", "x", 7),
        ],
    );
    let list = s.conversations(&uid("zed"), "d").unwrap();
    assert_eq!(
        list.iter().map(|c| &c.conv).collect::<Vec<_>>(),
        [&c1, &c2, &c3]
    );
}

fn empty_batch(s: &dyn Store) {
    let (a, c) = s.write_batch(&[], &[]).unwrap();
    assert!(a.is_empty() && c.is_empty());
}

// ---------------------------------------------------------------- rooms

fn rname(name: &str) -> RoomName {
    RoomName::parse(name).expect("valid room name")
}

fn room_rec(name: &str, topic: &str, public: bool, created_at: i64) -> RoomRecord {
    RoomRecord {
        name: rname(name),
        topic: topic.to_owned(),
        public,
        created_at,
    }
}

fn member(user: &str, owner: bool, joined_at: i64) -> RoomMember {
    RoomMember {
        user: uid(user),
        role: if owner {
            RoomRole::Owner
        } else {
            RoomRole::Member
        },
        joined_at,
    }
}

fn rooms_create_lookup_conflict(s: &dyn Store) {
    let rec = room_rec("rust", "All about Rust", true, 500);
    assert_eq!(s.room(&rname("rust")).unwrap(), None);
    assert!(s.room_members(&rname("rust")).unwrap().is_empty());
    s.create_room(&rec, &uid("alice")).unwrap();
    assert_eq!(s.room(&rname("rust")).unwrap(), Some(rec.clone()));
    assert!(matches!(
        s.create_room(&room_rec("rust", "again", false, 600), &uid("bob")),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.room(&rname("rust")).unwrap(), Some(rec));
    assert_eq!(
        s.room_members(&rname("rust")).unwrap(),
        [member("alice", true, 500)]
    );
    let c = room("rust");
    assert!(s.is_member(&c, &uid("alice")).unwrap());
    assert!(!s.is_member(&c, &uid("bob")).unwrap());
    let list = s.conversations(&uid("alice"), "phone").unwrap();
    assert_eq!(
        list,
        [ConvSummary {
            conv: c.clone(),
            last_seq: 0,
            activity: 500,
            read_seq: 0,
            delivered_seq: 0,
            unread: 0,
            peer_read_seq: None,
            last: None,
        }]
    );
    // The owner's first message is followed by both cursors.
    send(s, vec![msg(&c, "alice", "phone", "hi", 400)]);
    let sum = summary(s, "alice", "phone", &c);
    assert_eq!(
        (sum.last_seq, sum.activity, sum.read_seq, sum.delivered_seq),
        (1, 400, 1, 1)
    );
}

fn rooms_list_filter_and_order(s: &dyn Store) {
    assert!(s.list_rooms(None, 10).unwrap().is_empty());
    s.create_room(&room_rec("zeta", "quiet", true, 1), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("alpha", "Ünïcode TALK", true, 2), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("beta", "busy", true, 3), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("secret", "busy", false, 4), &uid("amy"))
        .unwrap();
    for u in ["ben", "cat"] {
        assert!(s.join_room(&rname("beta"), &uid(u), 10).unwrap());
    }
    assert!(s.join_room(&rname("zeta"), &uid("ben"), 10).unwrap());
    let names = |v: Vec<RoomListing>| -> Vec<(String, u64)> {
        v.into_iter()
            .map(|l| (l.room.name.as_str().to_owned(), l.members))
            .collect()
    };
    let all = names(s.list_rooms(None, 10).unwrap());
    assert_eq!(
        all,
        [("beta".into(), 3), ("zeta".into(), 2), ("alpha".into(), 1)]
    );
    assert_eq!(names(s.list_rooms(None, 2).unwrap()).len(), 2);
    assert!(s.list_rooms(None, 0).unwrap().is_empty());
    assert_eq!(
        names(s.list_rooms(Some("ET"), 10).unwrap()),
        [("beta".into(), 3), ("zeta".into(), 2)]
    );
    assert_eq!(
        names(s.list_rooms(Some("ünï"), 10).unwrap()),
        [("alpha".into(), 1)]
    );
    assert_eq!(
        names(s.list_rooms(Some("talk"), 10).unwrap()),
        [("alpha".into(), 1)]
    );
    assert!(
        s.list_rooms(Some("secret"), 10).unwrap().is_empty(),
        "private rooms are not listed"
    );
    let l = &s.list_rooms(Some("alpha"), 10).unwrap()[0];
    assert_eq!(l.room, room_rec("alpha", "Ünïcode TALK", true, 2));
}

fn rooms_join_leave_and_ownership(s: &dyn Store) {
    let r = rname("club");
    let c = room("club");
    assert!(matches!(
        s.join_room(&r, &uid("bob"), 1),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.leave_room(&r, &uid("bob")),
        Err(StoreError::NotFound)
    ));
    s.create_room(&room_rec("club", "", false, 100), &uid("alice"))
        .unwrap();
    assert!(s.join_room(&r, &uid("bob"), 110).unwrap());
    assert!(
        !s.join_room(&r, &uid("bob"), 120).unwrap(),
        "already a member"
    );
    assert!(s.join_room(&r, &uid("carol"), 130).unwrap());
    assert!(s.join_room(&r, &uid("dave"), 130).unwrap());
    assert_eq!(
        s.room_members(&r).unwrap(),
        [
            member("alice", true, 100),
            member("bob", false, 110),
            member("carol", false, 130),
            member("dave", false, 130)
        ]
    );
    assert!(s.is_member(&c, &uid("carol")).unwrap());
    assert_eq!(s.leave_room(&r, &uid("zoe")).unwrap(), None, "not a member");
    assert_eq!(s.leave_room(&r, &uid("carol")).unwrap(), None);
    assert!(!s.is_member(&c, &uid("carol")).unwrap());
    assert!(s.conversations(&uid("carol"), "d").unwrap().is_empty());
    // The owner leaves: the longest-standing member takes over.
    assert_eq!(s.leave_room(&r, &uid("alice")).unwrap(), Some(uid("bob")));
    assert_eq!(
        s.room_members(&r).unwrap(),
        [member("bob", true, 110), member("dave", false, 130)]
    );
    // Rejoining puts one last.
    assert!(s.join_room(&r, &uid("alice"), 200).unwrap());
    assert!(s.join_room(&r, &uid("carol"), 210).unwrap());
    assert_eq!(
        s.room_members(&r).unwrap(),
        [
            member("bob", true, 110),
            member("dave", false, 130),
            member("alice", false, 200),
            member("carol", false, 210)
        ]
    );
    assert_eq!(s.leave_room(&r, &uid("dave")).unwrap(), None);
    assert_eq!(s.leave_room(&r, &uid("bob")).unwrap(), Some(uid("alice")));
    assert_eq!(s.leave_room(&r, &uid("carol")).unwrap(), None);
    assert_eq!(
        s.leave_room(&r, &uid("alice")).unwrap(),
        None,
        "nobody left to own it"
    );
    assert!(s.room_members(&r).unwrap().is_empty());
    assert!(s.room(&r).unwrap().is_some(), "the room stays");
}

fn rooms_cursors_start_where_members_joined(s: &dyn Store) {
    let r = rname("news");
    let c = room("news");
    s.create_room(&room_rec("news", "", true, 10), &uid("alice"))
        .unwrap();
    send(
        s,
        (1..=5)
            .map(|i| msg(&c, "alice", "pc", &i.to_string(), 100 + i))
            .collect(),
    );
    assert!(s.join_room(&r, &uid("bob"), 200).unwrap());
    let b = summary(s, "bob", "phone", &c);
    assert_eq!(
        (b.last_seq, b.read_seq, b.delivered_seq, b.unread),
        (5, 5, 5, 0)
    );
    assert_eq!(b.activity, 105);
    send(s, vec![msg(&c, "alice", "pc", "6", 300)]);
    let b = summary(s, "bob", "phone", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (5, 5, 1));
    // Bob's cursors were at 5: his message 7 is not just above them.
    send(s, vec![msg(&c, "bob", "phone", "7", 301)]);
    let b = summary(s, "bob", "phone", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (5, 5, 1));
    apply(s, vec![cursor("bob", "phone", &c, 6, true)]);
    send(s, vec![msg(&c, "bob", "phone", "8", 302)]);
    let b = summary(s, "bob", "phone", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (6, 6, 0));
    // A device's cursor created below the joining point still shows it.
    apply(s, vec![cursor("bob", "tablet", &c, 2, false)]);
    assert_eq!(summary(s, "bob", "tablet", &c).delivered_seq, 5);
    // Rejoining after leaving: cursors start at the new end.
    assert_eq!(s.leave_room(&r, &uid("bob")).unwrap(), None);
    send(s, vec![msg(&c, "alice", "pc", "9", 400)]);
    assert!(s.join_room(&r, &uid("bob"), 500).unwrap());
    let b = summary(s, "bob", "laptop", &c);
    assert_eq!((b.read_seq, b.delivered_seq, b.unread), (9, 9, 0));
    assert_eq!(summary(s, "bob", "phone", &c).delivered_seq, 9);
    // A joiner's first message right at the end is followed.
    send(s, vec![msg(&c, "bob", "laptop", "10", 501)]);
    let b = summary(s, "bob", "laptop", &c);
    assert_eq!((b.read_seq, b.delivered_seq), (10, 10));
}

fn rooms_topic_bans_invites(s: &dyn Store) {
    let r = rname("club");
    let other = rname("other");
    assert!(matches!(
        s.set_room_topic(&r, "x"),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_room_ban(&r, &uid("bob"), true),
        Err(StoreError::NotFound)
    ));
    assert!(!s.is_room_banned(&r, &uid("bob")).unwrap());
    assert!(matches!(
        s.add_room_invite(&r, &uid("bob"), &uid("alice")),
        Err(StoreError::NotFound)
    ));
    s.create_room(&room_rec("club", "old", false, 1), &uid("alice"))
        .unwrap();
    s.create_room(&room_rec("other", "", false, 2), &uid("carol"))
        .unwrap();
    s.set_room_topic(&r, "new topic").unwrap();
    assert_eq!(s.room(&r).unwrap().unwrap().topic, "new topic");

    s.set_room_ban(&r, &uid("bob"), true).unwrap();
    s.set_room_ban(&r, &uid("bob"), true).unwrap();
    assert!(s.is_room_banned(&r, &uid("bob")).unwrap());
    assert!(!s.is_room_banned(&other, &uid("bob")).unwrap());
    s.set_room_ban(&r, &uid("bob"), false).unwrap();
    assert!(!s.is_room_banned(&r, &uid("bob")).unwrap());

    assert!(s.room_invites(&uid("bob")).unwrap().is_empty());
    s.add_room_invite(&r, &uid("bob"), &uid("alice")).unwrap();
    s.add_room_invite(&other, &uid("bob"), &uid("carol"))
        .unwrap();
    s.add_room_invite(&r, &uid("bob"), &uid("dave")).unwrap();
    s.add_room_invite(&r, &uid("eve"), &uid("alice")).unwrap();
    assert_eq!(
        s.room_invites(&uid("bob")).unwrap(),
        [(r.clone(), uid("dave")), (other.clone(), uid("carol"))]
    );
    // Joining uses the invitation up.
    assert!(s.join_room(&r, &uid("bob"), 5).unwrap());
    assert_eq!(
        s.room_invites(&uid("bob")).unwrap(),
        [(other.clone(), uid("carol"))]
    );
    assert_eq!(
        s.room_invites(&uid("eve")).unwrap(),
        [(r.clone(), uid("alice"))]
    );
}

// ---------------------------------------------------------------- files, tokens, secret

fn file_rec(id: &str, uploader: &str, size: u64, created_at: i64) -> FileRecord {
    FileRecord {
        id: id.to_owned(),
        uploader: uid(uploader),
        name: format!("name of {id}"),
        mime: "application/octet-stream".to_owned(),
        size,
        received: 0,
        sha256: None,
        created_at,
    }
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn files_lifecycle(s: &dyn Store) {
    assert_eq!(s.file("f-nope").unwrap(), None);
    let mut f = file_rec("f-01", "alice", 5 << 30, 1000);
    f.name = "ünïcødé ../../etc/passwd \"quoted\" 'x'".to_owned();
    f.mime = "image/png".to_owned();
    s.create_file(&f).unwrap();
    assert_eq!(s.file("f-01").unwrap(), Some(f.clone()));
    assert!(matches!(
        s.create_file(&file_rec("f-01", "bob", 1, 2000)),
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.file("f-01").unwrap(),
        Some(f.clone()),
        "conflict changed nothing"
    );

    s.set_file_received(&f.id, 4096).unwrap();
    s.set_file_received(&f.id, 3 << 30).unwrap();
    f.received = 3 << 30;
    assert_eq!(s.file("f-01").unwrap(), Some(f.clone()));
    assert!(matches!(
        s.set_file_received("f-nope", 1),
        Err(StoreError::NotFound)
    ));
    s.finish_file(&f.id, &sha(7)).unwrap();
    f.sha256 = Some(sha(7));
    assert_eq!(s.file("f-01").unwrap(), Some(f.clone()));
    assert!(matches!(
        s.finish_file("f-nope", &sha(7)),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.file("f-nope").unwrap(), None);

    // A record created finished keeps its hash and counts.
    let mut g = file_rec("f-02", "bob", 0, 1500);
    g.sha256 = Some(sha(0));
    s.create_file(&g).unwrap();
    assert_eq!(s.file("f-02").unwrap(), Some(g));

    // Attachments: idempotent, listed in `ConvId` order, which is not the
    // byte order of the names ("dm:abc:zed" > "dm:abc.d:zed").
    assert!(s.file_convs("f-01").unwrap().is_empty());
    let convs = [
        room("lobby"),
        dm("abc.d", "zed"),
        room("a-room"),
        dm("abc", "zed"),
        dm("alice", "bob"),
    ];
    for c in &convs {
        s.attach_file("f-01", c).unwrap();
    }
    s.attach_file("f-01", &room("lobby")).unwrap();
    s.attach_file("f-01", &dm("abc", "zed")).unwrap();
    let mut want = convs.to_vec();
    want.sort();
    assert_eq!(want[0], dm("abc", "zed"));
    assert_eq!(s.file_convs("f-01").unwrap(), want);
    assert!(s.file_convs("f-02").unwrap().is_empty());
    // Attaching is recorded even for an id without a record (like the
    // in-memory store), and per file.
    s.attach_file("f-ghost", &room("lobby")).unwrap();
    assert_eq!(s.file_convs("f-ghost").unwrap(), [room("lobby")]);
    assert_eq!(s.file_convs("f-01").unwrap(), want);
}

fn files_quota_sum(s: &dyn Store) {
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 0);
    // Past 2^32 in total, to catch narrow sums.
    s.create_file(&file_rec("f-a1", "alice", 3 << 30, 1))
        .unwrap();
    s.create_file(&file_rec("f-a2", "alice", 4 << 30, 2))
        .unwrap();
    s.create_file(&file_rec("f-a3", "alice", 17, 3)).unwrap();
    s.create_file(&file_rec("f-b1", "bob", 100, 4)).unwrap();
    s.create_file(&file_rec("f-z1", "alice.x", 1000, 5))
        .unwrap();
    let total = (3u64 << 30) + (4 << 30) + 17;
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), total);
    // Finished and unfinished files count alike, by announced size.
    s.set_file_received("f-a1", 10).unwrap();
    s.finish_file("f-a3", &sha(1)).unwrap();
    s.attach_file("f-a3", &dm("alice", "bob")).unwrap();
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), total);
    assert_eq!(s.user_file_bytes(&uid("bob")).unwrap(), 100);
    assert_eq!(s.user_file_bytes(&uid("alice.x")).unwrap(), 1000);
    assert_eq!(s.user_file_bytes(&uid("carol")).unwrap(), 0);
    s.delete_file("f-a2").unwrap();
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), total - (4 << 30));
    s.delete_file("f-a1").unwrap();
    s.delete_file("f-a3").unwrap();
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 0);
    assert_eq!(s.user_file_bytes(&uid("bob")).unwrap(), 100);
}

fn ids(v: &[FileRecord]) -> Vec<&str> {
    v.iter().map(|f| f.id.as_str()).collect()
}

fn files_stale_selection(s: &dyn Store) {
    assert!(s.stale_files(i64::MAX).unwrap().is_empty());
    let cutoff = 10_000;
    // (id, created_at, finished, attached); ids sort unlike creation times.
    let cases = [
        ("f-9-old-unfinished", 500, false, false),
        ("f-1-old-unsent", 600, true, false),
        ("f-5-old-sent", 700, true, true),
        ("f-3-old-unfinished-attached", 800, false, true),
        ("f-7-at-cutoff-unfinished", cutoff, false, false),
        ("f-0-at-cutoff-unsent", cutoff, true, false),
        ("f-2-new-unsent", cutoff + 500, true, false),
        ("f-8-new-unfinished", cutoff + 1000, false, false),
        ("f-4-new-sent", cutoff + 1, true, true),
    ];
    for (i, (id, at, finished, attached)) in cases.iter().enumerate() {
        let mut f = file_rec(id, if i % 2 == 0 { "alice" } else { "bob" }, 10, *at);
        s.create_file(&f).unwrap();
        s.set_file_received(id, 5).unwrap();
        f.received = 5;
        if *finished {
            s.finish_file(id, &sha(i as u8)).unwrap();
        }
        if *attached {
            s.attach_file(id, &dm("alice", "bob")).unwrap();
        }
    }
    let stale = s.stale_files(cutoff).unwrap();
    assert_eq!(
        ids(&stale),
        [
            "f-1-old-unsent",
            "f-3-old-unfinished-attached",
            "f-9-old-unfinished",
        ]
    );
    // Whole records, as `file` gives them.
    for f in &stale {
        assert_eq!(s.file(&f.id).unwrap().as_ref(), Some(f));
    }
    assert_eq!(stale[0].sha256, Some(sha(1)));
    assert_eq!(stale[0].received, 5);
    assert_eq!(stale[2].sha256, None);

    assert!(s.stale_files(500).unwrap().is_empty(), "strictly before");
    assert_eq!(ids(&s.stale_files(501).unwrap()), ["f-9-old-unfinished"]);
    assert_eq!(
        ids(&s.stale_files(cutoff + 1).unwrap()),
        [
            "f-0-at-cutoff-unsent",
            "f-1-old-unsent",
            "f-3-old-unfinished-attached",
            "f-7-at-cutoff-unfinished",
            "f-9-old-unfinished",
        ]
    );
    assert_eq!(
        ids(&s.stale_files(i64::MAX).unwrap()),
        [
            "f-0-at-cutoff-unsent",
            "f-1-old-unsent",
            "f-2-new-unsent",
            "f-3-old-unfinished-attached",
            "f-7-at-cutoff-unfinished",
            "f-8-new-unfinished",
            "f-9-old-unfinished",
        ]
    );
    // Sending an unsent file keeps it; cleaning up removes what was listed.
    s.attach_file("f-1-old-unsent", &room("lobby")).unwrap();
    for f in s.stale_files(cutoff).unwrap() {
        s.delete_file(&f.id).unwrap();
    }
    assert!(s.stale_files(cutoff).unwrap().is_empty());
    assert_eq!(s.file("f-9-old-unfinished").unwrap(), None);
    assert!(s.file("f-5-old-sent").unwrap().is_some());
    // Deleting a sent file forgets where it was sent: recreated under the
    // same id, it is unsent (and stale) again.
    s.delete_file("f-5-old-sent").unwrap();
    assert!(s.file_convs("f-5-old-sent").unwrap().is_empty());
    let mut f = file_rec("f-5-old-sent", "alice", 10, 700);
    f.sha256 = Some(sha(5));
    s.create_file(&f).unwrap();
    assert_eq!(s.stale_files(cutoff).unwrap(), [f]);
}

fn files_blob_in_use(s: &dyn Store) {
    assert!(!s.blob_in_use(&sha(1)).unwrap());
    s.create_file(&file_rec("f-1", "alice", 3, 1)).unwrap();
    s.create_file(&file_rec("f-2", "bob", 3, 2)).unwrap();
    s.create_file(&file_rec("f-3", "bob", 3, 3)).unwrap();
    assert!(
        !s.blob_in_use(&sha(1)).unwrap(),
        "unfinished files use no blob"
    );
    s.finish_file("f-1", &sha(1)).unwrap();
    s.finish_file("f-2", &sha(1)).unwrap();
    s.finish_file("f-3", &sha(0xcd)).unwrap();
    assert!(s.blob_in_use(&sha(1)).unwrap());
    assert!(s.blob_in_use(&sha(0xcd)).unwrap());
    assert!(!s.blob_in_use(&sha(3)).unwrap());
    assert!(!s.blob_in_use("").unwrap());
    assert!(
        !s.blob_in_use(&sha(0xcd).to_uppercase()).unwrap(),
        "hashes compare exactly"
    );
    s.delete_file("f-1").unwrap();
    assert!(s.blob_in_use(&sha(1)).unwrap(), "f-2 still uses it");
    s.delete_file("f-2").unwrap();
    assert!(!s.blob_in_use(&sha(1)).unwrap());
    assert!(s.blob_in_use(&sha(0xcd)).unwrap());
}

fn files_delete(s: &dyn Store) {
    // Unknown ids are fine.
    s.delete_file("f-nope").unwrap();
    let mut a = file_rec("f-a", "alice", 10, 1);
    a.sha256 = Some(sha(1));
    s.create_file(&a).unwrap();
    s.create_file(&file_rec("f-b", "alice", 20, 2)).unwrap();
    s.attach_file("f-a", &dm("alice", "bob")).unwrap();
    s.attach_file("f-a", &room("lobby")).unwrap();
    s.attach_file("f-b", &room("lobby")).unwrap();
    s.delete_file("f-a").unwrap();
    assert_eq!(s.file("f-a").unwrap(), None);
    assert!(s.file_convs("f-a").unwrap().is_empty());
    assert!(!s.blob_in_use(&sha(1)).unwrap());
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 20);
    // Other files keep theirs.
    assert_eq!(s.file_convs("f-b").unwrap(), [room("lobby")]);
    assert!(s.file("f-b").unwrap().is_some());
    s.delete_file("f-a").unwrap();
    // The id can be used again, from scratch.
    let again = file_rec("f-a", "bob", 5, 3);
    s.create_file(&again).unwrap();
    assert_eq!(s.file("f-a").unwrap(), Some(again));
    assert!(s.file_convs("f-a").unwrap().is_empty());
    // Attachments of an id without a record go too.
    s.attach_file("f-ghost", &room("lobby")).unwrap();
    s.delete_file("f-ghost").unwrap();
    assert!(s.file_convs("f-ghost").unwrap().is_empty());
}

fn tokens_user_by_token(s: &dyn Store) {
    assert_eq!(s.user_by_token("h1").unwrap(), None);
    s.issue_token(&uid("alice"), "phone", "h1", 100).unwrap();
    s.issue_token(&uid("alice"), "pc", "h2", 110).unwrap();
    s.issue_token(&uid("bob"), "phone", "h3", 120).unwrap();
    let by = |h: &str| s.user_by_token(h).unwrap();
    let device = |u: &str, d: &str| {
        s.devices(&uid(u))
            .unwrap()
            .into_iter()
            .find(|x| x.device == d)
            .unwrap()
    };
    assert_eq!(by("h1"), Some((uid("alice"), device("alice", "phone"))));
    assert_eq!(by("h2"), Some((uid("alice"), device("alice", "pc"))));
    assert_eq!(by("h3"), Some((uid("bob"), device("bob", "phone"))));
    let (_, d) = by("h1").unwrap();
    assert_eq!(d.token_hash.as_deref(), Some("h1"));
    assert_eq!((d.token_issued_at, d.last_login), (100, 100));
    assert_eq!(by("h4"), None);
    assert_eq!(by(""), None);

    // Logins show; a new token replaces the old one.
    s.touch_device(&uid("alice"), "phone", 150).unwrap();
    assert_eq!(by("h1").unwrap().1.last_login, 150);
    s.issue_token(&uid("alice"), "phone", "h5", 200).unwrap();
    assert_eq!(by("h1"), None);
    assert_eq!(by("h5"), Some((uid("alice"), device("alice", "phone"))));

    // Revoked tokens are not found.
    assert!(s.revoke_device(&uid("alice"), "pc").unwrap());
    assert_eq!(by("h2"), None);
    s.revoke_all_devices(&uid("alice"), None).unwrap();
    assert_eq!(by("h5"), None);
    assert_eq!(by("h3"), Some((uid("bob"), device("bob", "phone"))));
    s.revoke_all_devices(&uid("bob"), Some("phone")).unwrap();
    assert!(by("h3").is_some(), "kept device");
    s.revoke_all_devices(&uid("bob"), None).unwrap();
    assert_eq!(by("h3"), None);
    // And come back with a new login.
    s.issue_token(&uid("alice"), "pc", "h2", 300).unwrap();
    let (u, d) = by("h2").unwrap();
    assert_eq!(
        (u, d.device, d.token_issued_at),
        (uid("alice"), "pc".into(), 300)
    );
}

fn server_secret_stable(s: &dyn Store) {
    let a = s.server_secret().unwrap();
    assert_eq!(a.len(), 32);
    assert!(a.iter().any(|&b| b != 0), "random, not zeros");
    assert_eq!(s.server_secret().unwrap(), a);
    s.create_user(&user("alice", 1)).unwrap();
    assert_eq!(s.server_secret().unwrap(), a);
}

fn users_suspended_listing(s: &dyn Store) {
    assert!(s.suspended_users().unwrap().is_empty());
    for (i, n) in ["zed", "abc", "ab.c", "ab_c", "ab-c", "bob"]
        .iter()
        .enumerate()
    {
        s.create_user(&user(n, i as i64)).unwrap();
    }
    assert!(s.suspended_users().unwrap().is_empty());
    for n in ["zed", "ab_c", "ab.c", "ab-c"] {
        s.set_suspended(&uid(n), true).unwrap();
    }
    // Created suspended counts too.
    let mut eve = user("eve", 9);
    eve.suspended = true;
    s.create_user(&eve).unwrap();
    let want = |s: &dyn Store| -> Vec<UserId> {
        s.list_users()
            .unwrap()
            .into_iter()
            .filter(|u| u.suspended)
            .map(|u| u.name)
            .collect()
    };
    let got = s.suspended_users().unwrap();
    assert_eq!(got, want(s));
    assert_eq!(
        got,
        [
            uid("ab-c"),
            uid("ab.c"),
            uid("ab_c"),
            uid("eve"),
            uid("zed")
        ]
    );
    s.set_suspended(&uid("ab.c"), false).unwrap();
    s.set_suspended(&uid("zed"), true).unwrap();
    assert_eq!(
        s.suspended_users().unwrap(),
        [uid("ab-c"), uid("ab_c"), uid("eve"), uid("zed")]
    );
    assert_eq!(s.suspended_users().unwrap(), want(s));
}

/// Random file operations on the store and on a `MemoryStore`; every
/// answer compared.
fn files_differential_random(s: &dyn Store) {
    let reference = MemoryStore::new();
    let seed = std::env::var("IM_TEST_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1D);
    let mut rng = Rng(seed | 1);
    let users = ["amy", "ben", "cat"];
    let convs = [
        dm("amy", "ben"),
        dm("ben", "cat"),
        room("lobby"),
        room("dev"),
    ];
    let fid = |n: u64| format!("f-{n:02}");
    for round in 0..400 {
        let id = fid(rng.below(25));
        let now = rng.below(100) as i64;
        let op = rng.below(8);
        match op {
            0 | 1 => {
                let mut f = file_rec(&id, rng.pick::<&str>(&users), rng.below(1 << 40), now);
                if rng.below(4) == 0 {
                    f.sha256 = Some(sha(rng.below(4) as u8));
                }
                let a = s.create_file(&f).map_err(|e| format!("{e:?}"));
                let b = reference.create_file(&f).map_err(|e| format!("{e:?}"));
                assert_eq!(a, b, "round {round}: create_file {id}");
            }
            2 => {
                let n = rng.below(1 << 40);
                let a = s.set_file_received(&id, n).map_err(|e| format!("{e:?}"));
                let b = reference
                    .set_file_received(&id, n)
                    .map_err(|e| format!("{e:?}"));
                assert_eq!(a, b, "round {round}: set_file_received {id}");
            }
            3 => {
                let h = sha(rng.below(4) as u8);
                let a = s.finish_file(&id, &h).map_err(|e| format!("{e:?}"));
                let b = reference.finish_file(&id, &h).map_err(|e| format!("{e:?}"));
                assert_eq!(a, b, "round {round}: finish_file {id}");
            }
            4 | 5 => {
                let c = rng.pick(&convs);
                s.attach_file(&id, c).unwrap();
                reference.attach_file(&id, c).unwrap();
            }
            _ => {
                s.delete_file(&id).unwrap();
                reference.delete_file(&id).unwrap();
            }
        }
        assert_eq!(s.file(&id).unwrap(), reference.file(&id).unwrap());
        assert_eq!(
            s.file_convs(&id).unwrap(),
            reference.file_convs(&id).unwrap()
        );
        if round % 20 == 19 {
            for cutoff in [0, 30, 60, 100, i64::MAX] {
                assert_eq!(
                    s.stale_files(cutoff).unwrap(),
                    reference.stale_files(cutoff).unwrap(),
                    "round {round}: stale_files({cutoff})"
                );
            }
            for u in users {
                assert_eq!(
                    s.user_file_bytes(&uid(u)).unwrap(),
                    reference.user_file_bytes(&uid(u)).unwrap()
                );
            }
            for h in 0..5 {
                assert_eq!(
                    s.blob_in_use(&sha(h)).unwrap(),
                    reference.blob_in_use(&sha(h)).unwrap()
                );
            }
            for n in 0..25 {
                assert_eq!(s.file(&fid(n)).unwrap(), reference.file(&fid(n)).unwrap());
            }
        }
    }
}

// ---------------------------------------------------------------- differential

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn differential_random(s: &dyn Store) {
    let reference = MemoryStore::new();
    // IM_TEST_SEED explores other sequences.
    let seed = std::env::var("IM_TEST_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed | 1);
    let users = ["amy", "ben", "cat", "dan", "eve"];
    let devices = ["phone", "pc"];
    let mut convs: Vec<ConvId> = Vec::new();
    for (i, a) in users.iter().enumerate() {
        for b in &users[i + 1..] {
            convs.push(dm(a, b));
        }
    }
    convs.push(room("lobby"));
    convs.push(room("dev"));
    reference
        .create_room(&room_rec("lobby", "", true, 900), &uid("amy"))
        .unwrap();
    s.create_room(&room_rec("lobby", "", true, 900), &uid("amy"))
        .unwrap();
    let members = |c: &ConvId| -> Vec<String> {
        match c {
            ConvId::Direct(a, b) => vec![a.to_string(), b.to_string()],
            ConvId::Room(_) => users.iter().map(|u| u.to_string()).collect(),
        }
    };
    let mut now = 1_000i64;
    for round in 0..60 {
        let n_msgs = rng.below(40) as usize;
        let n_cursors = rng.below(12) as usize;
        let mut msgs = Vec::new();
        for _ in 0..n_msgs {
            let c = rng.pick(&convs).clone();
            let from = rng.pick(&members(&c)).clone();
            now += rng.below(20) as i64 - 8; // sometimes goes back
            let mut m = msg(
                &c,
                &from,
                rng.pick::<&str>(&devices),
                &format!("r{round}"),
                now,
            );
            if rng.below(3) == 0 {
                m.client_id = Some(format!("cid{}", rng.below(15)));
            }
            if rng.below(10) == 0 {
                m.attachment = Some(format!("f{}", rng.below(100)));
            }
            msgs.push(m);
        }
        let mut cursors = Vec::new();
        for _ in 0..n_cursors {
            let c = rng.pick(&convs).clone();
            let user = rng.pick(&members(&c)).clone();
            let delivered = match rng.below(6) {
                0 => u64::MAX,
                1 => 0,
                _ => rng.below(30),
            };
            cursors.push(cursor(
                &user,
                rng.pick::<&str>(&devices),
                &c,
                delivered,
                rng.below(2) == 0,
            ));
        }
        let want = reference.write_batch(&msgs, &cursors).unwrap();
        let got = s.write_batch(&msgs, &cursors).unwrap();
        assert_eq!(got, want, "round {round}");

        // Room membership changes between batches ("dev" only exists from
        // round 5 on, after messages were sent to it).
        if round == 5 {
            let rec = room_rec("dev", "", false, now);
            reference.create_room(&rec, &uid("ben")).unwrap();
            s.create_room(&rec, &uid("ben")).unwrap();
        }
        for _ in 0..rng.below(3) {
            let r = if round >= 5 && rng.below(2) == 0 {
                "dev"
            } else {
                "lobby"
            };
            let u = uid(rng.pick::<&str>(&users));
            if rng.below(3) == 0 {
                assert_eq!(
                    s.leave_room(&rname(r), &u).unwrap(),
                    reference.leave_room(&rname(r), &u).unwrap()
                );
            } else {
                assert_eq!(
                    s.join_room(&rname(r), &u, now).unwrap(),
                    reference.join_room(&rname(r), &u, now).unwrap()
                );
            }
        }

        if round % 10 == 9 || round == 59 {
            for r in ["lobby", "dev"] {
                assert_eq!(
                    s.room_members(&rname(r)).unwrap(),
                    reference.room_members(&rname(r)).unwrap()
                );
            }
            assert_eq!(
                s.list_rooms(None, 10).unwrap(),
                reference.list_rooms(None, 10).unwrap()
            );
            for u in users {
                for d in devices {
                    assert_eq!(
                        s.conversations(&uid(u), d).unwrap(),
                        reference.conversations(&uid(u), d).unwrap(),
                        "conversations of {u}/{d} after round {round}"
                    );
                }
            }
            for c in &convs {
                assert_eq!(
                    s.messages_after(c, 0, usize::MAX).unwrap(),
                    reference.messages_after(c, 0, usize::MAX).unwrap()
                );
                let before = Some(rng.below(40));
                let limit = rng.below(10) as usize;
                assert_eq!(
                    s.messages_before(c, before, limit).unwrap(),
                    reference.messages_before(c, before, limit).unwrap()
                );
                for u in users {
                    assert_eq!(
                        s.is_member(c, &uid(u)).unwrap(),
                        reference.is_member(c, &uid(u)).unwrap()
                    );
                    let cid = format!("cid{}", rng.below(15));
                    assert_eq!(
                        s.find_client_id(c, &uid(u), &cid).unwrap(),
                        reference.find_client_id(c, &uid(u), &cid).unwrap()
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------- open()

#[test]
fn open_urls() {
    let o = im_store::StoreOptions::default();
    assert!(im_store::open("memory:", &o).is_ok());
    assert!(matches!(
        im_store::open("redis://x", &o),
        Err(im_store::OpenError::UnsupportedUrl(_))
    ));
}

#[cfg(feature = "sqlite")]
#[test]
fn open_sqlite_urls_relative_and_absolute() {
    let o = im_store::StoreOptions::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let abs = dir.path().join("abs.db");
    let s = im_store::open(&format!("sqlite://{}", abs.display()), &o).unwrap();
    s.create_user(&user("alice", 1)).unwrap();
    drop(s);
    assert!(abs.exists());

    // Relative to the working directory (the package root under cargo test).
    let here = tempfile::tempdir_in(".").expect("temp dir in cwd");
    let name = here
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let s = im_store::open(&format!("sqlite://{name}/rel.db"), &o).unwrap();
    s.create_user(&user("alice", 1)).unwrap();
    drop(s);
    assert!(here.path().join("rel.db").exists());

    assert!(im_store::open("sqlite://:memory:", &o).is_ok());
    assert!(im_store::open("sqlite://", &o).is_err());
    let missing_dir = dir.path().join("no/such/dir/x.db");
    assert!(im_store::open(&format!("sqlite://{}", missing_dir.display()), &o).is_err());
}

// ---------------------------------------------------------------- SQLite only

/// Fills a store with one of everything.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn populate(s: &dyn Store) {
    let mut u = user("alice", 10);
    u.last_seen = Some(20);
    s.create_user(&u).unwrap();
    s.create_user(&user("bob", 11)).unwrap();
    s.set_suspended(&uid("bob"), true).unwrap();
    s.issue_token(&uid("alice"), "phone", "h1", 30).unwrap();
    s.issue_token(&uid("alice"), "pc", "h2", 31).unwrap();
    s.revoke_device(&uid("alice"), "pc").unwrap();
    s.set_relation(&uid("alice"), &uid("bob"), &Relation::Mutual)
        .unwrap();
    s.set_relation(
        &uid("alice"),
        &uid("carol"),
        &Relation::Requested { by: uid("carol") },
    )
    .unwrap();
    s.set_block(&uid("bob"), &uid("carol"), true).unwrap();
    s.create_room(&room_rec("lobby", "chat", true, 5), &uid("carol"))
        .unwrap();
    s.join_room(&rname("lobby"), &uid("alice"), 6).unwrap();
    s.set_room_ban(&rname("lobby"), &uid("bob"), true).unwrap();
    s.add_room_invite(&rname("lobby"), &uid("dave"), &uid("carol"))
        .unwrap();
    let c = dm("alice", "bob");
    send(
        s,
        vec![
            with_cid(msg(&c, "alice", "phone", "hello", 40), "k1"),
            msg(&c, "bob", "pc", "hi", 41),
            msg(&room("lobby"), "carol", "x", "yo", 42),
        ],
    );
    apply(s, vec![cursor("bob", "pc", &c, 2, true)]);
    let mut f = file_rec("f-sent", "alice", 100, 50);
    f.name = "report (final).pdf".to_owned();
    s.create_file(&f).unwrap();
    s.set_file_received("f-sent", 100).unwrap();
    s.finish_file("f-sent", &sha(1)).unwrap();
    s.attach_file("f-sent", &c).unwrap();
    s.attach_file("f-sent", &room("lobby")).unwrap();
    s.create_file(&file_rec("f-partial", "alice", 7, 51))
        .unwrap();
    s.set_file_received("f-partial", 3).unwrap();
}

/// Everything `populate` left, as one comparable value.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn snapshot(s: &dyn Store) -> String {
    let mut out = String::new();
    out += &format!("{:?}\n", s.list_users().unwrap());
    for u in ["alice", "bob", "carol"] {
        let u = uid(u);
        out += &format!("{:?}\n", s.devices(&u).unwrap());
        out += &format!("{:?}\n", s.contacts(&u).unwrap());
        out += &format!(
            "{:?} {:?}\n",
            s.blocks(&u).unwrap(),
            s.blocked_by(&u).unwrap()
        );
        for d in ["phone", "pc"] {
            out += &format!("{:?}\n", s.conversations(&u, d).unwrap());
        }
    }
    for c in [dm("alice", "bob"), room("lobby")] {
        out += &format!("{:?}\n", all_messages(s, &c));
    }
    out += &format!(
        "{:?}\n",
        s.find_client_id(&dm("alice", "bob"), &uid("alice"), "k1")
            .unwrap()
    );
    out += &format!(
        "{:?} {:?} {:?} {:?} {:?}\n",
        s.room(&rname("lobby")).unwrap(),
        s.room_members(&rname("lobby")).unwrap(),
        s.list_rooms(None, 10).unwrap(),
        s.is_room_banned(&rname("lobby"), &uid("bob")).unwrap(),
        s.room_invites(&uid("dave")).unwrap(),
    );
    out += &format!(
        "{:?} {:?} {:?} {:?}\n",
        s.file("f-sent").unwrap(),
        s.file("f-partial").unwrap(),
        s.file_convs("f-sent").unwrap(),
        s.stale_files(i64::MAX).unwrap(),
    );
    out += &format!(
        "{:?} {:?} {:?} {:?} {:?} {:?}\n",
        s.user_file_bytes(&uid("alice")).unwrap(),
        s.blob_in_use(&sha(1)).unwrap(),
        s.suspended_users().unwrap(),
        s.user_by_token("h1").unwrap(),
        s.user_by_token("h2").unwrap(),
        s.server_secret().map(|v| v.len()).unwrap(),
    );
    out
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_reopen_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    let reference = MemoryStore::new();
    populate(&reference);
    let before = {
        let s = im_store::SqliteStore::open(&path, &Default::default()).unwrap();
        populate(&s);
        snapshot(&s)
    };
    assert_eq!(before, snapshot(&reference));
    let s = im_store::SqliteStore::open(&path, &Default::default()).unwrap();
    assert_eq!(snapshot(&s), before);
    // And it carries on where it stopped.
    let a = send(&s, vec![msg(&dm("alice", "bob"), "bob", "pc", "again", 1)]);
    assert_eq!(a, [new(3, 41)]);
    let a = send(
        &s,
        vec![with_cid(
            msg(&dm("alice", "bob"), "alice", "phone", "dup", 99),
            "k1",
        )],
    );
    assert_eq!(a, [dup(1, 40)]);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_options_are_applied() {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    let opts = im_store::StoreOptions {
        synchronous: im_store::Synchronous::Normal,
        ..Default::default()
    };
    let s = im_store::SqliteStore::open(&path, &opts).unwrap();
    populate(&s);
    let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let mode = diesel::sql_query("PRAGMA journal_mode")
        .get_result::<Mode>(&mut c)
        .unwrap();
    assert_eq!(mode.journal_mode, "wal");
}

/// Two stores on one file (as two processes would be), writing to one
/// conversation from several threads: seq stays gapless and unique.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_two_stores_share_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    let opts = im_store::StoreOptions {
        busy_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    let a: Arc<dyn Store> = Arc::new(im_store::SqliteStore::open(&path, &opts).unwrap());
    let b: Arc<dyn Store> = Arc::new(im_store::SqliteStore::open(&path, &opts).unwrap());
    concurrent_writers(&[a, b], 3, 20, 10);
}

/// Several threads per store, each writing `batches` batches of `per_batch`
/// messages to one shared conversation (plus a private one, a cursor, and a
/// client_id every thread sends), then checks seq is gapless and unique.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn concurrent_writers(stores: &[Arc<dyn Store>], threads: usize, batches: usize, per_batch: usize) {
    let shared = room("shared");
    let mut handles = Vec::new();
    for (si, store) in stores.iter().enumerate() {
        for t in 0..threads {
            let store = Arc::clone(store);
            let shared = shared.clone();
            handles.push(std::thread::spawn(move || {
                let me = format!("u{si}x{t}");
                let private = dm(&me, "zzz");
                let mut mine = Vec::new();
                for b in 0..batches {
                    let mut msgs: Vec<NewMessage> = (0..per_batch)
                        .map(|i| msg(&shared, &me, "d", &format!("{me} {b} {i}"), b as i64))
                        .collect();
                    msgs.push(msg(&private, &me, "d", "p", 0));
                    // Every thread races for the same client_id.
                    msgs.push(with_cid(
                        msg(&shared, "racer", "d", "race", 0),
                        &format!("c{b}"),
                    ));
                    let cursors = [cursor(&me, "d", &shared, b as u64, true)];
                    let (a, _) = store.write_batch(&msgs, &cursors).expect("write_batch");
                    assert_eq!(a[per_batch], new(b as u64 + 1, 0), "private conversation");
                    mine.push((msgs, a));
                }
                mine
            }));
        }
    }
    let mut by_seq = std::collections::BTreeMap::new();
    let mut race = std::collections::HashMap::new();
    for h in handles {
        for (msgs, appended) in h.join().expect("writer thread") {
            for (m, a) in msgs.iter().zip(&appended) {
                if m.conv != shared {
                    continue;
                }
                if let Some(cid) = &m.client_id {
                    let first = race.entry(cid.clone()).or_insert((a.seq, a.ts));
                    assert_eq!(*first, (a.seq, a.ts), "every racer gets the same seq");
                    if a.duplicate {
                        continue;
                    }
                }
                assert!(!a.duplicate);
                assert!(
                    by_seq.insert(a.seq, m.body.clone()).is_none(),
                    "seq {} handed out twice",
                    a.seq
                );
            }
        }
    }
    let total = stores.len() * threads * batches * per_batch + batches;
    assert_eq!(by_seq.len(), total);
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=total as u64).collect::<Vec<_>>()
    );
    let stored = all_messages(&*stores[0], &shared);
    assert_eq!(stored.len(), total);
    for m in &stored {
        assert_eq!(by_seq.get(&m.seq), Some(&m.body));
    }
    assert!(stored.windows(2).all(|w| w[0].ts <= w[1].ts));
}

/// A database deployed before files existed (only the first migration
/// run) is upgraded when a store opens it, and keeps its data.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_upgrades_a_database_from_the_first_migration() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    {
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute(include_str!(
            "../migrations/sqlite/2026-01-01-000000_init/up.sql"
        ))
        .unwrap();
        c.batch_execute(
            "CREATE TABLE __diesel_schema_migrations (\
             version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP); \
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20260101000000'); \
             INSERT INTO users (name, password_hash, suspended, created_at) \
             VALUES ('alice', 'h', 0, 1), ('bob', 'h', 1, 2); \
             INSERT INTO devices (user_name, device, token_hash, token_issued_at, last_login) \
             VALUES ('alice', 'phone', 'h1', 10, 11);",
        )
        .unwrap();
    }
    let s = im_store::SqliteStore::open(&path, &Default::default()).unwrap();
    let (u, d) = s.user_by_token("h1").unwrap().unwrap();
    assert_eq!(
        (u, d.device, d.last_login),
        (uid("alice"), "phone".into(), 11)
    );
    assert_eq!(s.suspended_users().unwrap(), [uid("bob")]);
    assert_eq!(s.user_file_bytes(&uid("alice")).unwrap(), 0);
    s.create_file(&file_rec("f-1", "alice", 5, 1)).unwrap();
    assert_eq!(s.server_secret().unwrap().len(), 32);
    drop(s);
    // Opening again runs nothing twice.
    let s = im_store::SqliteStore::open(&path, &Default::default()).unwrap();
    assert!(s.file("f-1").unwrap().is_some());
}

/// Every store asks for the secret at the same moment; all get the same.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn secrets_at_once(stores: &[Arc<dyn Store>]) -> Vec<u8> {
    let barrier = Arc::new(std::sync::Barrier::new(stores.len()));
    let threads: Vec<_> = stores
        .iter()
        .map(|s| {
            let (s, barrier) = (Arc::clone(s), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                s.server_secret().expect("server secret")
            })
        })
        .collect();
    let secrets: Vec<Vec<u8>> = threads
        .into_iter()
        .map(|t| t.join().expect("secret thread"))
        .collect();
    assert_eq!(secrets[0].len(), 32);
    assert!(
        secrets.iter().all(|s| s == &secrets[0]),
        "stores disagree on the secret"
    );
    for s in stores {
        assert_eq!(s.server_secret().unwrap(), secrets[0]);
    }
    secrets[0].clone()
}

/// The secret is created once per database file: shared by stores on the
/// same file (as processes would be) and kept across reopening.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_server_secret_shared_and_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    let opts = im_store::StoreOptions {
        busy_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    let stores: Vec<Arc<dyn Store>> = (0..4)
        .map(|_| Arc::new(im_store::SqliteStore::open(&path, &opts).unwrap()) as Arc<dyn Store>)
        .collect();
    let secret = secrets_at_once(&stores);
    drop(stores);
    let s = im_store::SqliteStore::open(&path, &opts).unwrap();
    assert_eq!(s.server_secret().unwrap(), secret);
    drop(s);
    // Another database gets another secret.
    let other = im_store::SqliteStore::open(dir.path().join("other.db"), &opts).unwrap();
    assert_ne!(other.server_secret().unwrap(), secret);
}

// ---------------------------------------------------------------- PostgreSQL only

/// Several `PgStore`s on one schema (as several server processes) asking
/// for the secret at once agree on it, and it survives reopening.
#[cfg(feature = "postgres")]
#[test]
fn postgres_server_secret_shared_and_kept() {
    let Some(url) = pg_support::url() else { return };
    let schema = pg_support::fresh_schema();
    let opts = pg_support::options(&schema);
    let open = || -> Arc<dyn Store> {
        match im_store::PgStore::open(&url, &opts) {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("IM_TEST_POSTGRES_URL is set but the store cannot be opened: {e}"),
        }
    };
    let _guard = pg_support::SchemaGuard(url.clone(), schema.clone());
    let stores = [open(), open(), open()];
    let secret = secrets_at_once(&stores);
    drop(stores);
    assert_eq!(open().server_secret().unwrap(), secret);
}

/// Two `PgStore`s (two pools, as two server processes would have) on one
/// schema, several threads each, all appending to one conversation.
#[cfg(feature = "postgres")]
#[test]
fn postgres_two_stores_concurrently_gapless() {
    let Some(url) = pg_support::url() else { return };
    let schema = pg_support::fresh_schema();
    let opts = pg_support::options(&schema);
    let open = || -> Arc<dyn Store> {
        match im_store::PgStore::open(&url, &opts) {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("IM_TEST_POSTGRES_URL is set but the store cannot be opened: {e}"),
        }
    };
    let _guard = pg_support::SchemaGuard(url.clone(), schema.clone());
    let stores = [open(), open()];
    concurrent_writers(&stores, 4, 25, 8);
}

/// Opening twice at once on a fresh schema: migrations run once.
#[cfg(feature = "postgres")]
#[test]
fn postgres_concurrent_open_and_reopen() {
    let Some(url) = pg_support::url() else { return };
    let schema = pg_support::fresh_schema();
    let opts = pg_support::options(&schema);
    let _guard = pg_support::SchemaGuard(url.clone(), schema.clone());
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (url, opts) = (url.clone(), opts.clone());
            std::thread::spawn(move || im_store::PgStore::open(&url, &opts).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().expect("thread").expect("concurrent open");
    }
    let reference = MemoryStore::new();
    populate(&reference);
    let s = im_store::PgStore::open(&url, &opts).expect("open");
    assert_eq!(s.schema(), Some(schema.as_str()));
    populate(&s);
    let before = snapshot(&s);
    assert_eq!(before, snapshot(&reference));
    drop(s);
    let s = im_store::PgStore::open(&url, &opts).expect("reopen");
    assert_eq!(snapshot(&s), before);
}
