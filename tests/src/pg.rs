//! The machine's PostgreSQL (and NATS) for the tests that need them: the
//! URL from the environment, or a skip that says why (a failure under CI,
//! which must test every backend), and a schema of a test's own.

use std::io::Write as _;

/// Whether this run is CI (`CI` set to something other than 0/false).
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Skips, saying `why` past the harness's capture, or fails under CI.
fn skip(what: &str, why: &str) {
    assert!(!ci(), "CI must run the {what} tests: {why}");
    let _ = writeln!(std::io::stderr(), "{what} test skipped: {why}");
}

/// The PostgreSQL server to test against (`IM_TEST_POSTGRES_URL`), or
/// `None` after saying why there is none.
pub fn postgres_url() -> Option<String> {
    let why = if !cfg!(feature = "postgres") {
        "im-tests built without its `postgres` feature"
    } else {
        match std::env::var("IM_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => return Some(u),
            _ => "IM_TEST_POSTGRES_URL not set",
        }
    };
    skip("postgres", why);
    None
}

/// The NATS server to test against (`IM_TEST_NATS_URL`), or `None` after
/// saying why there is none.
pub fn nats_url() -> Option<String> {
    match std::env::var("IM_TEST_NATS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            skip("nats", "IM_TEST_NATS_URL not set");
            None
        }
    }
}

/// A schema of a test's own, dropped when the test ends.
pub struct Schema {
    url: String,
    /// Its name: `<prefix>_<pid>_<nanos>`, usable as an identifier.
    pub name: String,
}

impl Schema {
    /// A fresh name under `prefix` on the server at `url` (created by the
    /// store that first uses it).
    pub fn new(url: &str, prefix: &str) -> Schema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Schema {
            url: url.to_owned(),
            name: format!("{prefix}_{}_{nanos}", std::process::id()),
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A thread of its own: this may run on a runtime thread.
        let dropped = std::thread::spawn(move || drop_schema(&url, &name)).join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop schema {}: {dropped:?}", self.name);
        }
    }
}

#[cfg(feature = "postgres")]
fn drop_schema(url: &str, name: &str) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut c = diesel::PgConnection::establish(url).map_err(|e| e.to_string())?;
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
        .map_err(|e| e.to_string())
}

/// Never called: without the feature there is no PostgreSQL test.
#[cfg(not(feature = "postgres"))]
fn drop_schema(_url: &str, _name: &str) -> Result<(), String> {
    Ok(())
}
