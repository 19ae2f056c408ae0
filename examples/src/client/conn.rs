//! The connection: open it by URL, run a reader and a writer task, match
//! replies to requests by `id`, log in.
//!
//! Every request the client sends carries an integer `id`; the reader hands
//! the `ok`/`error`/`pong` with that `id` to whoever is waiting for it
//! ([`Client::request`]), or drops it when nobody is
//! ([`Client::send_ignored`]). Every other frame (events, unsolicited
//! errors, `hello`) goes to the [`Incoming`] channel in arrival order,
//! followed by [`Incoming::Closed`] once the connection ends.
//!
//! Frames from the server are hostile input: anything that is not a JSON
//! object with a string `type` is skipped, and nothing here panics on them.
//! The writer sends a `ping` after 30 s without any frame, so the server's
//! idle timeout never closes a quiet client.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long connecting (TCP, TLS and WebSocket handshakes) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A `ping` is sent after this long without any frame from the client.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// The longest server frame accepted over TCP (the protocol sets no limit;
/// this only keeps a hostile server from exhausting memory with one line).
const MAX_SERVER_FRAME: usize = 64 << 20;

/// The transport named by a URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `tcp://`: newline-delimited JSON.
    Tcp,
    /// `tls://`: the same over TLS.
    Tls,
    /// `ws://`: one frame per WebSocket text message.
    Ws,
    /// `wss://`: the same over TLS.
    Wss,
}

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The transport.
    pub scheme: Scheme,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// The WebSocket path (`/ws` when the URL has none); unused for TCP.
    pub path: String,
}

impl Target {
    /// Parses `tcp://`, `tls://`, `ws://` and `wss://` URLs. The port
    /// defaults to 7878 for `tcp`/`tls`, 80 for `ws` and 443 for `wss`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url}: expected SCHEME://HOST:PORT"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            other => return Err(format!("unknown scheme {other}: use tcp, tls, ws or wss")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!("{url}: user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed ["))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| format!("{url}: bad port"))?,
                    ),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{url}: bad port {p}"))?,
            None => match scheme {
                Scheme::Tcp | Scheme::Tls => 7878,
                Scheme::Ws => 80,
                Scheme::Wss => 443,
            },
        };
        let path = match path {
            "" | "/" if matches!(scheme, Scheme::Ws | Scheme::Wss) => "/ws".to_string(),
            p => p.to_string(),
        };
        Ok(Target {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The `HOST:PORT` to connect to (IPv6 in brackets).
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A frame that is not the reply to one of our requests, or the end.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A server frame (an object with a string `type`).
    Frame(Value),
    /// The connection ended; the reason when the transport gave one (a
    /// WebSocket close reason or an I/O error).
    Closed(Option<String>),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The server answered `error`.
    Server {
        /// The error code (`not_found`, ...).
        code: String,
        /// The human text.
        message: String,
    },
    /// The connection ended before the reply.
    Closed,
}

impl RequestError {
    /// The error code (`closed` when the connection ended).
    pub fn code(&self) -> &str {
        match self {
            RequestError::Server { code, .. } => code,
            RequestError::Closed => "closed",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Server { code, message } => write!(f, "{code}: {message}"),
            RequestError::Closed => f.write_str("closed: connection closed"),
        }
    }
}

impl std::error::Error for RequestError {}

/// The fields of an `ok` reply.
pub type Reply = Map<String, Value>;

type Waiter = Option<oneshot::Sender<Result<Reply, RequestError>>>;

struct Shared {
    out: mpsc::UnboundedSender<String>,
    /// Requests waiting for a reply (`None`: reply dropped); `None` once
    /// the connection ended.
    pending: Mutex<Option<HashMap<u64, Waiter>>>,
    next_id: AtomicU64,
}

/// A handle on the connection; cheap to clone.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// A reply that has not arrived yet (the request is already sent).
pub struct PendingReply {
    rx: Option<oneshot::Receiver<Result<Reply, RequestError>>>,
}

impl Future for PendingReply {
    type Output = Result<Reply, RequestError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.rx.as_mut() {
            None => Poll::Ready(Err(RequestError::Closed)),
            Some(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(RequestError::Closed))),
        }
    }
}

impl Client {
    /// Sends `frame` (an object) with a fresh `id` now; the returned
    /// future resolves to its reply.
    pub fn start(&self, frame: Value) -> PendingReply {
        let (tx, rx) = oneshot::channel();
        if self.send_with(frame, Some(tx)) {
            PendingReply { rx: Some(rx) }
        } else {
            PendingReply { rx: None }
        }
    }

    /// Sends `frame` and waits for its reply.
    pub async fn request(&self, frame: Value) -> Result<Reply, RequestError> {
        self.start(frame).await
    }

    /// Sends `frame` with an `id` and drops its reply, whatever it is.
    pub fn send_ignored(&self, frame: Value) {
        self.send_with(frame, None);
    }

    fn send_with(&self, mut frame: Value, waiter: Waiter) -> bool {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(obj) = frame.as_object_mut() {
            obj.insert("id".into(), json!(id));
        }
        {
            let Ok(mut pending) = self.shared.pending.lock() else {
                return false;
            };
            let Some(map) = pending.as_mut() else {
                return false;
            };
            map.insert(id, waiter);
        }
        if self.shared.out.send(frame.to_string()).is_err() {
            if let Ok(mut pending) = self.shared.pending.lock() {
                if let Some(map) = pending.as_mut() {
                    map.remove(&id);
                }
            }
            return false;
        }
        true
    }

    /// Closes the connection (the writer stops; the reader ends when the
    /// server closes its side).
    pub fn close(&self) {
        let _ = self.shared.out.send(String::new());
    }

    /// Routes one frame from the server: the reply to a request, or an
    /// event. Returns the frame when it is an event.
    fn route(&self, frame: Value) -> Option<Value> {
        let ty = frame.get("type").and_then(Value::as_str).unwrap_or("");
        if matches!(ty, "ok" | "error" | "pong") {
            if let Some(id) = frame.get("id").and_then(Value::as_u64) {
                let waiter = match self.shared.pending.lock() {
                    Ok(mut p) => p.as_mut().and_then(|m| m.remove(&id)),
                    Err(_) => None,
                };
                if let Some(waiter) = waiter {
                    if let Some(tx) = waiter {
                        let _ = tx.send(to_result(frame));
                    }
                    return None;
                }
            }
        }
        Some(frame)
    }

    /// Fails every waiting request with [`RequestError::Closed`] and
    /// refuses new ones.
    fn shut(&self) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.take();
        }
    }
}

/// `ok` → its fields; `error` → [`RequestError::Server`].
fn to_result(frame: Value) -> Result<Reply, RequestError> {
    let Value::Object(mut obj) = frame else {
        return Err(RequestError::Closed);
    };
    if obj.get("type").and_then(Value::as_str) == Some("error") {
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        return Err(RequestError::Server {
            code: text(obj.remove("code")),
            message: text(obj.remove("message")),
        });
    }
    obj.remove("id");
    Ok(obj)
}

/// Parses a server frame: a JSON object with a string `type`, or `None`.
pub fn parse_frame(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("type")?.as_str()?;
    Some(v)
}

/// TLS settings: Mozilla's roots plus the certificates of `ca`.
pub fn tls_connector(ca: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("cannot read {}: {e}", ca.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad PEM in {}: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", ca.display()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Connects to `url` and starts the reader and writer tasks (on the
/// current tokio runtime). Returns the handle and the channel of events;
/// the first event is normally `hello`.
pub async fn connect(
    url: &str,
    ca: Option<&Path>,
) -> Result<(Client, mpsc::UnboundedReceiver<Incoming>), String> {
    let target = Target::parse(url)?;
    tokio::time::timeout(CONNECT_TIMEOUT, open(&target, ca))
        .await
        .map_err(|_| format!("connecting to {url} timed out"))?
}

async fn open(
    t: &Target,
    ca: Option<&Path>,
) -> Result<(Client, mpsc::UnboundedReceiver<Incoming>), String> {
    let tcp = TcpStream::connect(t.authority())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", t.authority()))?;
    let _ = tcp.set_nodelay(true);
    let tls = |tcp: TcpStream| async move {
        let connector = tls_connector(ca)?;
        let name = ServerName::try_from(t.host.clone())
            .map_err(|e| format!("bad server name {}: {e}", t.host))?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {} failed: {e}", t.authority()))
    };
    let ws_url = |s: &str| format!("{s}://{}{}", t.authority(), t.path);
    Ok(match t.scheme {
        Scheme::Tcp => spawn_lines(tcp),
        Scheme::Tls => spawn_lines(tls(tcp).await?),
        Scheme::Ws => {
            let (ws, _) = tokio_tungstenite::client_async(ws_url("ws"), tcp)
                .await
                .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
            spawn_ws(ws)
        }
        Scheme::Wss => {
            let (ws, _) = tokio_tungstenite::client_async(ws_url("wss"), tls(tcp).await?)
                .await
                .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
            spawn_ws(ws)
        }
    })
}

fn new_client() -> (Client, mpsc::UnboundedReceiver<String>) {
    let (out, rx) = mpsc::unbounded_channel();
    let client = Client {
        shared: Arc::new(Shared {
            out,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(1),
        }),
    };
    (client, rx)
}

/// A client with no connection: what it sends comes out of the receiver
/// (for tests of code that talks to a [`Client`]).
#[cfg(test)]
pub(crate) fn detached() -> (Client, mpsc::UnboundedReceiver<String>) {
    new_client()
}

/// The keepalive frame (its `pong` is an event nobody prints).
const KEEPALIVE_PING: &str = r#"{"type":"ping","id":"keepalive"}"#;

/// Newline-delimited JSON over a byte stream (TCP or TLS).
fn spawn_lines<S>(stream: S) -> (Client, mpsc::UnboundedReceiver<Incoming>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (client, mut out) = new_client();
    let (events, rx) = mpsc::unbounded_channel();
    let (r, mut w) = tokio::io::split(stream);
    tokio::spawn(async move {
        loop {
            let frame = match tokio::time::timeout(KEEPALIVE, out.recv()).await {
                Ok(Some(f)) if f.is_empty() => break,
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => KEEPALIVE_PING.to_string(),
            };
            let mut line = frame.into_bytes();
            line.push(b'\n');
            if w.write_all(&line).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let reader = client.clone();
    tokio::spawn(async move {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        let reason = loop {
            buf.clear();
            match (&mut r)
                .take(MAX_SERVER_FRAME as u64 + 1)
                .read_until(b'\n', &mut buf)
                .await
            {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(e.to_string()),
            }
            if buf.len() > MAX_SERVER_FRAME {
                break Some("server frame too large".into());
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                continue;
            }
            if let Some(frame) = parse_frame(text) {
                if let Some(ev) = reader.route(frame) {
                    let _ = events.send(Incoming::Frame(ev));
                }
            }
        };
        reader.shut();
        let _ = events.send(Incoming::Closed(reason));
    });
    (client, rx)
}

/// One frame per WebSocket text message.
fn spawn_ws<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
) -> (Client, mpsc::UnboundedReceiver<Incoming>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (client, mut out) = new_client();
    let (events, rx) = mpsc::unbounded_channel();
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move {
        loop {
            let frame = match tokio::time::timeout(KEEPALIVE, out.recv()).await {
                Ok(Some(f)) if f.is_empty() => break,
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => KEEPALIVE_PING.to_string(),
            };
            if sink.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let reader = client.clone();
    tokio::spawn(async move {
        let reason = loop {
            match stream.next().await {
                None => break None,
                Some(Err(e)) => break Some(e.to_string()),
                Some(Ok(Message::Text(t))) => {
                    if let Some(frame) = parse_frame(t.as_str()) {
                        if let Some(ev) = reader.route(frame) {
                            let _ = events.send(Incoming::Frame(ev));
                        }
                    }
                }
                Some(Ok(Message::Close(c))) => {
                    break c.map(|c| c.reason.to_string()).filter(|r| !r.is_empty());
                }
                Some(Ok(_)) => {}
            }
        };
        reader.shut();
        let _ = events.send(Incoming::Closed(reason));
    });
    (client, rx)
}

/// What a successful login returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The normalised user name.
    pub user: String,
    /// The session id.
    pub session: String,
}

/// Registers (when `register`) and logs in. `on_register` is told the
/// outcome of the registration (a `username_taken` does not stop the
/// login).
pub async fn login(
    client: &Client,
    user: &str,
    password: &str,
    device: &str,
    register: bool,
    mut on_register: impl FnMut(Result<String, RequestError>),
) -> Result<LoggedIn, RequestError> {
    if register {
        match client
            .request(json!({"type": "register", "username": user, "password": password}))
            .await
        {
            Ok(r) => on_register(Ok(str_field(&r, "user").unwrap_or(user).to_string())),
            Err(e) if e.code() == "username_taken" => on_register(Err(e)),
            Err(e) => return Err(e),
        }
    }
    let r = client
        .request(json!({"type": "login", "username": user, "password": password, "device": device}))
        .await?;
    Ok(LoggedIn {
        user: str_field(&r, "user").unwrap_or(user).to_string(),
        session: str_field(&r, "session").unwrap_or("").to_string(),
    })
}

/// A string field of a reply.
pub fn str_field<'a>(r: &'a Reply, key: &str) -> Option<&'a str> {
    r.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("tcp://127.0.0.1:7878").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port),
            (Scheme::Tcp, "127.0.0.1", 7878)
        );
        let t = Target::parse("ws://localhost:8080/ws").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.path.as_str()),
            (Scheme::Ws, 8080, "/ws")
        );
        let t = Target::parse("wss://chat.example").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/ws"));
        let t = Target::parse("tls://[::1]:9000").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port),
            (Scheme::Tls, "::1", 9000)
        );
        assert_eq!(t.authority(), "[::1]:9000");
        assert_eq!(Target::parse("TCP://h").unwrap().port, 7878);
        assert!(Target::parse("http://h").is_err());
        assert!(Target::parse("h:1").is_err());
        assert!(Target::parse("tcp://:1").is_err());
        assert!(Target::parse("tcp://h:x").is_err());
        assert!(Target::parse("tcp://h:70000").is_err());
        assert!(Target::parse("tcp://u@h:1").is_err());
    }

    #[test]
    fn frames_from_the_server_are_checked() {
        assert!(parse_frame(r#"{"type":"synced"}"#).is_some());
        assert!(parse_frame(r#"{"type":1}"#).is_none());
        assert!(parse_frame(r#"[1]"#).is_none());
        assert!(parse_frame("nonsense").is_none());
    }

    #[tokio::test]
    async fn replies_are_matched_by_id() {
        let (client, mut out) = new_client();
        let a = client.start(json!({"type": "ping"}));
        let b = client.start(json!({"type": "contact.add", "user": "bob"}));
        client.send_ignored(json!({"type": "typing", "to": "bob"}));
        let sent: Vec<Value> = (0..3)
            .map(|_| serde_json::from_str(&out.try_recv().unwrap()).unwrap())
            .collect();
        assert_eq!(sent[0]["id"], 1);
        assert_eq!(sent[1]["id"], 2);
        assert_eq!(sent[2]["id"], 3);
        // Out of order, plus an event and an unknown id.
        assert!(client
            .route(json!({"type":"error","id":2,"code":"not_found","message":"no"}))
            .is_none());
        assert!(client.route(json!({"type":"ok","id":3})).is_none());
        assert!(client.route(json!({"type":"ok","id":99})).is_some());
        assert!(client
            .route(json!({"type":"msg","id":1,"conv":"c"}))
            .is_some());
        assert!(client.route(json!({"type":"pong","id":1})).is_none());
        assert_eq!(a.await.unwrap().get("type"), Some(&json!("pong")));
        assert_eq!(
            b.await.unwrap_err(),
            RequestError::Server {
                code: "not_found".into(),
                message: "no".into()
            }
        );
        // After the end, waiting requests and new ones fail.
        let c = client.start(json!({"type": "ping"}));
        client.shut();
        assert_eq!(c.await.unwrap_err(), RequestError::Closed);
        assert_eq!(
            client.request(json!({"type": "ping"})).await.unwrap_err(),
            RequestError::Closed
        );
    }
}
