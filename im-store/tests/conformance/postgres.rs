//! PostgreSQL: whether it is tested in this run, the store's setup (a fresh
//! schema per test, dropped afterwards), and what only it has (several
//! stores on one schema at once).

use libtest_mimic::{Completion, Failed, Trial};

use crate::{Harness, Skip};

/// The server to test against: `IM_TEST_POSTGRES_URL`. Without it the
/// PostgreSQL tests are skipped, saying why, except under CI (`CI` set),
/// where every backend must be tested and they fail.
pub(crate) fn url() -> Result<Result<String, Skip>, Failed> {
    if !cfg!(feature = "postgres") {
        return Ok(Err(Skip(
            "im-store built without its `postgres` feature".into(),
        )));
    }
    match std::env::var("IM_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Ok(Ok(u)),
        _ if in_ci() => Err(
            "CI is set but IM_TEST_POSTGRES_URL is not: CI must test the PostgreSQL store".into(),
        ),
        _ => Ok(Err(Skip("IM_TEST_POSTGRES_URL not set".into()))),
    }
}

/// Whether this is a CI run (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A PostgreSQL-only test: its name and body, given the server's URL.
pub(crate) type PgTest = (&'static str, fn(&str));

/// A PostgreSQL-only test, given the server's URL.
pub(crate) fn trial(name: &'static str, test: fn(&str)) -> Trial {
    Trial::ignorable_test(name, move || match url()? {
        Ok(url) => {
            test(&url);
            Ok(Completion::Completed)
        }
        Err(Skip(why)) => Ok(Completion::ignored_with(why)),
    })
}

#[cfg(not(feature = "postgres"))]
pub(crate) use disabled::*;
#[cfg(feature = "postgres")]
pub(crate) use enabled::*;

#[cfg(not(feature = "postgres"))]
mod disabled {
    use super::*;

    /// No PostgreSQL store in this build.
    pub(crate) fn store() -> Result<Result<Harness, Skip>, Failed> {
        url().map(|r| r.map(|_| unreachable!("url() skips without the feature")))
    }

    /// No PostgreSQL-only tests in this build.
    pub(crate) const TESTS: &[PgTest] = &[];
}

#[cfg(feature = "postgres")]
mod enabled {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    use im_core::store::prelude::*;
    use im_core::MemoryStore;

    use super::*;
    use crate::support::*;

    /// These tests.
    pub(crate) const TESTS: &[PgTest] = &[
        (
            "postgres_server_secret_shared_and_kept",
            postgres_server_secret_shared_and_kept,
        ),
        (
            "postgres_two_stores_concurrently_gapless",
            postgres_two_stores_concurrently_gapless,
        ),
        (
            "postgres_concurrent_open_and_reopen",
            postgres_concurrent_open_and_reopen,
        ),
    ];

    /// A store in a schema of its own, dropped with the harness.
    pub(crate) fn store() -> Result<Result<Harness, Skip>, Failed> {
        let url = match url()? {
            Ok(url) => url,
            Err(skip) => return Ok(Err(skip)),
        };
        let schema = fresh_schema();
        let store = open(&url, &schema)?;
        let mut h = Harness::of(store);
        h.cleanup = Some(Box::new(move || drop_schema(&url, &schema)));
        Ok(Ok(h))
    }

    /// Opens a store on `schema`; failing to is a test failure, whatever
    /// the environment: the URL was given.
    fn open(url: &str, schema: &str) -> Result<im_store::PgStore, Failed> {
        im_store::PgStore::open(url, &options(schema)).map_err(|e| {
            format!("IM_TEST_POSTGRES_URL is set but the store cannot be opened: {e}").into()
        })
    }

    /// [`open`] for a test body, where a failure is a panic.
    fn open_arc(url: &str, schema: &str) -> Arc<dyn Store> {
        match open(url, schema) {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("{}", e.message().unwrap_or("cannot open the store")),
        }
    }

    /// A schema name no other test (or run) uses.
    fn fresh_schema() -> String {
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

    fn options(schema: &str) -> im_store::StoreOptions {
        im_store::StoreOptions {
            pg_schema: Some(schema.to_owned()),
            pool_size: 4,
            connect_timeout: Duration::from_secs(10),
            ..Default::default()
        }
    }

    /// Drops the schema when it goes out of scope (declare it before the
    /// stores using the schema, so they close first).
    struct SchemaGuard(String, String);

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            drop_schema(&self.0, &self.1);
        }
    }

    fn drop_schema(url: &str, schema: &str) {
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

    /// Several `PgStore`s on one schema (as several server processes)
    /// asking for the secret at once agree on it, and it survives
    /// reopening.
    fn postgres_server_secret_shared_and_kept(url: &str) {
        let schema = fresh_schema();
        let _guard = SchemaGuard(url.to_owned(), schema.clone());
        let stores = [
            open_arc(url, &schema),
            open_arc(url, &schema),
            open_arc(url, &schema),
        ];
        let secret = secrets_at_once(&stores);
        drop(stores);
        assert_eq!(open_arc(url, &schema).server_secret().unwrap(), secret);
    }

    /// Two `PgStore`s (two pools, as two server processes would have) on
    /// one schema, several threads each, all appending to one conversation.
    fn postgres_two_stores_concurrently_gapless(url: &str) {
        let schema = fresh_schema();
        let _guard = SchemaGuard(url.to_owned(), schema.clone());
        let stores = [open_arc(url, &schema), open_arc(url, &schema)];
        concurrent_writers(&stores, 4, 25, 8);
    }

    /// Opening twice at once on a fresh schema: migrations run once.
    fn postgres_concurrent_open_and_reopen(url: &str) {
        let schema = fresh_schema();
        let opts = options(&schema);
        let _guard = SchemaGuard(url.to_owned(), schema.clone());
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (url, opts) = (url.to_owned(), opts.clone());
                std::thread::spawn(move || im_store::PgStore::open(&url, &opts).map(|_| ()))
            })
            .collect();
        for t in threads {
            t.join().expect("thread").expect("concurrent open");
        }
        let reference = MemoryStore::new();
        populate(&reference);
        let s = im_store::PgStore::open(url, &opts).expect("open");
        assert_eq!(s.schema(), Some(schema.as_str()));
        populate(&s);
        let before = snapshot(&s);
        assert_eq!(before, snapshot(&reference));
        drop(s);
        let s = im_store::PgStore::open(url, &opts).expect("reopen");
        assert_eq!(snapshot(&s), before);
    }
}
