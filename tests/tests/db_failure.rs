//! "Database failure": while the database cannot be written (a SQLite file
//! whose write lock another process holds; a PostgreSQL server that went
//! away), every send is answered `unavailable` within a bounded time and
//! never `ok`; nothing panics; once the database is back, sends succeed
//! again within 10 s without anyone restarting anything, and the store
//! holds exactly the messages that were acknowledged.
//!
//! Both stores go through one scenario ([`outage`]); only the fault
//! differs. The faults come from outside the server, as real ones do: a
//! second connection to the SQLite file holding `BEGIN EXCLUSIVE`, and a
//! TCP proxy between the server and PostgreSQL that drops every
//! connection and refuses new ones. (Making the database's directory or
//! file read-only is no fault for an open database: its files are already
//! open for writing, and the tests may run as root.)
//!
//! The PostgreSQL test needs the `postgres` feature and
//! `IM_TEST_POSTGRES_URL`; without them it is skipped, saying why, unless
//! `CI` is set, where it fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use im_store::StoreOptions;
use im_tests::pg::{postgres_url, Schema};
use im_tests::{Client, TestServer, TestStore, PASSWORD, WAIT};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The store's own timeout in these tests: how long SQLite waits for the
/// write lock (`busy_timeout`), how long a request waits for a pooled
/// PostgreSQL connection (`pool_timeout`).
const TIMEOUT: Duration = Duration::from_millis(1000);

/// Longest acceptable wait for an answer while the database is failing:
/// the batch in flight when a send arrives fails after at most one
/// timeout, the send's own batch after one more. Nothing may queue behind
/// more than that: not behind other conversations' batches, not behind
/// other requests' writes.
const FAULT_ANSWER: Duration = Duration::from_millis(2 * 1000 + 500);

/// How soon after the database is back sends must succeed again.
const RECOVERY: Duration = Duration::from_secs(10);

/// Users who try to log in while the database is failing (a login stores
/// a token): their writes must not make sends wait in line.
const LATECOMERS: usize = 6;

// ---------------------------------------------------------------------------
// Panics anywhere but on a test's own thread (the server's actors, its
// writer and blocking threads, the proxy) fail the tests.
// ---------------------------------------------------------------------------

/// The tests of this file: their threads are the ones whose panics are
/// failed assertions rather than faults of the server.
const TESTS: &[&str] = &[
    "sqlite_locked_sends_are_unavailable_then_resume",
    "postgres_down_sends_are_unavailable_then_resume",
];

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every panic outside the tests' own threads, then reports it as
/// usual.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>");
            if !TESTS.contains(&name) {
                if let Ok(mut p) = PANICS.lock() {
                    p.push(format!("thread {name}: {info}"));
                }
            }
            previous(info);
        }));
    });
}

fn assert_no_panics() {
    let p = PANICS.lock().map(|p| p.clone()).unwrap_or_default();
    assert!(p.is_empty(), "panics outside the test: {p:#?}");
}

// ---------------------------------------------------------------------------
// Requests with their own deadline.
// ---------------------------------------------------------------------------

/// A logged-in client and the events it received while waiting for
/// replies.
struct Peer {
    c: Client,
    events: Vec<Value>,
    next: u64,
}

impl Peer {
    /// Registers `name` if needed and logs in on a new connection.
    async fn login(srv: &TestServer, name: &str) -> Peer {
        Peer {
            c: srv.user(name).await,
            events: Vec::new(),
            next: 0,
        }
    }

    fn name(&self) -> &str {
        self.c.user.as_deref().unwrap_or("?")
    }

    /// Sends every frame at once (ids `r-<n>`), then waits up to `within`
    /// for all the replies; returns them in the order of `frames`, each
    /// with how long it took. Panics, saying how long it waited, when one
    /// does not come: a hung server fails the test instead of blocking it.
    async fn pipeline(&mut self, frames: Vec<Value>, within: Duration) -> Vec<(Value, Duration)> {
        let start = Instant::now();
        let mut ids = Vec::with_capacity(frames.len());
        for mut f in frames {
            self.next += 1;
            let id = format!("r-{}", self.next);
            f["id"] = json!(id);
            ids.push(id);
            self.c.send(f).await;
        }
        let mut replies: Vec<Option<(Value, Duration)>> = vec![None; ids.len()];
        while replies.iter().any(Option::is_none) {
            let left = within.saturating_sub(start.elapsed());
            let Some(v) = self.c.try_recv(left).await else {
                let missing: Vec<&String> = ids
                    .iter()
                    .zip(&replies)
                    .filter(|(_, r)| r.is_none())
                    .map(|(id, _)| id)
                    .collect();
                panic!("{}: no reply to {missing:?} within {within:?}", self.name());
            };
            let slot = ids.iter().position(|id| v["id"] == id.as_str());
            match slot {
                Some(i) if matches!(v["type"].as_str(), Some("ok" | "error" | "pong")) => {
                    assert!(replies[i].is_none(), "two replies to {}: {v}", ids[i]);
                    replies[i] = Some((v, start.elapsed()));
                }
                _ => self.events.push(v),
            }
        }
        replies.into_iter().flatten().collect()
    }

    /// One request, answered within `within`.
    async fn ask(&mut self, frame: Value, within: Duration) -> (Value, Duration) {
        let mut r = self.pipeline(vec![frame], within).await;
        r.remove(0)
    }

    /// `ping` is answered at once, whatever the database does.
    async fn ping(&mut self) {
        let (r, took) = self.ask(json!({"type":"ping"}), WAIT).await;
        assert_eq!(r["type"], "pong", "{r}");
        assert!(took < Duration::from_millis(500), "pong after {took:?}");
    }

    /// Every `msg` of `conv` received so far (events, then whatever
    /// arrives within `ms` milliseconds), as (seq, body).
    async fn received(&mut self, conv: &str, ms: u64) -> Vec<(u64, String)> {
        let late = self.c.drain(ms).await;
        self.events.extend(late);
        self.events
            .iter()
            .filter(|v| v["type"] == "msg" && v["conv"] == conv)
            .map(seq_body)
            .collect()
    }

    /// The whole stored history of `conv`, as (seq, body).
    async fn history(&mut self, conv: &str) -> Vec<(u64, String)> {
        let (r, _) = self
            .ask(json!({"type":"history","conv":conv,"limit":200}), WAIT)
            .await;
        assert_eq!(r["type"], "ok", "history: {r}");
        assert_eq!(r["more"], false, "history: {r}");
        page(&r)
    }
}

fn seq_body(v: &Value) -> (u64, String) {
    let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {v}"));
    let body = v["body"].as_str().unwrap_or_else(|| panic!("no body: {v}"));
    (seq, body.to_owned())
}

/// The messages of a `history` page, as (seq, body).
fn page(r: &Value) -> Vec<(u64, String)> {
    r["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("history without messages: {r}"))
        .iter()
        .map(seq_body)
        .collect()
}

/// An answer given while the database was failing: `unavailable`, in time.
fn assert_refused(what: &str, r: &Value, took: Duration) {
    assert_eq!(r["type"], "error", "{what} was answered while down: {r}");
    assert_eq!(r["code"], "unavailable", "{what}: {r}");
    assert!(r["message"].is_string(), "{what}: {r}");
    assert!(
        took <= FAULT_ANSWER,
        "{what} refused only after {took:?} (at most {FAULT_ANSWER:?})"
    );
}

// ---------------------------------------------------------------------------
// One conversation's sends, and what the sender was told.
// ---------------------------------------------------------------------------

/// A direct conversation seen from its sender: every `ok` (seq, body),
/// and the bodies answered `unavailable`. Each body is sent with a
/// `client_id` of its own, so a retry is recognised.
struct Ledger {
    to: String,
    conv: String,
    acked: Vec<(u64, String)>,
    refused: Vec<String>,
}

impl Ledger {
    fn new(from: &str, to: &str) -> Ledger {
        let (a, b) = if from < to { (from, to) } else { (to, from) };
        Ledger {
            to: to.to_owned(),
            conv: format!("dm:{a}:{b}"),
            acked: Vec::new(),
            refused: Vec::new(),
        }
    }

    fn send(&self, body: &str) -> Value {
        json!({"type":"msg.send","to":self.to,"body":body,"client_id":format!("cid-{body}")})
    }

    /// Sends `bodies` at once while the database is failing: every one
    /// must be refused with `unavailable`, in time. Returns the slowest.
    async fn refused(&mut self, from: &mut Peer, bodies: &[&str]) -> Duration {
        let frames = bodies.iter().map(|b| self.send(b)).collect();
        let replies = from.pipeline(frames, FAULT_ANSWER).await;
        let mut slowest = Duration::ZERO;
        for (body, (r, took)) in bodies.iter().zip(replies) {
            assert_refused(&format!("send {body:?}"), &r, took);
            self.refused.push((*body).to_owned());
            slowest = slowest.max(took);
        }
        slowest
    }

    /// A send that must succeed now.
    async fn acked(&mut self, from: &mut Peer, body: &str) {
        let (r, _) = from.ask(self.send(body), WAIT).await;
        assert_eq!(r["type"], "ok", "{body}: {r}");
        self.note_ok(body, &r);
    }

    fn note_ok(&mut self, body: &str, r: &Value) {
        assert_eq!(r["conv"], self.conv.as_str(), "{r}");
        let seq = r["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {r}"));
        self.acked.push((seq, body.to_owned()));
    }

    /// Retries the refused `body` with its `client_id` until it is `ok`;
    /// every answer meanwhile must be `unavailable`. Returns how long it
    /// took.
    async fn retried(&mut self, from: &mut Peer, body: &str) -> Duration {
        let start = Instant::now();
        loop {
            let (r, _) = from.ask(self.send(body), FAULT_ANSWER).await;
            if r["type"] == "ok" {
                self.note_ok(body, &r);
                return start.elapsed();
            }
            assert_eq!(r["code"], "unavailable", "{body}: {r}");
            assert!(
                start.elapsed() < RECOVERY,
                "sends still fail {:?} after the database came back: {r}",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `stored` is exactly what was acknowledged: every `ok` with its seq,
    /// seqs without holes, and nothing refused unless a retry of it was
    /// acknowledged (then once).
    fn check(&self, stored: &[(u64, String)], what: &str) {
        let mut acked = self.acked.clone();
        acked.sort();
        assert_eq!(
            stored,
            acked.as_slice(),
            "{what} ({}) is not what was acknowledged",
            self.conv
        );
        for (i, (seq, _)) in stored.iter().enumerate() {
            assert_eq!(*seq, i as u64 + 1, "{what}: seqs have a hole: {stored:?}");
        }
        for body in &self.refused {
            let n = stored.iter().filter(|(_, b)| b == body).count();
            let retried = self.acked.iter().any(|(_, b)| b == body);
            assert_eq!(
                n,
                usize::from(retried),
                "{what}: refused {body:?} is there {n} times"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The scenario both stores go through.
// ---------------------------------------------------------------------------

/// Something done to the database from outside the server.
trait Fault {
    /// The database stops taking writes; returns once it has.
    async fn begin(&mut self);
    /// The database is back.
    async fn end(&mut self);
    /// Whether reads keep working meanwhile (SQLite's WAL readers do).
    fn reads_survive(&self) -> bool;
}

/// Who talks during the outage: two conversations, and users who were
/// about to log in.
struct Cast {
    alice: Peer,
    bob: Peer,
    carol: Peer,
    dave: Peer,
    ab: Ledger,
    cd: Ledger,
    /// Connected, not logged in: they try while the database is failing.
    latecomers: Vec<Client>,
}

impl Cast {
    async fn meet(srv: &TestServer) -> Cast {
        let mut alice = Peer::login(srv, "alice").await;
        let mut bob = Peer::login(srv, "bob").await;
        srv.befriend(&mut alice.c, &mut bob.c).await;
        let mut carol = Peer::login(srv, "carol").await;
        let mut dave = Peer::login(srv, "dave").await;
        srv.befriend(&mut carol.c, &mut dave.c).await;
        let mut latecomers = Vec::new();
        for i in 0..LATECOMERS {
            // Registered on the connection that will log in: a connection
            // closed now would hold up the server's shutdown for a while.
            let mut c = srv.client().await;
            c.ok(json!({"type":"register","username":format!("late{i}"),"password":PASSWORD}))
                .await;
            latecomers.push(c);
        }
        Cast {
            alice,
            bob,
            carol,
            dave,
            ab: Ledger::new("alice", "bob"),
            cd: Ledger::new("carol", "dave"),
            latecomers,
        }
    }

    /// Bob and Dave were told of exactly the acknowledged messages.
    async fn check_delivered(&mut self) {
        let told = self.bob.received(&self.ab.conv, 300).await;
        self.ab.check(&told, "what bob received");
        let told = self.dave.received(&self.cd.conv, 0).await;
        self.cd.check(&told, "what dave received");
    }

    /// The store holds exactly what was acknowledged, read back by the
    /// receivers.
    async fn check_stored(&mut self, what: &str) {
        let stored = self.bob.history(&self.ab.conv).await;
        self.ab.check(&stored, what);
        let stored = self.dave.history(&self.cd.conv).await;
        self.cd.check(&stored, what);
    }
}

/// The outage, from the clients' side: sends before, during and after
/// `fault`, checked as they go; returns the cast for the checks of what
/// was stored.
async fn outage(srv: &TestServer, fault: &mut impl Fault, store: &str) -> Cast {
    let mut cast = Cast::meet(srv).await;
    let Cast {
        alice,
        bob,
        carol,
        dave: _,
        ab,
        cd,
        latecomers,
    } = &mut cast;
    ab.acked(alice, "before-1").await;
    ab.acked(alice, "before-2").await;
    cd.acked(carol, "c-before-1").await;

    fault.begin().await;
    let down = Instant::now();
    // Logins store a token: their writes wait on the database beside the
    // sends.
    for (i, c) in latecomers.iter_mut().enumerate() {
        c.send(json!({"type":"login","id":"late","username":format!("late{i}"),"password":PASSWORD,"device":"d"}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Two conversations at once, each with sends queued behind the first.
    let (alice_wait, carol_wait) =
        tokio::join!(ab.refused(alice, &["down-1", "down-2", "down-3"]), async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            cd.refused(carol, &["c-down-1", "c-down-2"]).await
        });
    for (i, c) in latecomers.iter_mut().enumerate() {
        let left = FAULT_ANSWER.saturating_sub(down.elapsed());
        let r = c
            .try_recv(left)
            .await
            .unwrap_or_else(|| panic!("late{i}: no answer to login within {FAULT_ANSWER:?}"));
        assert_refused(&format!("late{i}'s login"), &r, down.elapsed());
    }
    // A cursor is written by the same writer: no false `ok` either.
    let ack = json!({"type":"msg.ack","conv":ab.conv,"seq":2,"read":true});
    let (r, took) = bob.ask(ack, FAULT_ANSWER).await;
    assert_refused("msg.ack", &r, took);
    let history = json!({"type":"history","conv":ab.conv});
    let (r, read) = bob.ask(history, FAULT_ANSWER).await;
    if r["type"] == "ok" || fault.reads_survive() {
        assert_eq!(r["type"], "ok", "history while down: {r}");
        assert_eq!(page(&r), ab.acked, "history while down");
    } else {
        assert_refused("history", &r, read);
    }
    alice.ping().await;
    eprintln!(
        "{store}, down: sends refused within {alice_wait:?} (alice) and {carol_wait:?} (carol), \
         ack within {took:?}, history within {read:?}; down for {:?}",
        down.elapsed()
    );

    fault.end().await;
    let back = ab.retried(alice, "down-1").await;
    cd.retried(carol, "c-down-1").await;
    ab.acked(alice, "after-1").await;
    cd.acked(carol, "c-after-1").await;
    eprintln!("{store}: sends succeed again {back:?} after the database is back");
    cast.check_delivered().await;
    cast
}

/// A user who could not log in during the outage logs in now; every
/// session answers `ping`. Returns the new session: a connection closed
/// just before the server stops holds up its shutdown for seconds.
async fn still_healthy(srv: &TestServer, cast: &mut Cast) -> Peer {
    let mut late = Peer::login(srv, "late0").await;
    late.ping().await;
    for p in [
        &mut cast.alice,
        &mut cast.bob,
        &mut cast.carol,
        &mut cast.dave,
    ] {
        p.ping().await;
    }
    late
}

// ---------------------------------------------------------------------------
// SQLite: another connection holds the write lock.
// ---------------------------------------------------------------------------

/// A second connection to a SQLite database holding its write lock
/// (`BEGIN EXCLUSIVE`), as another process on the same file would.
struct WriteLock {
    db: PathBuf,
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteLock {
    fn on(db: PathBuf) -> WriteLock {
        WriteLock {
            db,
            release: None,
            thread: None,
        }
    }

    /// Takes the lock on `db`; returns once it is held.
    fn take(db: &Path) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let url = db.to_str().expect("UTF-8 path").to_owned();
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut c = SqliteConnection::establish(&url).expect("second connection");
            // Waits for a commit of the server in progress, if any.
            c.batch_execute("PRAGMA busy_timeout = 10000; BEGIN EXCLUSIVE;")
                .expect("take the write lock");
            held_tx.send(()).expect("report the lock");
            let _ = released.recv();
            c.batch_execute("ROLLBACK;")
                .expect("release the write lock");
        });
        held.recv_timeout(WAIT).expect("write lock not taken");
        (release, thread)
    }

    fn stop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            t.join().expect("lock thread");
        }
    }
}

impl Fault for WriteLock {
    async fn begin(&mut self) {
        let db = self.db.clone();
        let (release, thread) = tokio::task::spawn_blocking(move || WriteLock::take(&db))
            .await
            .expect("lock thread");
        self.release = Some(release);
        self.thread = Some(thread);
    }

    async fn end(&mut self) {
        self.stop();
    }

    fn reads_survive(&self) -> bool {
        true
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_sends_are_unavailable_then_resume() {
    watch_panics();
    let options = StoreOptions {
        busy_timeout: TIMEOUT,
        ..TestStore::sqlite_options()
    };
    let data = TestStore::sqlite_with(options);
    let mut lock = WriteLock::on(data.dir().expect("SQLite directory").join("im.db"));
    let srv = TestServer::builder().start_on(data);
    let mut cast = outage(&srv, &mut lock, "sqlite").await;
    cast.check_stored("history").await;
    let _late = still_healthy(&srv, &mut cast).await;
    assert_no_panics();

    // What a restarted process finds is exactly what was acknowledged.
    let srv = srv.restart();
    let mut bob = Peer::login(&srv, "bob").await;
    let mut dave = Peer::login(&srv, "dave").await;
    let stored = bob.history(&cast.ab.conv).await;
    cast.ab.check(&stored, "history after a restart");
    let stored = dave.history(&cast.cd.conv).await;
    cast.cd.check(&stored, "history after a restart");
    let mut late = Peer::login(&srv, "late1").await;
    late.ping().await;
    assert_no_panics();
    drop(srv);
}

// ---------------------------------------------------------------------------
// PostgreSQL: a proxy between the server and the database goes down.
// ---------------------------------------------------------------------------

/// A TCP proxy in front of PostgreSQL that can "stop the database": drop
/// every connection through it and refuse new ones, until resumed.
struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
    /// Connections accepted and not yet closed.
    open: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

/// Counts a proxied connection as open until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`) on a port of its own.
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let (up, _) = watch::channel(true);
        let open = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(Self::accept(
            listener,
            upstream,
            up.subscribe(),
            open.clone(),
        ));
        Proxy {
            port,
            up,
            open,
            accept,
        }
    }

    async fn accept(
        listener: TcpListener,
        upstream: String,
        up: watch::Receiver<bool>,
        open: Arc<AtomicUsize>,
    ) {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            // Counted before looking at the state, so `begin` cannot miss
            // a connection accepted just before it.
            open.fetch_add(1, Ordering::SeqCst);
            let guard = Open(open.clone());
            if !*up.borrow() {
                continue; // refused: closed at once
            }
            let (mut down, upstream) = (up.clone(), upstream.clone());
            tokio::spawn(async move {
                let _guard = guard;
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = down.wait_for(|up| !*up) => {}
                }
            });
        }
    }
}

impl Fault for Proxy {
    /// Returns once every connection is closed.
    async fn begin(&mut self) {
        self.up.send_replace(false);
        let deadline = Instant::now() + WAIT;
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "proxy connections still open");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn end(&mut self) {
        self.up.send_replace(true);
    }

    fn reads_survive(&self) -> bool {
        false
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.up.send_replace(false);
    }
}

/// Splits a `postgres://[user@]host[:port]/db...` URL into the server's
/// `host:port` and the same URL pointed at `127.0.0.1:<proxy>`.
fn via_proxy(url: &str, proxy: u16) -> (String, String) {
    let bad = || panic!("IM_TEST_POSTGRES_URL must look like postgres://user@host:port/db: {url}");
    let (scheme, rest) = url.split_once("://").unwrap_or_else(bad);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    if host.is_empty() || host.starts_with('[') {
        bad();
    }
    let upstream = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (
        upstream,
        format!("{scheme}://{user}127.0.0.1:{proxy}{path}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_sends_are_unavailable_then_resume() {
    watch_panics();
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = Schema::new(&url, "im_dbfail");
    let (upstream, _) = via_proxy(&url, 0);
    let mut proxy = Proxy::start(upstream).await;
    let (_, proxied) = via_proxy(&url, proxy.port);
    let options = StoreOptions {
        pool_timeout: TIMEOUT,
        pool_size: 4,
        pg_schema: Some(schema.name.clone()),
        ..StoreOptions::default()
    };
    let store = tokio::task::spawn_blocking(move || im_store::open(&proxied, &options))
        .await
        .expect("open thread")
        .unwrap_or_else(|e| panic!("open PostgreSQL through the proxy: {e}"));
    let srv = TestServer::builder().start_on(TestStore::from_store(store));
    let mut cast = outage(&srv, &mut proxy, "postgres").await;
    cast.check_stored("history").await;
    let late = still_healthy(&srv, &mut cast).await;
    assert_no_panics();
    drop(srv);
    drop((late, cast, proxy, schema));
}

#[test]
fn proxy_urls() {
    assert_eq!(
        via_proxy("postgres://postgres@127.0.0.1:5432/test", 7),
        (
            "127.0.0.1:5432".to_owned(),
            "postgres://postgres@127.0.0.1:7/test".to_owned()
        )
    );
    assert_eq!(
        via_proxy("postgresql://u:p@db/x?sslmode=disable", 9),
        (
            "db:5432".to_owned(),
            "postgresql://u:p@127.0.0.1:9/x?sslmode=disable".to_owned()
        )
    );
}
