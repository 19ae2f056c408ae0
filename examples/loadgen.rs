//! Load generator: the real protocol over TCP or WebSocket against a
//! running server, for the scenarios of BENCHMARKS.md.
//!
//! ```text
//! # a server that lets one machine's load in (see BENCHMARKS.md):
//! IM__AUTH__BCRYPT_COST=4 IM__AUTH__REGISTER_PER_PEER=1000000 \
//!   IM__LIMITS__MAX_CONNECTIONS_PER_PEER=100000 IM__LIMITS__MAX_CONNECTIONS=100000 \
//!   IM__LIMITS__FRAMES_PER_SEC=1000000 IM__LIMITS__FRAMES_BURST=1000000 \
//!   cargo run --release --example server
//! cargo run --release --example loadgen -- direct --users 2000 --rate 10000 --duration 20
//! cargo run --release --example loadgen -- fanout --users 1000 --senders 10 --rate 1000
//! cargo run --release --example loadgen -- idle --users 19000 --server-pid $(pgrep -f examples/server)
//! cargo run --release --example loadgen -- login-storm --users 200 --rate 100 --background-rate 20000
//! cargo run --release --example loadgen -- reconnect --users 10000 --senders 3
//! ```
//!
//! Options: `--url tcp://127.0.0.1:7878` (or `ws://127.0.0.1:8080/ws`),
//! `--users N`, `--rate R` (messages/s in all; logins/s for login-storm),
//! `--duration SECS`, `--senders N` (fan-out senders; pending messages per
//! user for reconnect), `--background-rate R` (login-storm's 1:1 load),
//! `--sources N` (spread connections over 127.0.0.1..N, default 8),
//! `--concurrency N` (connections set up at once, default 256),
//! `--server-pid PID` (read the server's CPU and memory), `--prefix P`
//! (user names; default: random per run).

use std::time::Duration;

use anyhow::{bail, Context as _};
use im_examples::loadgen::{self, Opts, Target};

fn parse() -> anyhow::Result<(String, Opts)> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().context("usage: loadgen SCENARIO [options]")?;
    let suffix: String = (0..4)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let mut o = Opts {
        target: Target::parse("tcp://127.0.0.1:7878")?,
        sources: 8,
        users: 200,
        rate: 1000.0,
        duration: Duration::from_secs(10),
        senders: 10,
        background_rate: 5000.0,
        prefix: format!("lg{suffix}"),
        server_pid: None,
        concurrency: 256,
    };
    while let Some(k) = args.next() {
        let v = args.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--url" => o.target = Target::parse(&v)?,
            "--users" => o.users = v.parse()?,
            "--rate" => o.rate = v.parse()?,
            "--duration" => o.duration = Duration::from_secs_f64(v.parse()?),
            "--senders" => o.senders = v.parse()?,
            "--background-rate" => o.background_rate = v.parse()?,
            "--sources" => o.sources = v.parse()?,
            "--concurrency" => o.concurrency = v.parse()?,
            "--server-pid" => o.server_pid = Some(v.parse()?),
            "--prefix" => o.prefix = v,
            _ => bail!("unknown option {k}"),
        }
    }
    Ok((scenario, o))
}

fn main() -> anyhow::Result<()> {
    let (scenario, o) = parse()?;
    loadgen::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!(
            "{scenario} against {} ({}), users {}, prefix {}",
            o.target.addr,
            if o.target.ws { "ws" } else { "tcp" },
            o.users,
            o.prefix
        );
        loadgen::scenarios::run(&scenario, &o).await.map(|_| ())
    })
}
