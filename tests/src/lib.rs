//! The one helper every end-to-end test uses: a real server on port 0 in
//! its own thread (its own actix system), and a client speaking the real
//! protocol over a real TCP socket.
//!
//! Time-dependent behaviour uses short configured limits, never long
//! sleeps; every wait has a deadline so a broken server fails a test
//! instead of hanging it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use im_core::{Config, Hub, MemoryStore, Store};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The password every test user gets.
pub const PASSWORD: &str = "password123";
/// How long a test waits for a frame that must come.
pub const WAIT: Duration = Duration::from_secs(10);

/// A config suited to tests: cheap bcrypt.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.auth.bcrypt_cost = 4;
    c
}

/// A running server. Dropping it shuts the server down.
pub struct TestServer {
    /// The TCP address clients connect to.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    admin: tokio::sync::mpsc::UnboundedSender<AdminOp>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// A server with [`test_config`] on a memory store.
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// A server with [`test_config`] changed by `f`.
    pub fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let mut c = test_config();
        f(&mut c);
        Self::start_on(c, Arc::new(MemoryStore::new()))
    }

    /// A server on the given store and config.
    pub fn start_on(config: Config, store: Arc<dyn Store>) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (admin_tx, mut admin_rx) = tokio::sync::mpsc::unbounded_channel::<AdminOp>();
        let thread = std::thread::spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let hub = Hub::new(config, store);
                let admin_hub = hub.clone();
                actix_rt::spawn(async move {
                    while let Some(op) = admin_rx.recv().await {
                        match op {
                            AdminOp::Suspend(name, done) => {
                                let r =
                                    admin_hub.suspend(&name).await.map_err(|e| format!("{e:?}"));
                                let _ = done.send(r);
                            }
                        }
                    }
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let _ = im_transport_tcp::serve(listener, hub.clone(), async {
                    let _ = stop_rx.await;
                })
                .await;
                hub.shutdown(Duration::from_secs(1)).await;
            });
        });
        let addr = addr_rx.recv_timeout(WAIT).expect("server did not start");
        TestServer {
            addr,
            stop: Some(stop_tx),
            admin: admin_tx,
            thread: Some(thread),
        }
    }

    /// Operator action: suspends `name` through the hub (revokes its tokens
    /// and closes its sessions with `account_suspended`).
    pub async fn suspend(&self, name: &str) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.admin
            .send(AdminOp::Suspend(name.to_owned(), tx))
            .expect("server gone");
        let r = tokio::time::timeout(WAIT, rx)
            .await
            .expect("suspend timed out")
            .expect("server gone");
        r.unwrap_or_else(|e| panic!("suspend {name}: {e}"));
    }

    /// Registers `name` with [`PASSWORD`] on a throwaway connection without
    /// logging in (the user has never been online).
    pub async fn register(&self, name: &str) {
        let mut c = self.client().await;
        c.ok(json!({"type":"register","username":name,"password":PASSWORD}))
            .await;
        c.close().await;
    }

    /// A new connection, `hello` already read and checked.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Registers `name` (if needed) and logs in on a new connection; the
    /// login's roster and replay are in [`Client::login_frames`].
    pub async fn user(&self, name: &str) -> Client {
        self.user_on(name, "default").await
    }

    /// Like [`TestServer::user`] on a named device.
    pub async fn user_on(&self, name: &str, device: &str) -> Client {
        let mut c = self.client().await;
        let r = c
            .request(json!({"type":"register","username":name,"password":PASSWORD}))
            .await;
        assert!(
            r["type"] == "ok" || r["code"] == "username_taken",
            "register {name}: {r}"
        );
        c.login_device(name, PASSWORD, device).await;
        c
    }

    /// Makes `a` and `b` mutual contacts and consumes the resulting events
    /// (`contact.request`, `contact.added`, `presence`) on both.
    pub async fn befriend(&self, a: &mut Client, b: &mut Client) {
        let bname = b.user.clone().expect("b logged in");
        let aname = a.user.clone().expect("a logged in");
        a.ok(json!({"type":"contact.add","user":bname})).await;
        let req = b.expect("contact.request").await;
        assert_eq!(req["from"], aname.as_str());
        b.ok(json!({"type":"contact.accept","user":aname})).await;
        for c in [&mut *a, &mut *b] {
            c.expect("contact.added").await;
            c.expect("presence").await;
        }
    }
}

/// Operator requests run inside the server's thread.
enum AdminOp {
    Suspend(String, tokio::sync::oneshot::Sender<Result<(), String>>),
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a login returned.
#[derive(Debug, Default, Clone)]
pub struct LoginFrames {
    /// The `ok` reply.
    pub ok: Value,
    /// The `roster` frame.
    pub roster: Value,
    /// Every frame between `roster` and `synced` (`msg` and `gap`).
    pub replay: Vec<Value>,
}

/// A protocol client over TCP.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: i64,
    /// Frames read while waiting for something else, in arrival order.
    pending: VecDeque<Value>,
    /// The logged-in user.
    pub user: Option<String>,
    /// The token from the last login.
    pub token: Option<String>,
    /// Frames of the last login.
    pub login_frames: LoginFrames,
    /// The `hello` frame the server sent on connect.
    pub hello: Value,
}

impl Client {
    /// Connects and reads `hello`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = s.into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            pending: VecDeque::new(),
            user: None,
            token: None,
            login_frames: LoginFrames::default(),
            hello: Value::Null,
        };
        let hello = c.recv().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["protocol"], 1);
        c.hello = hello;
        c
    }

    /// Writes raw bytes (a line terminator is not added).
    pub async fn send_bytes(&mut self, b: &[u8]) {
        self.writer.write_all(b).await.expect("write");
    }

    /// Writes one line.
    pub async fn send_line(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.push(b'\n');
        self.send_bytes(&b).await;
    }

    /// Writes one frame.
    pub async fn send(&mut self, v: Value) {
        self.send_line(&v.to_string()).await;
    }

    async fn read_frame(&mut self, wait: Duration) -> Option<Option<Value>> {
        let mut line = String::new();
        match tokio::time::timeout(wait, self.reader.read_line(&mut line)).await {
            Err(_) => None,
            Ok(Ok(0)) | Ok(Err(_)) => Some(None),
            Ok(Ok(_)) => {
                let v: Value = serde_json::from_str(line.trim_end())
                    .unwrap_or_else(|e| panic!("server sent bad JSON {line:?}: {e}"));
                Some(Some(v))
            }
        }
    }

    /// The next frame; panics on timeout or close.
    pub async fn recv(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        match self.read_frame(WAIT).await {
            Some(Some(v)) => v,
            Some(None) => panic!("connection closed while waiting for a frame"),
            None => panic!("no frame within {WAIT:?}"),
        }
    }

    /// The next frame if one arrives within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        self.read_frame(wait).await.flatten()
    }

    /// Asserts that nothing arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        if let Some(v) = self.try_recv(Duration::from_millis(ms)).await {
            panic!("expected no frame, got {v}");
        }
    }

    /// Reads until the server closes the connection (within `wait`) and
    /// returns the frames read meanwhile; panics if it stays open.
    pub async fn expect_closed_within(&mut self, wait: Duration) -> Vec<Value> {
        let mut seen: Vec<Value> = self.pending.drain(..).collect();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Some(Some(v)) => seen.push(v),
                Some(None) => return seen,
                None => panic!("connection still open after {wait:?}; frames: {seen:?}"),
            }
        }
    }

    /// Reads until the server closes the connection.
    pub async fn expect_closed(&mut self) -> Vec<Value> {
        self.expect_closed_within(WAIT).await
    }

    /// The next frame, which must have type `ty` (events read earlier first).
    pub async fn expect(&mut self, ty: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], ty, "expected a `{ty}` frame, got {v}");
        v
    }

    /// Sends `frame` with a fresh integer `id` and returns its reply;
    /// frames arriving before the reply are kept for [`Client::recv`].
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = json!(id);
        self.send(frame).await;
        let mut skipped = Vec::new();
        let reply = loop {
            let v = match self.read_frame(WAIT).await {
                Some(Some(v)) => v,
                Some(None) => panic!("connection closed before reply {id}; frames: {skipped:?}"),
                None => panic!("no reply to request {id} within {WAIT:?}; frames: {skipped:?}"),
            };
            if v["id"] == json!(id) && matches!(v["type"].as_str(), Some("ok" | "error" | "pong")) {
                break v;
            }
            skipped.push(v);
        };
        self.pending.extend(skipped);
        reply
    }

    /// A request that must succeed; returns the `ok`.
    pub async fn ok(&mut self, frame: Value) -> Value {
        let r = self.request(frame.clone()).await;
        assert_eq!(r["type"], "ok", "{frame} -> {r}");
        r
    }

    /// A request that must fail with `code`; returns the `error`.
    pub async fn err(&mut self, frame: Value, code: &str) -> Value {
        let r = self.request(frame.clone()).await;
        assert_eq!(r["type"], "error", "{frame} -> {r}");
        assert_eq!(r["code"], code, "{frame} -> {r}");
        assert!(r["message"].is_string(), "error without message: {r}");
        r
    }

    /// Logs in with a password on device `default`.
    pub async fn login(&mut self, user: &str, password: &str) -> LoginFrames {
        self.login_device(user, password, "default").await
    }

    /// Logs in with a password on `device`, reading `ok`, `roster`, the
    /// replay and `synced`.
    pub async fn login_device(&mut self, user: &str, password: &str, device: &str) -> LoginFrames {
        let ok = self
            .ok(json!({"type":"login","username":user,"password":password,"device":device}))
            .await;
        self.after_login(ok).await
    }

    /// Logs in with a token.
    pub async fn login_token(&mut self, user: &str, token: &str) -> LoginFrames {
        let ok = self
            .ok(json!({"type":"login","username":user,"token":token}))
            .await;
        self.after_login(ok).await
    }

    async fn after_login(&mut self, ok: Value) -> LoginFrames {
        self.user = ok["user"].as_str().map(str::to_owned);
        self.token = ok["token"].as_str().map(str::to_owned);
        let roster = self.expect("roster").await;
        let mut replay = Vec::new();
        loop {
            let v = self.recv().await;
            match v["type"].as_str() {
                Some("synced") => break,
                Some("msg" | "gap") => replay.push(v),
                _ => panic!("unexpected frame during login replay: {v}"),
            }
        }
        self.login_frames = LoginFrames { ok, roster, replay };
        self.login_frames.clone()
    }

    /// Every frame that arrives until nothing has come for `ms` milliseconds.
    pub async fn drain(&mut self, ms: u64) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.try_recv(Duration::from_millis(ms)).await {
            out.push(v);
        }
        out
    }

    /// Waits for the next frame (which must have type `ty`) while sending a
    /// `ping` every 200 ms, so that a short idle timeout does not close
    /// this connection meanwhile.
    pub async fn expect_pinging(&mut self, ty: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = self.request(json!({"type":"ping"})).await;
            assert_eq!(r["type"], "pong", "{r}");
            if let Some(v) = self.try_recv(Duration::from_millis(200)).await {
                assert_eq!(v["type"], ty, "expected a `{ty}` frame, got {v}");
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{ty}` frame within {WAIT:?}"
            );
        }
    }

    /// Sends a direct message and returns the `ok`.
    pub async fn send_dm(&mut self, to: &str, body: &str) -> Value {
        self.ok(json!({"type":"msg.send","to":to,"body":body}))
            .await
    }

    /// Closes the connection from the client side.
    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}
pub mod process;
