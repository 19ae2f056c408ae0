//! Builders and checks the domain tests share.

use im_core::ids::{ConvId, RoomName, UserId};
use im_core::store::prelude::*;
use im_core::store::{
    Appended, ConvSummary, CursorOutcome, CursorUpdate, FileRecord, NewMessage, RoomMember,
    RoomRecord, RoomRole, StoredMessage, UserRecord,
};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::sync::Arc;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use im_core::store::Relation;

pub(crate) fn uid(s: &str) -> UserId {
    UserId::parse(s).expect("valid user name")
}

pub(crate) fn dm(a: &str, b: &str) -> ConvId {
    ConvId::direct(&uid(a), &uid(b))
}

pub(crate) fn room(name: &str) -> ConvId {
    ConvId::parse(&format!("room:{name}")).expect("valid room")
}

pub(crate) fn user(name: &str, created_at: i64) -> UserRecord {
    UserRecord {
        name: uid(name),
        password_hash: format!("hash-of-{name}"),
        suspended: false,
        created_at,
        last_seen: None,
    }
}

pub(crate) fn msg(conv: &ConvId, from: &str, device: &str, body: &str, now: i64) -> NewMessage {
    NewMessage {
        conv: conv.clone(),
        from: uid(from),
        device: device.to_owned(),
        body: body.to_owned(),
        client_id: None,
        attachment: None,
        now,
        guard: None,
    }
}

pub(crate) fn with_cid(mut m: NewMessage, cid: &str) -> NewMessage {
    m.client_id = Some(cid.to_owned());
    m
}

pub(crate) fn cursor(
    user: &str,
    device: &str,
    conv: &ConvId,
    delivered: u64,
    read: bool,
) -> CursorUpdate {
    CursorUpdate {
        user: uid(user),
        device: device.to_owned(),
        conv: conv.clone(),
        delivered,
        read,
    }
}

pub(crate) fn send(s: &dyn Store, msgs: Vec<NewMessage>) -> Vec<Appended> {
    let (a, c) = s.write_batch(&msgs, &[]).expect("write_batch");
    assert_eq!(a.len(), msgs.len());
    assert!(c.is_empty());
    a
}

pub(crate) fn apply(s: &dyn Store, cursors: Vec<CursorUpdate>) -> Vec<CursorOutcome> {
    let (a, c) = s.write_batch(&[], &cursors).expect("write_batch");
    assert!(a.is_empty());
    assert_eq!(c.len(), cursors.len());
    c
}

pub(crate) fn new(seq: u64, ts: i64) -> Appended {
    Appended {
        seq,
        ts,
        duplicate: false,
        refused: None,
    }
}

pub(crate) fn dup(seq: u64, ts: i64) -> Appended {
    Appended {
        seq,
        ts,
        duplicate: true,
        refused: None,
    }
}

pub(crate) fn summary(s: &dyn Store, user: &str, device: &str, conv: &ConvId) -> ConvSummary {
    s.conversations(&uid(user), device)
        .expect("conversations")
        .into_iter()
        .find(|c| &c.conv == conv)
        .unwrap_or_else(|| panic!("{user} does not list {conv}"))
}

pub(crate) fn all_messages(s: &dyn Store, conv: &ConvId) -> Vec<StoredMessage> {
    s.messages_after(conv, 0, usize::MAX)
        .expect("messages_after")
}

pub(crate) fn seqs(v: &[StoredMessage]) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

pub(crate) fn rname(name: &str) -> RoomName {
    RoomName::parse(name).expect("valid room name")
}

pub(crate) fn room_rec(name: &str, topic: &str, public: bool, created_at: i64) -> RoomRecord {
    RoomRecord {
        name: rname(name),
        topic: topic.to_owned(),
        public,
        created_at,
    }
}

pub(crate) fn member(user: &str, owner: bool, joined_at: i64) -> RoomMember {
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

pub(crate) fn file_rec(id: &str, uploader: &str, size: u64, created_at: i64) -> FileRecord {
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

pub(crate) fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub(crate) fn ids(v: &[FileRecord]) -> Vec<&str> {
    v.iter().map(|f| f.id.as_str()).collect()
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Fills a store with one of everything.
pub(crate) fn populate(s: &dyn Store) {
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

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Everything `populate` left, as one comparable value.
pub(crate) fn snapshot(s: &dyn Store) -> String {
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

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Several threads per store, each writing `batches` batches of `per_batch`
/// messages to one shared conversation (plus a private one, a cursor, and a
/// client_id every thread sends), then checks seq is gapless and unique.
pub(crate) fn concurrent_writers(
    stores: &[Arc<dyn Store>],
    threads: usize,
    batches: usize,
    per_batch: usize,
) {
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

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Every store asks for the secret at the same moment; all get the same.
pub(crate) fn secrets_at_once(stores: &[Arc<dyn Store>]) -> Vec<u8> {
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

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}
