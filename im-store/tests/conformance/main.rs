//! The store conformance suite: one set of tests, run against
//! [`MemoryStore`] (the reference), `SqliteStore` (a temporary file, and
//! `:memory:`, per test) and `PgStore` (a fresh schema per test, dropped
//! afterwards).
//!
//! Every domain test is a plain function over `&dyn Store`, listed in its
//! domain's `TESTS`; `main` runs each on each backend as
//! `<backend>::<domain>::<test>`. Beside the targeted tests,
//! `messages::differential_random` and `files::files_differential_random`
//! replay long pseudo-random sequences on the store under test and on a
//! `MemoryStore` and compare every result.
//!
//! The PostgreSQL tests need `IM_TEST_POSTGRES_URL` and im-store's
//! `postgres` feature. Without them they are reported as ignored, with the
//! reason; when the variable `CI` is set, a missing URL fails them instead,
//! and so does, always, a server that cannot be reached. Deciding that at
//! run time needs a harness of its own (`harness = false`, libtest-mimic),
//! which takes the usual arguments: a name filter, `--exact`,
//! `--ignored`, `--list`, `--test-threads`.
//!
//! ## Layout
//! - `accounts`, `contacts`, `messages`, `rooms`, `files`, `changes`: the
//!   tests of each domain trait; `guards`: the rights `write_batch` checks.
//! - `support`: builders and checks they share.
//! - `open`: `im_store::open` and its URLs.
//! - `sqlite`, `postgres`: what only one backend has (reopening, several
//!   stores on one database, migrations, pragmas), and each backend's
//!   setup.

mod accounts;
mod changes;
mod contacts;
mod files;
mod guards;
mod messages;
mod open;
mod postgres;
mod rooms;
#[cfg(feature = "sqlite")]
mod sqlite;
mod support;

use std::process::ExitCode;
use std::sync::Arc;

use im_core::store::Store;
use im_core::MemoryStore;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// A test every backend runs.
pub(crate) type StoreTest = (&'static str, fn(&dyn Store));

/// Each domain's tests.
const DOMAINS: [(&str, &[StoreTest]); 7] = [
    ("accounts", accounts::TESTS),
    ("contacts", contacts::TESTS),
    ("messages", messages::TESTS),
    ("rooms", rooms::TESTS),
    ("files", files::TESTS),
    ("changes", changes::TESTS),
    ("guards", guards::TESTS),
];

/// A backend whose tests do not run here, and why; they show as ignored.
pub(crate) struct Skip(pub(crate) String);

/// Opens a fresh, empty store of one backend.
pub(crate) type Open = fn() -> Result<Result<Harness, Skip>, Failed>;

/// Every backend the domain tests run on.
fn backends() -> Vec<(&'static str, Open)> {
    let mut v: Vec<(&'static str, Open)> = vec![("memory", memory_store)];
    #[cfg(feature = "sqlite")]
    {
        v.push(("sqlite", sqlite::store));
        v.push(("sqlite_in_memory", sqlite::memory_store));
    }
    v.push(("postgres", postgres::store));
    v
}

/// A store under test and whatever must outlive it (a temp dir) or run
/// after it (dropping a PostgreSQL schema).
pub(crate) struct Harness {
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) cleanup: Option<Box<dyn FnOnce()>>,
    pub(crate) dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// A store that needs nothing else.
    pub(crate) fn of(store: impl Store) -> Harness {
        Harness {
            store: Some(Arc::new(store)),
            cleanup: None,
            dir: None,
        }
    }

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
        self.dir = None;
    }
}

fn memory_store() -> Result<Result<Harness, Skip>, Failed> {
    Ok(Ok(Harness::of(MemoryStore::new())))
}

/// `test` on a fresh store from `open`.
fn on_backend(name: String, open: Open, test: fn(&dyn Store)) -> Trial {
    Trial::ignorable_test(name, move || match open()? {
        Ok(h) => {
            test(h.store());
            Ok(Completion::Completed)
        }
        Err(Skip(why)) => Ok(Completion::ignored_with(why)),
    })
}

/// A test that needs no store from the harness.
fn plain(name: &'static str, test: fn()) -> Trial {
    Trial::test(name, move || {
        test();
        Ok(())
    })
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for (backend, open) in backends() {
        for (domain, tests) in DOMAINS {
            for &(name, test) in tests {
                trials.push(on_backend(
                    format!("{backend}::{domain}::{name}"),
                    open,
                    test,
                ));
            }
        }
    }
    trials.extend(open::TESTS.iter().map(|&(n, t)| plain(n, t)));
    #[cfg(feature = "sqlite")]
    trials.extend(sqlite::TESTS.iter().map(|&(n, t)| plain(n, t)));
    trials.extend(postgres::TESTS.iter().map(|&(n, t)| postgres::trial(n, t)));
    libtest_mimic::run(&args, trials).exit_code()
}
