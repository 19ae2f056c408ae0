//! The scenarios. Each prints what it measured; none asserts a timing.
//!
//! Message bodies carry the send time (µs since the run's epoch, one
//! clock: sender and receiver are in this process), so a receiver knows
//! each message's send-to-delivery latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::future::join_all;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::conn::{connect, Closed, Conn};
use super::frame;
use super::stats::{self, CpuMeter, Latency};
use super::{Opts, PASSWORD};

/// What a run measured, for the report and BENCHMARKS.md.
#[derive(Debug, Default)]
pub struct Report {
    /// Lines of text.
    pub lines: Vec<String>,
    /// The numbers of a run at an offered message rate (`direct` and
    /// `fanout`), for `--csv`; `None` for the other scenarios.
    pub measured: Option<Measured>,
}

/// The numbers of a run at an offered message rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Messages per second offered (`--rate`).
    pub offered_rate: f64,
    /// Messages per second sent.
    pub achieved_rate: f64,
    /// `msg` deliveries per second to the measured receivers.
    pub deliveries_per_s: f64,
    /// Measured receivers each message goes to: 1 for `direct`, the
    /// members who do not send for `fanout` (offered deliveries per
    /// second = `offered_rate` × this).
    pub receivers_per_msg: f64,
    /// Send-to-delivery latency; `None` if nothing was delivered.
    pub latency: Option<Latency>,
    /// The generator's CPU use, in cores.
    pub generator_cpu: Option<f64>,
    /// The server's CPU use, in cores (with `--server-pid`).
    pub server_cpu: Option<f64>,
}

impl Report {
    fn say(&mut self, s: impl Into<String>) {
        let s = s.into();
        println!("{s}");
        self.lines.push(s);
    }
}

/// Runs scenario `name`.
pub async fn run(name: &str, o: &Opts) -> anyhow::Result<Report> {
    match name {
        "idle" => idle(o).await,
        "direct" => direct(o).await,
        "fanout" => fanout(o).await,
        "login-storm" => login_storm(o).await,
        "reconnect" => reconnect(o).await,
        _ => bail!("unknown scenario {name} (idle, direct, fanout, login-storm, reconnect)"),
    }
}

/// Runs `f(i)` for `0..n`, at most `o.concurrency` at once.
async fn bounded<T, F, Fut>(o: &Opts, n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let gate = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let all = (0..n).map(|i| {
        let gate = gate.clone();
        let fut = f(i);
        async move {
            let _permit = gate.acquire().await?;
            fut.await
        }
    });
    join_all(all).await.into_iter().collect()
}

/// Sends `frame` until the server's bcrypt queue has room: `unavailable`
/// (at real bcrypt costs) is tried again after a second.
async fn patiently(c: &mut Conn, frame: Value) -> anyhow::Result<Value> {
    loop {
        let r = c.request(frame.clone()).await?;
        if r["code"] != "unavailable" {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Registers `name` unless it exists.
async fn register(c: &mut Conn, name: &str) -> anyhow::Result<()> {
    let r = patiently(
        c,
        json!({"type":"register","username":name,"password":PASSWORD}),
    )
    .await?;
    match r["code"].as_str() {
        None | Some("username_taken") => Ok(()),
        Some(_) => bail!("register {name}: {r}"),
    }
}

/// Registers (if needed) and logs user `i` in on a new connection; a
/// connection closed meanwhile (its login deadline passed while bcrypt
/// was busy) is replaced, a few times.
async fn session(o: &Opts, i: usize) -> anyhow::Result<(Conn, Value)> {
    let mut tries = 0;
    loop {
        match session_once(o, i).await {
            Err(e) if tries < 5 && e.is::<Closed>() => tries += 1,
            other => return other,
        }
    }
}

async fn session_once(o: &Opts, i: usize) -> anyhow::Result<(Conn, Value)> {
    let mut c = connect(o.target(i), o.source(i)).await?;
    let name = o.user(i);
    register(&mut c, &name).await?;
    let frame = json!({"type":"login","username":name,"password":PASSWORD,"device":"lg"});
    let ok = patiently(&mut c, frame).await?;
    if ok["type"] != "ok" {
        bail!("login {name}: {ok}");
    }
    c.replay().await?;
    Ok((c, ok))
}

async fn sessions(o: &Opts, n: usize) -> anyhow::Result<Vec<Conn>> {
    let started = Instant::now();
    let v = bounded(o, n, |i| async move { Ok(session(o, i).await?.0) }).await?;
    println!(
        "  {n} sessions logged in in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(v)
}

/// µs since `epoch`, as a message body.
fn stamp(epoch: Instant) -> String {
    epoch.elapsed().as_micros().to_string()
}

/// The latency of a message stamped by [`stamp`], from its raw body.
fn latency(epoch: Instant, body: &[u8]) -> Option<Duration> {
    let sent = frame::digits(body)?;
    epoch
        .elapsed()
        .checked_sub(Duration::from_micros(sent))
        .or(Some(Duration::ZERO))
}

fn server_cpu(o: &Opts) -> Option<CpuMeter> {
    o.server_pid.map(|p| CpuMeter::start(&p.to_string()))
}

/// CPU use (in cores) of the generator and the server since the meters
/// started.
fn cpu_use(gen: &CpuMeter, server: &Option<CpuMeter>) -> (Option<f64>, Option<f64>) {
    (gen.cores(), server.as_ref().and_then(CpuMeter::cores))
}

fn cpu_line(gen: &CpuMeter, server: &Option<CpuMeter>) -> String {
    let (g, s) = cpu_use(gen, server);
    cpu_text(g, s, server.is_some())
}

fn cpu_text(gen: Option<f64>, server: Option<f64>, server_given: bool) -> String {
    let fmt = |c: Option<f64>| c.map_or("?".into(), |c| format!("{:.0}%", c * 100.0));
    let server = if server_given {
        fmt(server)
    } else {
        "(give --server-pid)".into()
    };
    format!("  CPU: generator {} of a core, server {server}", fmt(gen))
}

/// A sender: `msg.send` frames made by `make` every `interval`, the
/// first after `phase`, until `until`; reads (and drops, scanning only for
/// `error`) what arrives meanwhile. Returns how many were sent and how
/// many refused.
async fn pace(
    mut c: Conn,
    interval: Duration,
    phase: Duration,
    until: Instant,
    make: impl Fn() -> Value,
) -> anyhow::Result<(u64, u64)> {
    let (mut sent, mut refused) = (0u64, 0u64);
    let mut next = tokio::time::Instant::now() + phase;
    let until = tokio::time::Instant::from_std(until);
    // One timer, moved on after each send, rather than a new one for each
    // frame read (a fan-out sender reads every message of the room).
    let tick = tokio::time::sleep_until(next);
    tokio::pin!(tick);
    while next < until {
        tokio::select! {
            _ = &mut tick => {
                c.send(make());
                sent += 1;
                next += interval;
                tick.as_mut().reset(next);
            }
            v = c.recv_raw() => match v {
                Ok(f) => {
                    if frame::is_error(f) {
                        refused += 1;
                    }
                }
                Err(_) => {
                    // Cut off (a sender of a busy room reads every message
                    // of it; one that falls behind is a slow consumer).
                    eprintln!("a sender's connection was closed by the server; it stops sending");
                    return Ok((sent, refused));
                }
            }
        }
    }
    // The last replies.
    let drain = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(drain);
    loop {
        tokio::select! {
            _ = &mut drain => break,
            v = c.recv_raw() => match v {
                Ok(v) if frame::is_error(v) => refused += 1,
                Ok(_) => {}
                Err(_) => break,
            },
        }
    }
    Ok((sent, refused))
}

/// A receiver: records every `msg`'s latency until `until` plus a grace.
/// Frames are scanned, not parsed (see [`frame`]), and one timer serves
/// the whole run: at hundreds of thousands of deliveries a second, a
/// `Value` and a timer per frame made the generator the limit.
async fn receive(mut c: Conn, epoch: Instant, until: Instant) -> Histogram<u64> {
    let mut h = stats::histogram();
    let end = tokio::time::sleep_until(tokio::time::Instant::from_std(
        until + Duration::from_secs(2),
    ));
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => return h,
            v = c.recv_raw() => match v {
                Ok(f) => {
                    if let Some(d) = frame::msg_body(f).and_then(|b| latency(epoch, b)) {
                        stats::record(&mut h, d);
                    }
                }
                Err(_) => return h,
            },
        }
    }
}

/// Pairs of mutual contacts, logged in: `(senders, receivers)`.
async fn pairs(o: &Opts, first: usize, n: usize) -> anyhow::Result<(Vec<Conn>, Vec<Conn>)> {
    let conns = bounded(
        o,
        n * 2,
        |i| async move { Ok(session(o, first + i).await?.0) },
    )
    .await?;
    let (mut a, mut b): (Vec<Conn>, Vec<Conn>) = (Vec::new(), Vec::new());
    for (i, c) in conns.into_iter().enumerate() {
        if i % 2 == 0 {
            a.push(c)
        } else {
            b.push(c)
        }
    }
    for (i, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
        let (xn, yn) = (o.user(first + 2 * i), o.user(first + 2 * i + 1));
        x.ok(json!({"type":"contact.add","user":yn})).await?;
        y.ok(json!({"type":"contact.accept","user":xn})).await?;
    }
    Ok((a, b))
}

/// Runs 1:1 traffic at `rate` over `a` -> `b` for `o.duration`; returns
/// the receivers' merged histogram, and sent / refused counts.
async fn one_to_one(
    o: &Opts,
    a: Vec<Conn>,
    b: Vec<Conn>,
    names: Vec<String>,
    rate: f64,
) -> anyhow::Result<(Histogram<u64>, u64, u64)> {
    let n = a.len().max(1);
    let interval = Duration::from_secs_f64(n as f64 / rate.max(1e-9));
    let epoch = Instant::now();
    let until = epoch + o.duration;
    let receivers: Vec<_> = b
        .into_iter()
        .map(|c| tokio::spawn(receive(c, epoch, until)))
        .collect();
    let senders: Vec<_> = a
        .into_iter()
        .zip(names)
        .enumerate()
        .map(|(i, (c, to))| {
            let phase = interval.mul_f64(i as f64 / n as f64);
            tokio::spawn(pace(
                c,
                interval,
                phase,
                until,
                move || json!({"type":"msg.send","to":to,"body":stamp(epoch)}),
            ))
        })
        .collect();
    let (mut sent, mut refused) = (0, 0);
    for s in join_all(senders).await {
        let (x, r) = s??;
        sent += x;
        refused += r;
    }
    let mut h = stats::histogram();
    for r in join_all(receivers).await {
        h.add(r?)?;
    }
    Ok((h, sent, refused))
}

async fn direct(o: &Opts) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let n = (o.users / 2).max(1);
    let (a, b) = pairs(o, 0, n).await?;
    let names = (0..n).map(|i| o.user(2 * i + 1)).collect();
    let (gen, server) = (CpuMeter::start("self"), server_cpu(o));
    let (h, sent, refused) = one_to_one(o, a, b, names, o.rate).await?;
    let m = measured(o, sent, &h, 1, cpu_use(&gen, &server));
    rep.say(format!(
        "direct: {n} pairs, offered {:.0} msg/s, sent {:.0}/s, delivered {:.0}/s, refused {refused}",
        m.offered_rate, m.achieved_rate, m.deliveries_per_s
    ));
    rep.say(format!("  send to delivery: {}", stats::summary(&h)));
    rep.say(cpu_text(m.generator_cpu, m.server_cpu, server.is_some()));
    rep.measured = Some(m);
    Ok(rep)
}

/// The numbers of a rate run: `sent` messages and the receivers'
/// histogram `h` over `o.duration`, each message meant for `receivers`.
fn measured(
    o: &Opts,
    sent: u64,
    h: &Histogram<u64>,
    receivers: usize,
    (generator_cpu, server_cpu): (Option<f64>, Option<f64>),
) -> Measured {
    let secs = o.duration.as_secs_f64().max(1e-9);
    Measured {
        offered_rate: o.rate,
        achieved_rate: sent as f64 / secs,
        deliveries_per_s: h.len() as f64 / secs,
        receivers_per_msg: receivers as f64,
        latency: Latency::of(h),
        generator_cpu,
        server_cpu,
    }
}

/// `o.users` (at least 2) sessions, all members of a new public room;
/// returns them and the room's name.
async fn room_members(o: &Opts) -> anyhow::Result<(Vec<Conn>, String)> {
    let mut members = sessions(o, o.users.max(2)).await?;
    let room = format!("{}room", o.prefix);
    members[0]
        .ok(json!({"type":"room.create","name":room,"public":true}))
        .await?;
    for m in members.iter_mut().skip(1) {
        m.ok(json!({"type":"room.join","name":room})).await?;
    }
    // Let the join events drain before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok((members, room))
}

async fn fanout(o: &Opts) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let (members, room) = room_members(o).await?;
    let senders = o.senders.clamp(1, members.len());
    let interval = Duration::from_secs_f64(senders as f64 / o.rate.max(1e-9));
    let epoch = Instant::now();
    let until = epoch + o.duration;
    let (gen, server) = (CpuMeter::start("self"), server_cpu(o));
    let mut tasks = Vec::new();
    let mut receivers = Vec::new();
    for (i, c) in members.into_iter().enumerate() {
        if i < senders {
            let phase = interval.mul_f64(i as f64 / senders as f64);
            let room = room.clone();
            tasks.push(tokio::spawn(pace(
                c,
                interval,
                phase,
                until,
                move || json!({"type":"msg.send","room":room,"body":stamp(epoch)}),
            )));
        } else {
            receivers.push(tokio::spawn(receive(c, epoch, until)));
        }
    }
    let n_receivers = receivers.len();
    let mut sent = 0;
    for t in join_all(tasks).await {
        sent += t??.0;
    }
    let mut h = stats::histogram();
    for r in join_all(receivers).await {
        h.add(r?)?;
    }
    let m = measured(o, sent, &h, n_receivers, cpu_use(&gen, &server));
    rep.say(format!(
        "fanout: {} members, {senders} senders, {:.0} msg/s sent, {:.0} deliveries/s measured (receivers only)",
        o.users, m.achieved_rate, m.deliveries_per_s
    ));
    rep.say(format!("  send to delivery: {}", stats::summary(&h)));
    rep.say(cpu_text(m.generator_cpu, m.server_cpu, server.is_some()));
    rep.measured = Some(m);
    Ok(rep)
}

async fn login_storm(o: &Opts) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    // Accounts that will log in, and background pairs after them.
    let accounts = o.users.max(1);
    bounded(o, accounts, |i| async move {
        let mut c = connect(o.target(i), o.source(i)).await?;
        register(&mut c, &o.user(i)).await
    })
    .await?;
    let n = 100;
    let (a, b) = pairs(o, accounts, n).await?;
    let names = (0..n).map(|i| o.user(accounts + 2 * i + 1)).collect();
    let (gen, server) = (CpuMeter::start("self"), server_cpu(o));
    let background = one_to_one(o, a, b, names, o.background_rate);
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1e-9));
    let storm = async {
        let start = tokio::time::Instant::now();
        let until = start + o.duration;
        let mut attempts = Vec::new();
        let mut i = 0usize;
        while start + interval.mul_f64(i as f64) < until {
            tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
            let (name, source) = (o.user(i % accounts), o.source(i));
            let target = o.target(i).clone();
            attempts.push(tokio::spawn(async move {
                let t = Instant::now();
                let mut c = connect(&target, source).await?;
                let r = c
                    .request(json!({"type":"login","username":name,"password":PASSWORD,"device":"storm"}))
                    .await?;
                anyhow::Ok((t.elapsed(), r["code"].as_str().unwrap_or("ok").to_owned()))
            }));
            i += 1;
        }
        join_all(attempts).await
    };
    let (bg, attempts) = tokio::join!(background, storm);
    let (h, _, _) = bg?;
    let mut logins = stats::histogram();
    let mut codes = std::collections::BTreeMap::new();
    for a in attempts {
        match a? {
            Ok((d, code)) => {
                if code == "ok" {
                    stats::record(&mut logins, d);
                }
                *codes.entry(code).or_insert(0u64) += 1;
            }
            Err(e) => *codes.entry(format!("failed: {e}")).or_insert(0) += 1,
        }
    }
    let secs = o.duration.as_secs_f64();
    rep.say(format!(
        "login-storm: offered {:.0} password logins/s, {:.1} succeeded/s; outcomes {codes:?}",
        o.rate,
        logins.len() as f64 / secs
    ));
    rep.say(format!("  login time: {}", stats::summary(&logins)));
    rep.say(format!(
        "  background 1:1 at {:.0} msg/s, delivery: {}",
        o.background_rate,
        stats::summary(&h)
    ));
    rep.say(cpu_line(&gen, &server));
    Ok(rep)
}

async fn reconnect(o: &Opts) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let n = o.users.max(1);
    let per_user = o.senders.max(1);
    let room = format!("{}room", o.prefix);
    // The sender owns the room; everyone joins, keeps a token, leaves.
    let (mut sender, _) = session(o, n).await?;
    sender
        .ok(json!({"type":"room.create","name":room,"public":true}))
        .await?;
    let tokens = bounded(o, n, |i| {
        let room = room.clone();
        async move {
            let (mut c, ok) = session(o, i).await?;
            c.ok(json!({"type":"room.join","name":room})).await?;
            Ok(ok["token"].as_str().unwrap_or_default().to_owned())
        }
    })
    .await?;
    // While they are away, messages wait for them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for k in 0..per_user {
        sender
            .ok(json!({"type":"msg.send","room":room,"body":format!("pending {k}")}))
            .await?;
    }
    let (gen, server) = (CpuMeter::start("self"), server_cpu(o));
    let started = Instant::now();
    let results = bounded(o, n, |i| {
        let token = tokens[i].clone();
        async move {
            let mut c = connect(o.target(i), o.source(i)).await?;
            let (_, replay) = c
                .login(json!({"type":"login","username":o.user(i),"token":token}))
                .await?;
            let mut seqs: Vec<u64> = replay.iter().filter_map(|m| m["seq"].as_u64()).collect();
            let total = seqs.len();
            seqs.sort_unstable();
            seqs.dedup();
            Ok((total, seqs.len()))
        }
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let exact = results
        .iter()
        .filter(|(t, u)| *t == per_user && *u == per_user)
        .count();
    rep.say(format!(
        "reconnect: {n} token logins in {secs:.2} s = {:.0}/s; {exact} of {n} sessions replayed exactly the {per_user} pending messages once",
        n as f64 / secs
    ));
    rep.say(cpu_line(&gen, &server));
    Ok(rep)
}

async fn idle(o: &Opts) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let pid = o.server_pid.map(|p| p.to_string());
    let before = pid.as_deref().and_then(stats::rss_kib);
    let conns = sessions(o, o.users).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.as_deref().and_then(stats::rss_kib);
    let (gen, server) = (CpuMeter::start("self"), server_cpu(o));
    // Hold them, pinging well within the idle timeout.
    let until = tokio::time::Instant::now() + o.duration;
    let holders: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => return,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => { c.send(json!({"type":"ping"})); }
                        r = c.recv() => if r.is_err() { return },
                    }
                }
            })
        })
        .collect();
    join_all(holders).await;
    match (before, after) {
        (Some(b), Some(a)) => rep.say(format!(
            "idle: {} sessions, server RSS {b} KiB -> {a} KiB: {:.1} KiB per session",
            o.users,
            a.saturating_sub(b) as f64 / o.users.max(1) as f64
        )),
        _ => rep.say(format!(
            "idle: {} sessions (give --server-pid for memory)",
            o.users
        )),
    }
    rep.say(cpu_line(&gen, &server));
    Ok(rep)
}
