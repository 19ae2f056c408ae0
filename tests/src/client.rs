//! [`Client`]: the protocol over a real TCP socket or WebSocket, with the
//! request helpers tests use (`request`, `ok`, `err`, logins), the user and
//! contact shortcuts on [`TestServer`], and the file helpers (uploads,
//! downloads, base64, hashes).
//!
//! Every wait has a deadline ([`WAIT`]) so a broken server fails a test
//! instead of hanging it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::server::TestServer;

/// The password every test user gets.
pub const PASSWORD: &str = "password123";
/// How long a test waits for a frame that must come.
pub const WAIT: Duration = Duration::from_secs(10);

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

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

enum Io {
    Tcp {
        reader: BufReader<OwnedReadHalf>,
        /// The start of a line whose end has not arrived yet.
        partial: Vec<u8>,
        writer: OwnedWriteHalf,
    },
    Ws(Box<Ws>),
}

/// A protocol client over TCP or WebSocket.
pub struct Client {
    io: Io,
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
    /// Connects over TCP and reads `hello`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = s.into_split();
        Self::with_io(Io::Tcp {
            reader: BufReader::new(r),
            partial: Vec::new(),
            writer: w,
        })
        .await
    }

    /// Connects over WebSocket to `ws://{http}/ws` and reads `hello`.
    pub async fn connect_ws(http: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
            .await
            .expect("websocket connect");
        Self::with_io(Io::Ws(Box::new(ws))).await
    }

    /// The raw WebSocket, for WebSocket-specific tests.
    pub fn ws(&mut self) -> &mut Ws {
        match &mut self.io {
            Io::Ws(ws) => ws,
            Io::Tcp { .. } => panic!("not a WebSocket client"),
        }
    }

    async fn with_io(io: Io) -> Client {
        let mut c = Client {
            io,
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

    /// Writes raw bytes (a line terminator is not added). Over WebSocket
    /// each `\n`-terminated line becomes one text message (and so does an
    /// unterminated last piece); bytes a text message cannot carry as the
    /// TCP transport would read them (`\r`, an empty line, invalid UTF-8)
    /// panic: such a test belongs in `tcp_only!`.
    pub async fn send_bytes(&mut self, b: &[u8]) {
        let ws = match &mut self.io {
            Io::Tcp { writer, .. } => return writer.write_all(b).await.expect("write"),
            Io::Ws(ws) => ws,
        };
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let body = b.strip_suffix(b"\n").unwrap_or(b);
        for line in body.split(|&c| c == b'\n') {
            let text = std::str::from_utf8(line)
                .ok()
                .filter(|t| !t.is_empty() && !t.contains('\r'))
                .unwrap_or_else(|| {
                    panic!("{line:?} has no WebSocket equivalent; make the test tcp_only!")
                });
            // The server may close first (e.g. after too_large).
            if ws.send(Message::text(text)).await.is_err() {
                return;
            }
        }
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

    pub async fn read_frame(&mut self, wait: Duration) -> Option<Option<Value>> {
        let (reader, partial) = match &mut self.io {
            Io::Tcp {
                reader, partial, ..
            } => (reader, partial),
            Io::Ws(ws) => return read_ws(ws, wait).await,
        };
        // `read_until` keeps what it read in `partial` when the timeout
        // cancels it, so a frame arriving in pieces is never torn.
        match tokio::time::timeout(wait, reader.read_until(b'\n', partial)).await {
            Err(_) => None,
            Ok(Ok(0)) | Ok(Err(_)) => Some(None),
            // A last line without its newline was cut off by the close (a
            // killed server): it is not a frame.
            Ok(Ok(_)) if partial.last() != Some(&b'\n') => Some(None),
            Ok(Ok(_)) => {
                let line = std::mem::take(partial);
                let v: Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!(
                        "server sent bad JSON {:?}: {e}",
                        String::from_utf8_lossy(&line)
                    )
                });
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

    /// The next frame within `wait` (`Some(Some(frame))`), or
    /// `Some(None)` once the server closed, or `None` on timeout: for
    /// tests where a close is one of the allowed outcomes.
    pub async fn recv_or_closed(&mut self, wait: Duration) -> Option<Option<Value>> {
        if let Some(v) = self.pending.pop_front() {
            return Some(Some(v));
        }
        self.read_frame(wait).await
    }

    /// Writes one frame's raw bytes, whatever they are: over TCP with a
    /// `\n` added, over WebSocket as one text message, or as a binary one
    /// when `binary` is set or the bytes are not UTF-8. Returns false
    /// instead of panicking when the server has already closed.
    pub async fn send_raw(&mut self, frame: &[u8], binary: bool) -> bool {
        match &mut self.io {
            Io::Tcp { writer, .. } => {
                let mut b = Vec::with_capacity(frame.len() + 1);
                b.extend_from_slice(frame);
                b.push(b'\n');
                writer.write_all(&b).await.is_ok()
            }
            Io::Ws(ws) => {
                use futures_util::SinkExt;
                use tokio_tungstenite::tungstenite::Message;
                let msg = match std::str::from_utf8(frame) {
                    Ok(text) if !binary => Message::text(text),
                    _ => Message::binary(frame.to_vec()),
                };
                ws.send(msg).await.is_ok()
            }
        }
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

    /// The next frame of type `ty`, skipping others (events of no
    /// interest to the test); panics as [`Client::recv`] does.
    pub async fn skip_to(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
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
        match &mut self.io {
            Io::Tcp { writer, .. } => {
                let _ = writer.shutdown().await;
            }
            Io::Ws(ws) => {
                let _ = ws.close(None).await;
            }
        }
    }
}

/// One server frame from a WebSocket: `None` on timeout, `Some(None)` once
/// the server closed.
async fn read_ws(ws: &mut Ws, wait: Duration) -> Option<Option<Value>> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return None,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Some(None),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("server sent bad JSON {t:?}: {e}"));
                return Some(Some(v));
            }
            Ok(Some(Ok(Message::Binary(b)))) => panic!("server sent a binary message {b:?}"),
            // Pings are answered by tungstenite as we read.
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Users and contacts through the protocol.
impl TestServer {
    /// Registers `name` with [`PASSWORD`] on a throwaway connection without
    /// logging in (the user has never been online).
    pub async fn register(&self, name: &str) {
        let mut c = self.client().await;
        c.ok(json!({"type":"register","username":name,"password":PASSWORD}))
            .await;
        c.close().await;
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

// ---------------------------------------------------------------------------
// Files: base64, hashes, uploads and downloads over the protocol.
// ---------------------------------------------------------------------------

/// Largest chunk (`file.chunk`) and largest `file.read` answer, in bytes.
pub const CHUNK: usize = 32768;

/// Standard base64 with padding.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes standard base64 with padding; panics on anything else.
pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("server sent bad base64 ({e}): {s:.80}"))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// `n` pseudo-random bytes (xorshift64*), different for each `seed`.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

impl Client {
    /// `file.begin`; returns the file id.
    pub async fn file_begin(&mut self, name: &str, mime: Option<&str>, size: usize) -> String {
        let mut f = json!({"type":"file.begin","name":name,"size":size});
        if let Some(m) = mime {
            f["mime"] = json!(m);
        }
        let r = self.ok(f).await;
        r["file"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("file.begin ok without a file id: {r}"))
            .to_owned()
    }

    /// One `file.chunk` that must succeed.
    pub async fn file_chunk(&mut self, file: &str, offset: usize, data: &[u8]) {
        self.ok(json!({"type":"file.chunk","file":file,"offset":offset,"data":b64(data)}))
            .await;
    }

    /// `file.end` that must succeed; checks `file`, `size` and `sha256`
    /// against the bytes the caller sent. Returns the `ok`.
    pub async fn file_end(&mut self, file: &str, data: &[u8]) -> Value {
        let r = self.ok(json!({"type":"file.end","file":file})).await;
        assert_eq!(r["file"], file, "{r}");
        assert_eq!(r["size"], data.len(), "{r}");
        assert_eq!(r["sha256"], sha256_hex(data), "{r}");
        r
    }

    /// Uploads `data` chunk by chunk, waiting for each `ok`; returns the id.
    pub async fn upload(&mut self, name: &str, mime: Option<&str>, data: &[u8]) -> String {
        let file = self.file_begin(name, mime, data.len()).await;
        for (i, part) in data.chunks(CHUNK).enumerate() {
            self.file_chunk(&file, i * CHUNK, part).await;
        }
        self.file_end(&file, data).await;
        file
    }

    /// Uploads `data` sending every chunk without waiting for its `ok`
    /// (ids `chunk-<n>`), then collects the `ok`s and ends the upload.
    pub async fn upload_pipelined(
        &mut self,
        name: &str,
        mime: Option<&str>,
        data: &[u8],
    ) -> String {
        let file = self.file_begin(name, mime, data.len()).await;
        let n = data.chunks(CHUNK).len();
        for (i, part) in data.chunks(CHUNK).enumerate() {
            self.send(json!({"type":"file.chunk","id":format!("chunk-{i}"),"file":file,"offset":i * CHUNK,"data":b64(part)}))
                .await;
        }
        let mut seen = std::collections::HashSet::new();
        while seen.len() < n {
            let v = self.recv().await;
            let Some(id) = v["id"].as_str().and_then(|s| s.strip_prefix("chunk-")) else {
                panic!("unexpected frame while uploading: {v}");
            };
            assert_eq!(v["type"], "ok", "chunk {id}: {v}");
            assert!(seen.insert(id.to_owned()), "two replies to chunk {id}");
        }
        self.file_end(&file, data).await;
        file
    }

    /// One `file.read`: (bytes, eof).
    pub async fn file_read(&mut self, file: &str, offset: usize, len: usize) -> (Vec<u8>, bool) {
        let r = self
            .ok(json!({"type":"file.read","file":file,"offset":offset,"len":len}))
            .await;
        let data = unb64(r["data"].as_str().unwrap_or_else(|| panic!("no data: {r}")));
        let eof = r["eof"].as_bool().unwrap_or_else(|| panic!("no eof: {r}"));
        (data, eof)
    }

    /// The whole file through `file.read`, 32768 bytes at a time.
    pub async fn download(&mut self, file: &str) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (data, eof) = self.file_read(file, out.len(), CHUNK).await;
            assert!(data.len() <= CHUNK, "file.read served {} bytes", data.len());
            out.extend_from_slice(&data);
            if eof {
                return out;
            }
            assert!(!data.is_empty(), "file.read returned nothing before eof");
        }
    }
}
