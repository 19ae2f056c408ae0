//! The example IM server: TCP (newline-delimited JSON) on 127.0.0.1:7878
//! and HTTP/WebSocket (`/ws`, `/healthz`, the web client at `/`) on
//! 127.0.0.1:8080.
//!
//! Configuration: built-in defaults, then an optional TOML file
//! (`--config FILE`), then environment variables `IM__SECTION__KEY`
//! (e.g. `IM__LIMITS__MAX_FRAME=131072`); `examples/server.toml` lists
//! every key, and `--check-config` validates without starting. Logs go to stderr, filtered by
//! `RUST_LOG` (default `info`). Ctrl-C or SIGTERM shuts down cleanly.

use std::time::Duration;

use anyhow::{bail, Context as _};
use im_core::Hub;
use im_examples::settings::{self, Settings};
use tokio::net::TcpListener;

/// What the command line asks for.
enum Command {
    Serve,
    CheckConfig,
    UserAdd(String),
    UserSuspend(String),
    UserReinstate(String),
    UserList,
}

const USAGE: &str = "usage: server [--config FILE] [--check-config | user add NAME | user suspend NAME | user reinstate NAME | user list]";

fn parse_args(mut args: &[String]) -> anyhow::Result<(Option<String>, Command)> {
    let mut file = None;
    if let [flag, f, rest @ ..] = args {
        if flag == "--config" {
            file = Some(f.clone());
            args = rest;
        }
    }
    let cmd = match args {
        [] => Command::Serve,
        [c] if c == "--check-config" => Command::CheckConfig,
        [u, add, name] if u == "user" && add == "add" => Command::UserAdd(name.clone()),
        [u, s, name] if u == "user" && s == "suspend" => Command::UserSuspend(name.clone()),
        [u, r, name] if u == "user" && r == "reinstate" => Command::UserReinstate(name.clone()),
        [u, l] if u == "user" && l == "list" => Command::UserList,
        _ => bail!(USAGE),
    };
    Ok((file, cmd))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}

/// The admin CLI: acts on the configured store directly, so it works
/// whether or not a server is running. A running server notices a
/// suspension within `auth.suspension_poll_secs` (2 s) and closes the
/// account's sessions.
fn admin(
    cmd: Command,
    store: std::sync::Arc<dyn im_core::Store>,
    s: &Settings,
) -> anyhow::Result<()> {
    use im_core::UserId;
    let user = |name: &str| {
        UserId::parse(name).with_context(|| format!("{name:?} is not a valid username"))
    };
    let exists = |u: &UserId| -> anyhow::Result<()> {
        store
            .user(u)?
            .with_context(|| format!("no such user {u}"))?;
        Ok(())
    };
    match cmd {
        Command::Serve | Command::CheckConfig => unreachable!("handled by main"),
        Command::UserAdd(name) => {
            let u = user(&name)?;
            let mut pw = String::new();
            std::io::stdin()
                .read_line(&mut pw)
                .context("reading the password from stdin")?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            match im_core::admin::add_user(&*store, u.as_str(), pw, s.auth.bcrypt_cost) {
                Ok(u) => println!("added {u}"),
                Err(e) => bail!("{e}"),
            }
        }
        Command::UserSuspend(name) => {
            let u = user(&name)?;
            exists(&u)?;
            store.set_suspended(&u, true)?;
            store.revoke_all_devices(&u, None)?;
            println!("suspended {u}");
        }
        Command::UserReinstate(name) => {
            let u = user(&name)?;
            exists(&u)?;
            store.set_suspended(&u, false)?;
            println!("reinstated {u}");
        }
        Command::UserList => {
            println!(
                "{:<32} {:<10} {:>15} {:>15}",
                "user", "standing", "created", "last_seen"
            );
            for r in store.list_users()? {
                println!(
                    "{:<32} {:<10} {:>15} {:>15}",
                    r.name.as_str(),
                    if r.suspended { "suspended" } else { "good" },
                    r.created_at,
                    r.last_seen
                        .map_or_else(|| "-".to_owned(), |t| t.to_string())
                );
            }
        }
    }
    Ok(())
}

/// `--check-config`: the settings loaded (or `main` already failed with
/// what is wrong); says what the server would use, opens nothing.
fn check_config(s: &Settings) -> anyhow::Result<()> {
    if let Some(dir) = &s.http.web_dir {
        anyhow::ensure!(
            dir.is_dir(),
            "http.web_dir {} is not a directory",
            dir.display()
        );
    }
    s.tcp.certs()?;
    s.http.certs()?;
    println!(
        "configuration OK: tcp {}, http {}, store {}, files in {}",
        s.tcp.listen,
        s.http.listen,
        settings::redact_url(&s.store.url),
        s.files.dir
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, as `[log]` says; `RUST_LOG` overrides `log.level`.
fn init_logs(log: &settings::LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| log.level.as_str().into());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        settings::LogFormat::Text => fmt.init(),
        settings::LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, cmd) = parse_args(&args)?;
    let s = settings::load(file.as_deref().map(std::path::Path::new), std::env::vars())?;
    init_logs(&s.log);
    if matches!(cmd, Command::CheckConfig) {
        return check_config(&s);
    }
    let store = im_examples::open_store(&s.store.url, &s.store.options()?)
        .with_context(|| format!("cannot open store {}", settings::redact_url(&s.store.url)))?;
    // Opening the store and the admin commands run before any async
    // runtime exists: nothing blocking ever runs on a runtime thread.
    if !matches!(cmd, Command::Serve) {
        return admin(cmd, store, &s);
    }
    // Certificates are read here too, before the runtime exists.
    let certs = (s.tcp.certs()?, s.http.certs()?);
    actix_rt::System::new().block_on(serve(s, store, certs))
}

/// Connects the hub to the other nodes when `cluster.nats_url` is set.
#[cfg(feature = "cluster")]
async fn join_cluster(
    builder: im_core::HubBuilder,
    c: &settings::ClusterSettings,
) -> anyhow::Result<im_core::HubBuilder> {
    let Some(url) = &c.nats_url else {
        return Ok(builder);
    };
    let bus = im_core::cluster::NatsBus::connect(url, &c.name).await?;
    tracing::info!(nats = %settings::redact_url(url), cluster = %c.name, "joined the cluster");
    Ok(builder.bus(std::sync::Arc::new(bus)))
}

/// Without the `cluster` feature a NATS URL is a mistake, not a hint.
#[cfg(not(feature = "cluster"))]
async fn join_cluster(
    builder: im_core::HubBuilder,
    c: &settings::ClusterSettings,
) -> anyhow::Result<im_core::HubBuilder> {
    match &c.nats_url {
        None => Ok(builder),
        Some(_) => anyhow::bail!(
            "cluster.nats_url is set, but this server was built without clustering: \
             cargo run --release --example server --features cluster"
        ),
    }
}

/// The TCP and HTTP listeners' certificates, when TLS is configured.
type Certs = (
    Option<std::sync::Arc<im_examples::tls::Certs>>,
    Option<std::sync::Arc<im_examples::tls::Certs>>,
);

async fn serve(
    s: Settings,
    store: std::sync::Arc<dyn im_core::Store>,
    (tcp_certs, http_certs): Certs,
) -> anyhow::Result<()> {
    let config = s.core();
    // Before the hub starts, so that it registers its metrics with it.
    let render = match s.metrics.enabled {
        true => Some(im_examples::metrics::install()?),
        false => None,
    };
    let blobs = im_examples::FsBlobStore::open(&s.files.dir)
        .with_context(|| format!("cannot use files.dir {}", s.files.dir))?;
    let builder = Hub::builder(store, std::sync::Arc::new(blobs)).config(config);
    let hub = join_cluster(builder, &s.cluster).await?.start();
    let tcp = TcpListener::bind(s.tcp.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.tcp.listen))?;
    let http = std::net::TcpListener::bind(s.http.listen)
        .with_context(|| format!("cannot listen on {}", s.http.listen))?;
    tracing::info!(tcp = %tcp.local_addr()?, http = %http.local_addr()?, store = %settings::redact_url(&s.store.url), "listening");
    let metrics_listener = match (&render, s.metrics.listen) {
        (Some(_), Some(addr)) => {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(metrics = %l.local_addr()?, "metrics on their own listener");
            Some(l)
        }
        _ => None,
    };

    // One signal stops both transports; the hub closes every session
    // meanwhile so WebSocket connections end without waiting out a timeout.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tcp_config = im_transport_tcp::TcpConfig {
        tls: tcp_certs.as_ref().map(|c| c.server_config()),
        ..Default::default()
    };
    let tcp_task =
        im_transport_tcp::serve_with(tcp, hub.clone(), tcp_config, stopped(stop_rx.clone()));
    let certs: Vec<_> = tcp_certs.iter().chain(http_certs.iter()).cloned().collect();
    let reload = im_examples::tls::reloader(certs, Duration::from_secs(5));
    let ws_task = im_transport_ws::serve(
        http,
        hub.clone(),
        im_transport_ws::WsConfig {
            web_client: s.http.web_client(),
            metrics: render.clone().filter(|_| metrics_listener.is_none()),
            tls: http_certs.as_ref().map(|c| c.server_config()),
            shutdown_timeout_secs: 1,
            ..Default::default()
        },
        stopped(stop_rx.clone()),
    );
    let metrics_task = async {
        match (metrics_listener, render) {
            (Some(l), Some(r)) => im_transport_ws::serve_metrics(l, r, stopped(stop_rx)).await,
            _ => Ok(()),
        }
    };
    let h = hub.clone();
    let grace = Duration::from_secs(s.limits.shutdown_grace_secs);
    let signal = async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = reload => {}
        }
        // Sessions first: requests already read are answered and every
        // client is told `closing` `shutdown`; new connections are told
        // the same. Then the listeners stop, with little left to wait for.
        h.shutdown(grace.mul_f64(0.8)).await;
        let _ = stop_tx.send(true);
    };
    let (tcp_res, ws_res, metrics_res, ()) = tokio::join!(tcp_task, ws_task, metrics_task, signal);
    tcp_res?;
    ws_res?;
    metrics_res?;
    tracing::info!("bye");
    Ok(())
}
