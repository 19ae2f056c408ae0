//! SQLite only: the store's setup (a temporary file per test), reopening,
//! several stores on one file, migrations from older databases, pragmas.

use std::sync::Arc;

use im_core::store::prelude::*;
use im_core::MemoryStore;
use libtest_mimic::Failed;

use crate::support::*;
use crate::{Harness, Skip};

/// These tests.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "sqlite_reopen_keeps_everything",
        sqlite_reopen_keeps_everything,
    ),
    ("sqlite_options_are_applied", sqlite_options_are_applied),
    (
        "sqlite_synchronous_is_full_by_default",
        sqlite_synchronous_is_full_by_default,
    ),
    (
        "sqlite_synchronous_option_reaches_the_writer",
        sqlite_synchronous_option_reaches_the_writer,
    ),
    (
        "sqlite_two_stores_share_one_file",
        sqlite_two_stores_share_one_file,
    ),
    (
        "sqlite_rights_taken_away_through_another_store",
        sqlite_rights_taken_away_through_another_store,
    ),
    (
        "sqlite_upgrades_a_database_from_the_first_migration",
        sqlite_upgrades_a_database_from_the_first_migration,
    ),
    (
        "sqlite_server_secret_shared_and_kept",
        sqlite_server_secret_shared_and_kept,
    ),
];

/// A store on a new file in a temporary directory.
pub(crate) fn store() -> Result<Result<Harness, Skip>, Failed> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let store = im_store::SqliteStore::open(dir.path().join("im.db"), &Default::default())
        .map_err(|e| format!("open sqlite store: {e}"))?;
    let mut h = Harness::of(store);
    h.dir = Some(dir);
    Ok(Ok(h))
}

/// A private in-memory database (`:memory:`).
pub(crate) fn memory_store() -> Result<Result<Harness, Skip>, Failed> {
    let store = im_store::SqliteStore::open(":memory:", &Default::default())
        .map_err(|e| format!("open in-memory sqlite store: {e}"))?;
    Ok(Ok(Harness::of(store)))
}

/// `synchronous=FULL` is the default: read back from the writer, the
/// connection that commits (the pragma is per connection, and a kill -9
/// test cannot tell FULL from OFF).
fn sqlite_synchronous_is_full_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = im_store::SqliteStore::open(dir.path().join("im.db"), &Default::default()).unwrap();
    assert_eq!(
        s.synchronous_setting().unwrap(),
        im_store::Synchronous::Full
    );
    // Still so after the writer has committed something.
    populate(&s);
    assert_eq!(
        s.synchronous_setting().unwrap(),
        im_store::Synchronous::Full
    );
}

/// An explicit `synchronous` option is what the writer runs with.
fn sqlite_synchronous_option_reaches_the_writer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = im_store::StoreOptions {
        synchronous: im_store::Synchronous::Normal,
        ..Default::default()
    };
    let s = im_store::SqliteStore::open(dir.path().join("im.db"), &opts).unwrap();
    assert_eq!(
        s.synchronous_setting().unwrap(),
        im_store::Synchronous::Normal
    );
}

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

/// Two stores on one file: each caches the send rights it found; a right
/// the other takes away applies to the next batch.
fn sqlite_rights_taken_away_through_another_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    let a = im_store::SqliteStore::open(&path, &Default::default()).unwrap();
    let b = im_store::SqliteStore::open(&path, &Default::default()).unwrap();
    crate::guards::rights_taken_away_through_another_store(&a, &b);
}

/// A database deployed before files existed (only the first migration
/// run) is upgraded when a store opens it, and keeps its data.
fn sqlite_upgrades_a_database_from_the_first_migration() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("im.db");
    {
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute(include_str!(
            "../../migrations/sqlite/2026-01-01-000000_init/up.sql"
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

/// The secret is created once per database file: shared by stores on the
/// same file (as processes would be) and kept across reopening.
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
