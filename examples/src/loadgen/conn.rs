//! One protocol connection of the load generator, over TCP or WebSocket,
//! from a chosen source address: a writer fed by a channel, and frames
//! read one at a time by the scenario.

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

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

type Reader = Box<dyn futures_util::Stream<Item = anyhow::Result<Value>> + Unpin + Send>;

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
    let (tx, mut out) = mpsc::unbounded_channel::<String>();
    let rx: Reader = if target.ws {
        let url = format!("ws://{}/ws", target.addr);
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
        let (mut sink, stream) = ws.split();
        tokio::spawn(async move {
            while let Some(f) = out.recv().await {
                if sink.send(Message::Text(f.into())).await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        Box::new(Box::pin(stream.filter_map(|m| async move {
            match m {
                Ok(Message::Text(t)) => Some(serde_json::from_str(t.as_str()).map_err(Into::into)),
                Ok(Message::Close(_)) => None,
                Ok(_) => None,
                Err(e) => Some(Err(e.into())),
            }
        })))
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
    let lines = tokio_stream_lines(BufReader::new(rd));
    Box::new(lines)
}

fn tokio_stream_lines(
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> impl futures_util::Stream<Item = anyhow::Result<Value>> + Unpin + Send {
    Box::pin(futures_util::stream::unfold(rd, |mut rd| async move {
        let mut line = Vec::new();
        match rd.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some((serde_json::from_slice(&line).map_err(Into::into), rd)),
        }
    }))
}

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
        match self.rx.next().await {
            Some(r) => r,
            None => bail!("connection closed"),
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
        let mut replay = Vec::new();
        loop {
            let v = self.recv().await?;
            match v["type"].as_str() {
                Some("synced") => return Ok((ok, replay)),
                Some("msg") => replay.push(v),
                _ => {}
            }
        }
    }
}
