//! [`TestServer`]: the core and both transports on port 0, in a thread of
//! their own (their own actix system), on the store a test chooses.
//!
//! ```no_run
//! # async fn demo() {
//! use im_tests::{StoreKind, TestServer, Transport};
//! let srv = TestServer::builder()
//!     .transport(Transport::Ws)
//!     .store(StoreKind::Sqlite)
//!     .config(|c| c.limits.max_body = 16)
//!     .start();
//! let alice = srv.user("alice").await; // over WebSocket
//! # }
//! ```
//!
//! `new_hub` is the only place the tests build the core; when the hub's
//! constructor changes, it is the one function to edit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use im_core::blob::{BlobStore, MemoryBlobStore};
use im_core::cluster::Bus;
use im_core::{Config, Hub, MemoryStore, Store};
use im_store::{FsBlobStore, StoreOptions, Synchronous};
use tokio::sync::{mpsc, oneshot, watch};

use crate::client::{Client, WAIT};

/// Which transport a server's [`TestServer::client`]s speak. A test server
/// always serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Newline-delimited JSON over TCP.
    Tcp,
    /// One JSON frame per WebSocket text message at `/ws`.
    Ws,
}

/// Where a test server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// [`MemoryStore`], file bytes in memory.
    Memory,
    /// SQLite through `im_store::open` in a temporary directory of the
    /// server's own, file bytes in an [`FsBlobStore`] beside it: what the
    /// example server runs by default.
    Sqlite,
}

/// A change to the test configuration; kept so a restart reapplies it.
type Tweak = Arc<dyn Fn(&mut Config) + Send + Sync>;

/// The one place the tests build the core: the test defaults (cheap
/// bcrypt), then the test's changes, then the hub on `data`.
fn new_hub(tweaks: &[Tweak], data: &TestStore, bus: Option<Arc<dyn Bus>>) -> Hub {
    let mut config = Config::default();
    config.auth.bcrypt_cost = 4;
    // Tests pipeline thousands of requests and open many connections from
    // one address; the tests of these limits set them back.
    config.limits.frames_per_sec = 1_000_000;
    config.limits.frames_burst = 1_000_000;
    config.limits.max_connections_per_peer = 100_000;
    for tweak in tweaks {
        tweak(&mut config);
    }
    let builder = Hub::builder(data.store.clone(), data.blobs.clone()).config(config);
    match bus {
        Some(bus) => builder.bus(bus),
        None => builder,
    }
    .start()
}

/// An opened store (and, for SQLite, its directory and blob store). Keep
/// it as long as a hub uses it: the directory goes when the last clone
/// does.
#[derive(Clone)]
pub struct TestStore {
    /// The store the hub runs on.
    pub store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    dir: Option<Arc<tempfile::TempDir>>,
    /// How a SQLite store is opened, and opened again by a restart.
    options: StoreOptions,
}

impl TestStore {
    /// A new, empty store of `kind`.
    pub fn open(kind: StoreKind) -> TestStore {
        match kind {
            StoreKind::Memory => Self::from_store(Arc::new(MemoryStore::new())),
            StoreKind::Sqlite => Self::sqlite_with(Self::sqlite_options()),
        }
    }

    /// The options [`StoreKind::Sqlite`] opens with; a test changing one
    /// starts from these.
    pub fn sqlite_options() -> StoreOptions {
        // synchronous=NORMAL: WAL commits skip the fsync, so the suite
        // spends its time on the protocol rather than on the disk. What
        // FULL buys (commits survive power loss) cannot be observed from
        // here anyway; durability across a kill -9 of the real binary is
        // tested in `tests/durability.rs`.
        StoreOptions {
            synchronous: Synchronous::Normal,
            ..StoreOptions::default()
        }
    }

    /// A new SQLite store in a temporary directory of its own, opened
    /// (and opened again by a restart) with `options`.
    pub fn sqlite_with(options: StoreOptions) -> TestStore {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::open_sqlite(dir, options)
    }

    /// A store the test opened itself (PostgreSQL, say), file bytes in
    /// memory. A restart keeps using it as it is, like a memory store.
    pub fn from_store(store: Arc<dyn Store>) -> TestStore {
        TestStore {
            store,
            blobs: Arc::new(MemoryBlobStore::new()),
            dir: None,
            options: StoreOptions::default(),
        }
    }

    /// `sqlite://<dir>/im.db` and `<dir>/files`, as the example server
    /// lays them out.
    fn open_sqlite(dir: Arc<tempfile::TempDir>, options: StoreOptions) -> TestStore {
        let url = format!("sqlite://{}", dir.path().join("im.db").display());
        let store = im_store::open(&url, &options).unwrap_or_else(|e| panic!("{url}: {e}"));
        let blobs = FsBlobStore::open(dir.path().join("files")).expect("files dir");
        TestStore {
            store,
            blobs: Arc::new(blobs),
            dir: Some(dir),
            options,
        }
    }

    /// The same data as a restarted process would find it: the memory
    /// store as it is, the SQLite database opened again.
    fn reopen(&self) -> TestStore {
        match &self.dir {
            Some(dir) => Self::open_sqlite(dir.clone(), self.options.clone()),
            None => self.clone(),
        }
    }

    /// The directory of a SQLite store.
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_path_buf())
    }
}

/// Chooses a [`TestServer`]'s transport, store and configuration.
#[derive(Clone)]
pub struct TestServerBuilder {
    transport: Transport,
    store: StoreKind,
    tweaks: Vec<Tweak>,
    bus: Option<Arc<dyn Bus>>,
}

impl TestServerBuilder {
    /// The transport [`TestServer::client`] connects with (default TCP).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The store (default [`StoreKind::Memory`]).
    pub fn store(mut self, kind: StoreKind) -> Self {
        self.store = kind;
        self
    }

    /// Makes the server one node of a cluster on `bus`; its
    /// [`TestServer::sibling`]s join the same cluster.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Changes the test configuration (cheap bcrypt, otherwise the
    /// defaults); several calls apply in order.
    pub fn config(mut self, f: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        self.tweaks.push(Arc::new(f));
        self
    }

    /// Starts the server; returns once it listens.
    pub fn start(self) -> TestServer {
        let data = TestStore::open(self.store);
        TestServer::spawn(self.transport, self.tweaks, data, self.bus)
    }

    /// Starts the server on `data` (a store the test opened itself)
    /// instead of a new store of the chosen kind.
    pub fn start_on(self, data: TestStore) -> TestServer {
        TestServer::spawn(self.transport, self.tweaks, data, self.bus)
    }

    /// Only the core, for a test that serves it itself. Call it inside a
    /// running actix system; keep the [`TestStore`] as long as the hub.
    pub fn hub(self) -> (Hub, TestStore) {
        let data = TestStore::open(self.store);
        (new_hub(&self.tweaks, &data, self.bus), data)
    }

    /// The core served the test's own way, in a thread with its own actix
    /// system: `serve` gets the hub, a listener on port 0 and the signal
    /// [`OwnServer::join`] fires, and does not shut the hub down.
    pub fn serve_own<F, Fut>(self, serve: F) -> OwnServer
    where
        F: FnOnce(Hub, std::net::TcpListener, StopSignal) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let (hub, _store) = self.hub();
                let signal = Box::pin(async {
                    let _ = stop_rx.await;
                });
                serve(hub, listener, signal).await;
            });
        });
        OwnServer {
            addr,
            stop: Some(stop),
            thread,
        }
    }
}

/// What [`TestServerBuilder::serve_own`] hands its server to stop on.
pub type StopSignal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A server a test serves its own way ([`TestServerBuilder::serve_own`]).
pub struct OwnServer {
    /// The address its listener is bound to.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: std::thread::JoinHandle<()>,
}

impl OwnServer {
    /// Fires the stop signal.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Stops the server and waits for its thread; panics if the server
    /// did.
    pub fn join(mut self) {
        self.stop();
        self.thread.join().expect("the server panicked");
    }
}

/// A running server. Dropping it shuts the server down.
pub struct TestServer {
    /// The TCP address clients connect to.
    pub addr: SocketAddr,
    /// The HTTP/WebSocket address (`ws://{http}/ws`).
    pub http: SocketAddr,
    /// The transport [`TestServer::client`] connects with.
    pub transport: Transport,
    tweaks: Vec<Tweak>,
    bus: Option<Arc<dyn Bus>>,
    data: TestStore,
    stop: Option<oneshot::Sender<()>>,
    admin: mpsc::UnboundedSender<AdminOp>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Operator requests, run inside the server's thread.
enum AdminOp {
    Suspend(String, oneshot::Sender<Result<(), String>>),
    Census(oneshot::Sender<im_core::hub::Census>),
}

impl TestServer {
    /// Chooses transport, store and configuration; see the module docs.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            transport: Transport::Tcp,
            store: StoreKind::Memory,
            tweaks: Vec::new(),
            bus: None,
        }
    }

    /// A server with the defaults: TCP clients, memory store.
    pub fn start() -> TestServer {
        Self::builder().start()
    }

    fn spawn(
        transport: Transport,
        tweaks: Vec<Tweak>,
        data: TestStore,
        bus: Option<Arc<dyn Bus>>,
    ) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (admin, admin_rx) = mpsc::unbounded_channel::<AdminOp>();
        let (t, d, b) = (tweaks.clone(), data.clone(), bus.clone());
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let hub = new_hub(&t, &d, b);
                actix_rt::spawn(run_admin(hub.clone(), admin_rx));
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http");
                let addrs = (tcp.local_addr(), http.local_addr());
                addr_tx
                    .send((addrs.0.expect("addr"), addrs.1.expect("addr")))
                    .expect("send addr");
                serve(hub, tcp, http, stop_rx).await;
            });
        });
        let (addr, http) = addr_rx.recv_timeout(WAIT).expect("server did not start");
        TestServer {
            addr,
            http,
            transport,
            tweaks,
            bus,
            data,
            stop: Some(stop),
            admin,
            thread: Some(thread),
        }
    }

    /// A second server on this one's data, as another process sharing the
    /// database would be (SQLite opened again, a memory store shared), with
    /// the same configuration.
    pub fn sibling(&self) -> TestServer {
        Self::spawn(
            self.transport,
            self.tweaks.clone(),
            self.data.reopen(),
            self.bus.clone(),
        )
    }

    /// Shuts this server down and starts it again on the same data and
    /// configuration (new ports), as a process restart would: the SQLite
    /// database is opened again; a memory store is kept as it is.
    pub fn restart(mut self) -> TestServer {
        let (transport, tweaks, bus) = (self.transport, self.tweaks.clone(), self.bus.clone());
        self.shut_down();
        let data = self.data.reopen();
        drop(self);
        Self::spawn(transport, tweaks, data, bus)
    }

    /// The data this server runs on.
    pub fn data(&self) -> &TestStore {
        &self.data
    }

    /// How many sessions, user actors and conversation actors are live.
    pub async fn census(&self) -> im_core::hub::Census {
        let (tx, rx) = oneshot::channel();
        self.admin.send(AdminOp::Census(tx)).expect("server gone");
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("census timed out")
            .expect("server gone")
    }

    /// Waits (up to 10 s) until the census satisfies `ok`; returns it.
    pub async fn census_until(
        &self,
        ok: impl Fn(&im_core::hub::Census) -> bool,
    ) -> im_core::hub::Census {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let c = self.census().await;
            if ok(&c) || tokio::time::Instant::now() > deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Operator action: suspends `name` through the hub (revokes its tokens
    /// and closes its sessions with `account_suspended`).
    pub async fn suspend(&self, name: &str) {
        let (tx, rx) = oneshot::channel();
        self.admin
            .send(AdminOp::Suspend(name.to_owned(), tx))
            .expect("server gone");
        let r = tokio::time::timeout(WAIT, rx)
            .await
            .expect("suspend timed out")
            .expect("server gone");
        r.unwrap_or_else(|e| panic!("suspend {name}: {e}"));
    }

    /// A new connection over this server's transport, `hello` already
    /// read and checked.
    pub async fn client(&self) -> Client {
        match self.transport {
            Transport::Tcp => Client::connect(self.addr).await,
            Transport::Ws => Client::connect_ws(self.http).await,
        }
    }

    fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

async fn run_admin(hub: Hub, mut rx: mpsc::UnboundedReceiver<AdminOp>) {
    while let Some(op) = rx.recv().await {
        match op {
            AdminOp::Suspend(name, done) => {
                let r = hub.suspend(&name).await.map_err(|e| format!("{e:?}"));
                let _ = done.send(r);
            }
            AdminOp::Census(done) => {
                let _ = done.send(hub.census());
            }
        }
    }
}

/// Both transports until `stop` fires, then the hub's shutdown.
async fn serve(
    hub: Hub,
    tcp: tokio::net::TcpListener,
    http: std::net::TcpListener,
    stop: oneshot::Receiver<()>,
) {
    let (stop_all, stopped) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let ws_config = im_transport_ws::WsConfig {
        workers: 1,
        shutdown_timeout_secs: 1,
        web_client: Some(im_transport_ws::WebClient::embedded()),
        metrics: None,
        tls: None,
    };
    let h = hub.clone();
    let stopper = async move {
        let _ = stop.await;
        // The example server's order: the hub closes every session with
        // `closing` `shutdown` first, then the listeners stop. The other way
        // round, a connection may end its session before the hub tells it why.
        h.shutdown(Duration::from_secs(1)).await;
        let _ = stop_all.send(true);
    };
    let _ = tokio::join!(
        im_transport_tcp::serve(tcp, hub.clone(), wait(stopped.clone())),
        im_transport_ws::serve(http, hub, ws_config, wait(stopped)),
        stopper,
    );
}
