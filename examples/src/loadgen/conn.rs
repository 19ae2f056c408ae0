//! One protocol connection of the load generator, over TCP or WebSocket,
//! from a chosen source address: a writer fed by a channel, and frames
//! read one at a time by the scenario, parsed ([`Conn::recv`]) or raw
//! ([`Conn::recv_raw`], for the receivers that only look for `msg`).

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context as _};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Target {
    /// TCP address of the server (the TCP port, or the HTTP port for ws).
    pub addr: SocketAddr,
    /// WebSocket (`/ws`) instead of newline-delimited TCP.
    pub ws: bool,
}

impl Target {
    /// `tcp://host:port` or `ws://host:port/ws`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let (ws, rest) = if let Some(r) = url.strip_prefix("tcp://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (true, r.trim_end_matches("/ws"))
        } else {
            bail!("unsupported URL {url} (tcp://host:port or ws://host:port/ws)");
        };
        let addr = rest
            .parse()
            .with_context(|| format!("{rest} is not an IP address and port"))?;
        Ok(Target { addr, ws })
    }
}

/// The read half: TCP lines from a large buffer, or WebSocket text
/// messages; the current frame stays in `line` / `last` until the next
/// read, so [`Conn::recv_raw`] can lend it out without copying.
enum Reader {
    Lines {
        rd: BufReader<OwnedReadHalf>,
        line: Vec<u8>,
        /// `line` was handed out: clear it before the next read. False
        /// while a read cancelled part way (by a `select!`) left part of
        /// a line in it, to be completed by the next call.
        taken: bool,
    },
    Ws {
        rd: SplitStream<WebSocketStream<TcpStream>>,
        last: Utf8Bytes,
    },
}

/// Read buffer of a TCP connection: large, so a receiver of a busy room
/// reads many frames per system call.
const READ_BUFFER: usize = 64 * 1024;

/// A connection: send frames without waiting, read them in order.
pub struct Conn {
    tx: mpsc::UnboundedSender<String>,
    rx: Reader,
    next_id: u64,
}

/// Connects from `source` (an address on the loopback, to spread
/// connections over many source addresses), and reads `hello`.
pub async fn connect(target: &Target, source: Option<IpAddr>) -> anyhow::Result<Conn> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (tx, out) = mpsc::unbounded_channel::<String>();
    let rx = if target.ws {
        websocket(target, stream, out).await?
    } else {
        lines(stream, out)
    };
    let mut c = Conn { tx, rx, next_id: 0 };
    let hello = c.recv().await?;
    if hello["type"] != "hello" {
        bail!("expected hello, got {hello}");
    }
    Ok(c)
}

/// `/ws` over `stream`: a task writes what `out` queues as text messages.
/// (tungstenite reads through a 128 KiB buffer by default.)
async fn websocket(
    target: &Target,
    stream: TcpStream,
    mut out: mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<Reader> {
    let url = format!("ws://{}/ws", target.addr);
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let (mut sink, rd) = ws.split();
    tokio::spawn(async move {
        while let Some(f) = out.recv().await {
            if sink.send(Message::Text(f.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    Ok(Reader::Ws {
        rd,
        last: Utf8Bytes::default(),
    })
}

/// Newline-delimited frames over `stream`: a task writes what `out`
/// queues, gathering what is queued together into one write.
fn lines(stream: TcpStream, mut out: mpsc::UnboundedReceiver<String>) -> Reader {
    let (rd, mut wr) = stream.into_split();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(f) = out.recv().await {
            buf.clear();
            buf.extend_from_slice(f.as_bytes());
            buf.push(b'\n');
            // Gather what else is queued into the same write.
            while let Ok(more) = out.try_recv() {
                buf.extend_from_slice(more.as_bytes());
                buf.push(b'\n');
                if buf.len() > 64 * 1024 {
                    break;
                }
            }
            if wr.write_all(&buf).await.is_err() {
                return;
            }
        }
    });
    Reader::Lines {
        rd: BufReader::with_capacity(READ_BUFFER, rd),
        line: Vec::with_capacity(1024),
        taken: false,
    }
}

/// The server closed the connection (an error of [`Conn::recv`]).
#[derive(Debug)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed")
    }
}

impl std::error::Error for Closed {}

impl Conn {
    /// Sends a frame, adding the next integer `id`; returns the id.
    pub fn send(&mut self, mut frame: Value) -> u64 {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        let _ = self.tx.send(frame.to_string());
        self.next_id
    }

    /// The next frame; an error once the connection closed.
    pub async fn recv(&mut self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(self.recv_raw().await?)?)
    }

    /// The next frame as it came (a line without its newline, or a text
    /// message), lent until the next read: for receivers that look at a
    /// frame with [`super::frame::scan`] instead of parsing it. Safe to
    /// cancel (as a `select!` branch): no frame is lost or cut.
    pub async fn recv_raw(&mut self) -> anyhow::Result<&[u8]> {
        match &mut self.rx {
            Reader::Lines { rd, line, taken } => {
                if *taken {
                    line.clear();
                    *taken = false;
                }
                if rd.read_until(b'\n', line).await? == 0 {
                    return Err(Closed.into());
                }
                *taken = true;
                let end = line.len() - usize::from(line.ends_with(b"\n"));
                Ok(&line[..end])
            }
            Reader::Ws { rd, last } => loop {
                match rd.next().await {
                    Some(Ok(Message::Text(t))) => {
                        *last = t;
                        return Ok(last.as_bytes());
                    }
                    Some(Ok(Message::Close(_))) | None => return Err(Closed.into()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            },
        }
    }

    /// Sends `frame` and returns its reply, skipping events before it.
    pub async fn request(&mut self, frame: Value) -> anyhow::Result<Value> {
        let id = self.send(frame);
        loop {
            let v = self.recv().await?;
            if v["id"] == json!(id) {
                return Ok(v);
            }
        }
    }

    /// Like [`Conn::request`], failing on anything but `ok`.
    pub async fn ok(&mut self, frame: Value) -> anyhow::Result<Value> {
        let what = frame["type"].clone();
        let r = self.request(frame).await?;
        if r["type"] != "ok" {
            bail!("{what}: {r}");
        }
        Ok(r)
    }

    /// Logs in and reads up to `synced`; returns the `ok` and the number
    /// of replayed messages.
    pub async fn login(&mut self, frame: Value) -> anyhow::Result<(Value, Vec<Value>)> {
        let ok = self.ok(frame).await?;
        Ok((ok, self.replay().await?))
    }

    /// After a login's `ok`: the replayed messages, up to `synced`.
    pub async fn replay(&mut self) -> anyhow::Result<Vec<Value>> {
        let mut replay = Vec::new();
        loop {
            let v = self.recv().await?;
            match v["type"].as_str() {
                Some("synced") => return Ok(replay),
                Some("msg") => replay.push(v),
                _ => {}
            }
        }
    }
}
