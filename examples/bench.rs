//! Store benchmark: persisted messages per second and time to `ok`, end to
//! end through a real server (TCP transport, actors, group-commit writer,
//! store), with 1, 10 and 100 concurrent senders.
//!
//! ```text
//! cargo run --release --example bench -- --store sqlite://bench.db
//! cargo run --release --example bench -- --store memory: --senders 1,10 --seconds 3
//! cargo run --release --example bench -- --store sqlite://bench.db --rate 28000
//! ```
//!
//! Each sender is one connection sending direct messages to its own
//! (offline) receiver, keeping `--window` sends in flight (closed loop). With
//! `--rate R` the senders instead send R messages/s in all at a steady pace
//! (open loop), to measure latency below saturation. Every `ok` means the
//! message was committed; the count of `ok`s per second is the persisted
//! rate. Not a test: numbers depend on the machine (see BENCHMARKS.md).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use im_core::{Config, Hub};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Args {
    store: String,
    senders: Vec<usize>,
    seconds: u64,
    window: usize,
    rate: Option<u64>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        store: "memory:".into(),
        senders: vec![1, 10, 100],
        seconds: 5,
        window: 64,
        rate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--store" => a.store = v,
            "--senders" => a.senders = v.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--seconds" => a.seconds = v.parse()?,
            "--window" => a.window = v.parse()?,
            "--rate" => a.rate = Some(v.parse()?),
            _ => bail!("unknown option {k}"),
        }
    }
    Ok(a)
}

fn start_server(store_url: String) -> anyhow::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let store =
                match im_examples::open_store(&store_url, &im_examples::StoreOptions::default()) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
            let mut config = Config::default();
            config.auth.bcrypt_cost = 4;
            config.auth.register_per_peer = u32::MAX;
            config.policy.dm_requires_contact = false;
            config.limits.max_in_flight = 1024;
            // The load comes from one address, far past one user's rate.
            config.limits.frames_per_sec = u32::MAX;
            config.limits.frames_burst = u32::MAX;
            config.limits.max_connections_per_peer = usize::MAX;
            config.limits.max_connections = usize::MAX;
            config.limits.outbound_bytes = usize::MAX;
            config.limits.outbound_queue = 65536;
            // The benchmark sends no files: their bytes may stay in memory.
            let blobs = std::sync::Arc::new(im_core::blob::MemoryBlobStore::new());
            let hub = Hub::builder(store, blobs).config(config).start();
            let l = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            let _ = tx.send(l.local_addr().map_err(Into::into));
            let _ = im_transport_tcp::serve(l, hub, std::future::pending()).await;
        });
    });
    rx.recv()?
}

struct Conn {
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
    line: String,
}

impl Conn {
    async fn new(addr: SocketAddr) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        let mut c = Conn {
            rd: BufReader::new(r),
            wr: w,
            line: String::new(),
        };
        c.read().await?; // hello
        Ok(c)
    }
    async fn send(&mut self, v: &Value) -> anyhow::Result<()> {
        let mut b = serde_json::to_vec(v)?;
        b.push(b'\n');
        self.wr.write_all(&b).await?;
        Ok(())
    }
    async fn read(&mut self) -> anyhow::Result<Value> {
        self.line.clear();
        if self.rd.read_line(&mut self.line).await? == 0 {
            bail!("server closed the connection");
        }
        Ok(serde_json::from_str(&self.line)?)
    }
    async fn until_id(&mut self, id: i64) -> anyhow::Result<Value> {
        loop {
            let v = self.read().await?;
            if v["id"] == json!(id) {
                return Ok(v);
            }
        }
    }
}

/// Registers and logs in `name`; returns the connection after `synced`.
async fn user(addr: SocketAddr, name: &str) -> anyhow::Result<Conn> {
    let mut c = Conn::new(addr).await?;
    c.send(&json!({"type":"register","username":name,"password":"bench-password","id":1}))
        .await?;
    c.until_id(1).await?;
    c.send(&json!({"type":"login","username":name,"password":"bench-password","id":2}))
        .await?;
    let ok = c.until_id(2).await?;
    if ok["type"] != "ok" {
        bail!("login failed: {ok}");
    }
    while c.read().await?["type"] != "synced" {}
    Ok(c)
}

/// One sender: returns the latency of every `ok` received in the window.
async fn sender(
    mut c: Conn,
    to: String,
    args_window: usize,
    until: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<Vec<Duration>> {
    let body = "x".repeat(100);
    let mut inflight: VecDeque<Instant> = VecDeque::new();
    let mut lat = Vec::new();
    let mut next_id: i64 = 100;
    let mut next_send = Instant::now();
    loop {
        let now = Instant::now();
        let sending = now < until;
        if !sending && inflight.is_empty() {
            return Ok(lat);
        }
        let can_send =
            sending && inflight.len() < args_window && pace.is_none_or(|_| now >= next_send);
        if can_send {
            c.send(&json!({"type":"msg.send","to":to,"body":body,"id":next_id}))
                .await?;
            next_id += 1;
            inflight.push_back(now);
            if let Some(p) = pace {
                next_send += p;
            }
            continue;
        }
        let wait = match pace {
            Some(_) if sending && inflight.len() < args_window => {
                next_send.saturating_duration_since(now)
            }
            _ => Duration::from_secs(30),
        };
        match tokio::time::timeout(wait, c.read()).await {
            Err(_) => continue,
            Ok(v) => {
                let v = v?;
                if v["type"] == "ok" {
                    if let Some(t) = inflight.pop_front() {
                        lat.push(t.elapsed());
                    }
                } else if v["type"] == "error" {
                    bail!("send failed: {v}");
                }
            }
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let addr = start_server(a.store.clone())?;
    println!(
        "store {}  window {}  {} s per run{}",
        a.store,
        a.window,
        a.seconds,
        a.rate
            .map_or(String::new(), |r| format!("  target rate {r}/s"))
    );
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>10}",
        "senders", "msgs/s", "p50 ms", "p99 ms", "max ms"
    );
    let run = std::process::id();
    for (round, &n) in a.senders.iter().enumerate() {
        let mut conns = Vec::new();
        for i in 0..n {
            conns.push(user(addr, &format!("s{run}r{round}n{i}")).await?);
        }
        for i in 0..n {
            // Receivers exist but stay offline: the benchmark measures storage.
            let _ = user(addr, &format!("t{run}r{round}n{i}")).await?;
        }
        let pace = a.rate.map(|r| Duration::from_secs_f64(n as f64 / r as f64));
        let start = Instant::now();
        let until = start + Duration::from_secs(a.seconds);
        let mut tasks = Vec::new();
        for (i, c) in conns.into_iter().enumerate() {
            let to = format!("t{run}r{round}n{i}");
            tasks.push(tokio::spawn(sender(c, to, a.window, until, pace)));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort();
        println!(
            "{:>8} {:>12.0} {:>10.2} {:>10.2} {:>10.2}",
            n,
            lat.len() as f64 / elapsed,
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    }
    Ok(())
}
