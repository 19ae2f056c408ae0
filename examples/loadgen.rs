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
//! Options: `--url tcp://127.0.0.1:7878` (or `ws://127.0.0.1:8080/ws`;
//! several, comma-separated, spread connections over the nodes of a
//! cluster),
//! `--users N`, `--rate R` (messages/s in all; logins/s for login-storm),
//! `--duration SECS`, `--senders N` (fan-out senders; pending messages per
//! user for reconnect), `--background-rate R` (login-storm's 1:1 load),
//! `--sources N` (spread connections over 127.0.0.1..N, default 8),
//! `--concurrency N` (connections set up at once, default 256),
//! `--server-pid PID` (read the server's CPU and memory), `--prefix P`
//! (user names; default: random per run).
//!
//! Sweeps and results (`direct` and `fanout`): `--sweep R1,R2,...` runs
//! the scenario once per offered rate (instead of `--rate`), each step
//! with its own users (`<prefix>s<step>-<n>`); `--csv FILE` appends one
//! row per run to FILE (header written when the file is new; columns in
//! `im_examples::loadgen::results`), `--label TEXT` names the
//! configuration in that row (e.g. "2 cores"). The `charts` example draws
//! the file:
//!
//! ```text
//! cargo run --release --example loadgen -- direct --users 2000 --duration 10 \
//!   --sweep 5000,10000,20000,30000 --csv results.csv --label "2 cores" --server-pid $(pgrep -f examples/server)
//! cargo run --release --example charts -- --csv results.csv --out docs/img
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use im_examples::loadgen::results::{self, Row};
use im_examples::loadgen::{self, Opts, Target};

/// What to do with the scenario's runs, beside printing them.
#[derive(Default)]
struct Record {
    /// Offered rates to run one after the other; empty: `--rate` once.
    sweep: Vec<f64>,
    /// Append one row per run here.
    csv: Option<PathBuf>,
    /// The rows' label.
    label: String,
}

/// The scenarios that run at an offered message rate (and so can sweep
/// and write CSV rows).
const RATE_SCENARIOS: [&str; 2] = ["direct", "fanout"];

fn parse() -> anyhow::Result<(String, Opts, Record)> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().context("usage: loadgen SCENARIO [options]")?;
    let suffix: String = (0..4)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let mut o = Opts {
        target: Target::parse("tcp://127.0.0.1:7878")?,
        more: Vec::new(),
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
    let mut rec = Record::default();
    while let Some(k) = args.next() {
        let v = args.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--url" => {
                let mut urls = v.split(',').map(Target::parse);
                o.target = urls.next().context("--url needs a URL")??;
                o.more = urls.collect::<anyhow::Result<_>>()?;
            }
            "--users" => o.users = v.parse()?,
            "--rate" => o.rate = v.parse()?,
            "--duration" => o.duration = Duration::from_secs_f64(v.parse()?),
            "--senders" => o.senders = v.parse()?,
            "--background-rate" => o.background_rate = v.parse()?,
            "--sources" => o.sources = v.parse()?,
            "--concurrency" => o.concurrency = v.parse()?,
            "--server-pid" => o.server_pid = Some(v.parse()?),
            "--prefix" => o.prefix = v,
            "--sweep" => rec.sweep = parse_rates(&v)?,
            "--csv" => rec.csv = Some(v.into()),
            "--label" => rec.label = v,
            _ => bail!("unknown option {k}"),
        }
    }
    let recording = !rec.sweep.is_empty() || rec.csv.is_some();
    if recording && !RATE_SCENARIOS.contains(&scenario.as_str()) {
        bail!("--sweep and --csv are for {}", RATE_SCENARIOS.join(" and "));
    }
    Ok((scenario, o, rec))
}

/// `R1,R2,...`: positive rates.
fn parse_rates(v: &str) -> anyhow::Result<Vec<f64>> {
    v.split(',')
        .map(|r| {
            let r = r.trim();
            match r.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => bail!("--sweep: {r:?} is not a positive rate"),
            }
        })
        .collect()
}

/// Runs `scenario` once, or once per rate of the sweep, appending a row
/// per run to the CSV file if one was given.
async fn run(scenario: &str, o: &Opts, rec: &Record) -> anyhow::Result<()> {
    let transport = if o.target.ws { "ws" } else { "tcp" };
    let steps: Vec<Opts> = if rec.sweep.is_empty() {
        vec![o.clone()]
    } else {
        rec.sweep
            .iter()
            .enumerate()
            .map(|(i, &rate)| Opts {
                rate,
                prefix: format!("{}s{i}-", o.prefix),
                ..o.clone()
            })
            .collect()
    };
    for (i, step) in steps.iter().enumerate() {
        if steps.len() > 1 {
            if i > 0 {
                // Let the last step's connections close.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            println!("step {} of {}: rate {}", i + 1, steps.len(), step.rate);
        }
        let report = loadgen::scenarios::run(scenario, step).await?;
        if let (Some(path), Some(m)) = (&rec.csv, &report.measured) {
            results::append(path, &Row::new(scenario, transport, m, &rec.label))?;
        }
    }
    if let Some(path) = &rec.csv {
        println!("results appended to {}", path.display());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let (scenario, o, rec) = parse()?;
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
        run(&scenario, &o, &rec).await
    })
}
