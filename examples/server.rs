//! The example IM server: TCP (newline-delimited JSON) on 127.0.0.1:7878
//! and HTTP/WebSocket (`/ws`, `/healthz`) on 127.0.0.1:8080.
//!
//! Configuration: built-in defaults, then an optional TOML file
//! (`--config FILE`), then environment variables `IM__SECTION__KEY`
//! (e.g. `IM__LIMITS__MAX_FRAME=131072`). Logs go to stderr, filtered by
//! `RUST_LOG` (default `info`). Ctrl-C or SIGTERM shuts down cleanly.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use im_core::{Config, Hub};
use serde::Deserialize;
use tokio::net::TcpListener;

#[derive(Debug, Deserialize)]
struct Settings {
    tcp: Listen,
    http: Listen,
    store: StoreSettings,
    files: FilesSettings,
    #[serde(default)]
    auth: im_core::config::AuthConfig,
    #[serde(default)]
    limits: im_core::config::Limits,
    #[serde(default)]
    policy: im_core::config::Policy,
    #[serde(default)]
    pool: im_core::config::PoolConfig,
}

#[derive(Debug, Deserialize)]
struct Listen {
    listen: SocketAddr,
}

#[derive(Debug, Deserialize)]
struct StoreSettings {
    url: String,
}

#[derive(Debug, Deserialize)]
struct FilesSettings {
    dir: String,
}

fn load(args: &[String]) -> anyhow::Result<Settings> {
    let mut b = config::Config::builder()
        .set_default("tcp.listen", "127.0.0.1:7878")?
        .set_default("http.listen", "127.0.0.1:8080")?
        .set_default("store.url", "memory:")?
        .set_default("files.dir", "im-files")?;
    match args {
        [] => {}
        [flag, file] if flag == "--config" => {
            b = b.add_source(config::File::new(file, config::FileFormat::Toml));
        }
        _ => bail!("usage: server [--config FILE]"),
    }
    let c = b
        .add_source(
            config::Environment::with_prefix("IM")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()?;
    c.try_deserialize().context("invalid configuration")
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

#[actix_rt::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let s = load(&args)?;
    let store = im_examples::open_store(&s.store.url)?;
    let config = Config {
        auth: s.auth,
        limits: s.limits,
        policy: s.policy,
        pool: s.pool,
    };
    tracing::debug!(files = %s.files.dir, "files are not served by this build yet");
    let hub = Hub::new(config, store);
    let tcp = TcpListener::bind(s.tcp.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.tcp.listen))?;
    let http = std::net::TcpListener::bind(s.http.listen)
        .with_context(|| format!("cannot listen on {}", s.http.listen))?;
    tracing::info!(tcp = %tcp.local_addr()?, http = %http.local_addr()?, store = %s.store.url, "listening");

    // One signal stops both transports; the hub closes every session
    // meanwhile so WebSocket connections end without waiting out a timeout.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tcp_task = im_transport_tcp::serve(tcp, hub.clone(), stopped(stop_rx.clone()));
    let ws_task = im_transport_ws::serve(
        http,
        hub.clone(),
        im_transport_ws::WsConfig::default(),
        stopped(stop_rx),
    );
    let h = hub.clone();
    let signal = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        h.shutdown(Duration::from_secs(3)).await;
    };
    let (tcp_res, ws_res, ()) = tokio::join!(tcp_task, ws_task, signal);
    tcp_res?;
    ws_res?;
    tracing::info!("bye");
    Ok(())
}
