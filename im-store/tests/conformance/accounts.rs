//! Accounts: users, devices and tokens, the server secret.

use im_core::error::StoreError;
use im_core::ids::UserId;
use im_core::store::prelude::*;
use im_core::store::{Granted, TokenGrant};

use crate::support::*;
use crate::StoreTest;

/// The tests of this domain, run on every backend.
pub(crate) const TESTS: &[StoreTest] = &[
    ("users_create_conflict_lookup", users_create_conflict_lookup),
    ("users_list_in_byte_order", users_list_in_byte_order),
    (
        "users_password_suspended_last_seen",
        users_password_suspended_last_seen,
    ),
    ("users_suspended_listing", users_suspended_listing),
    (
        "tokens_issue_replace_touch_revoke",
        tokens_issue_replace_touch_revoke,
    ),
    ("tokens_user_by_token", tokens_user_by_token),
    (
        "tokens_granted_only_while_the_login_holds",
        tokens_granted_only_while_the_login_holds,
    ),
    (
        "parallel_grants_never_pass_the_device_cap",
        parallel_grants_never_pass_the_device_cap,
    ),
    ("server_secret_stable", server_secret_stable),
];

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
    // Many at once; an older login never moves last_login back.
    s.touch_devices(&[
        (alice.clone(), "phone".into(), 350),
        (bob.clone(), "phone".into(), 350),
    ])
    .unwrap();
    s.touch_devices(&[(alice.clone(), "phone".into(), 320)])
        .unwrap();
    let d = s.device_by_token(&alice, "h2").unwrap().unwrap();
    assert_eq!(d.last_login, 350);
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

fn grant(name: &str, device: &str, password_hash: &str, max_devices: usize) -> TokenGrant {
    TokenGrant {
        user: uid(name),
        device: device.into(),
        token_hash: format!("t-{name}-{device}"),
        password_hash: password_hash.into(),
        max_devices,
        now: 100,
    }
}

fn tokens_granted_only_while_the_login_holds(s: &dyn Store) {
    s.create_user(&user("alice", 1)).unwrap();
    let alice = uid("alice");
    let token = |device: &str| {
        s.devices(&alice)
            .unwrap()
            .into_iter()
            .find(|d| d.device == device)
            .and_then(|d| d.token_hash)
    };
    let g = grant("alice", "phone", "hash-of-alice", 2);
    assert_eq!(s.grant_token(&g).unwrap(), Granted::Issued);
    assert_eq!(token("phone").as_deref(), Some("t-alice-phone"));
    let d = s.device_by_token(&alice, "t-alice-phone").unwrap().unwrap();
    assert_eq!((d.token_issued_at, d.last_login), (100, 100));
    // A second device fits; a third does not, but a device already
    // holding a token may always log in again.
    assert_eq!(
        s.grant_token(&grant("alice", "pc", "hash-of-alice", 2))
            .unwrap(),
        Granted::Issued
    );
    assert_eq!(
        s.grant_token(&grant("alice", "tablet", "hash-of-alice", 2))
            .unwrap(),
        Granted::TooManyDevices
    );
    assert_eq!(token("tablet"), None);
    assert_eq!(s.grant_token(&g).unwrap(), Granted::Issued);
    // A revoked device frees its place.
    assert!(s.revoke_device(&alice, "pc").unwrap());
    assert_eq!(
        s.grant_token(&grant("alice", "tablet", "hash-of-alice", 2))
            .unwrap(),
        Granted::Issued
    );
    // The password changed since the login read it.
    s.set_password_hash(&alice, "new-hash").unwrap();
    assert_eq!(
        s.grant_token(&grant("alice", "pc", "hash-of-alice", 5))
            .unwrap(),
        Granted::PasswordChanged
    );
    assert_eq!(token("pc"), None);
    // Suspended meanwhile.
    s.set_suspended(&alice, true).unwrap();
    assert_eq!(
        s.grant_token(&grant("alice", "pc", "new-hash", 5)).unwrap(),
        Granted::Suspended
    );
    assert_eq!(token("pc"), None);
    assert!(matches!(
        s.grant_token(&grant("nobody", "pc", "x", 5)),
        Err(StoreError::NotFound)
    ));
}

/// Logins on several connections (threads, or processes sharing the
/// database) for new devices at once: exactly the cap gets tokens.
fn parallel_grants_never_pass_the_device_cap(s: &dyn Store) {
    s.create_user(&user("alice", 1)).unwrap();
    let issued = std::thread::scope(|scope| {
        let tries: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    let g = grant("alice", &format!("d{i}"), "hash-of-alice", 3);
                    s.grant_token(&g).unwrap()
                })
            })
            .collect();
        tries
            .into_iter()
            .map(|t| t.join())
            .filter(|t| matches!(t, Ok(Granted::Issued)))
            .count()
    });
    assert_eq!(issued, 3);
    let live = s.devices(&uid("alice")).unwrap();
    assert_eq!(live.iter().filter(|d| d.token_hash.is_some()).count(), 3);
}
