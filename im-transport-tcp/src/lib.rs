//! # im-transport-tcp
//!
//! Newline-delimited JSON over TCP for [`im_core`]: one frame per line
//! (`\n`, a trailing `\r` tolerated, empty lines ignored), at most
//! `limits.max_frame` bytes per line. A longer line gets `too_large` and the
//! connection is closed.
//!
//! With [`TcpConfig::tls`] set, every connection is TLS first (rustls):
//! a client that speaks plain text to it gets no protocol, only a failed
//! handshake. The certificate comes from the `rustls::ServerConfig`, so a
//! certificate resolver there can swap certificates without a restart.
//!
//! ## Layout
//! - [`serve`], [`serve_with`]: accept loop with graceful shutdown.
//! - `connection`: one connection: a line reader feeding the session and a
//!   writer that coalesces queued frames into few `write` calls.
//!
//! ```no_run
//! # async fn run(hub: im_core::Hub) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! im_transport_tcp::serve(listener, hub, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//! Call it from inside an actix system (e.g. under `#[actix_rt::main]`):
//! sessions are actors started on the current arbiter.

#![warn(missing_docs)]

mod connection;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use im_core::Hub;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long shutdown waits for connections to finish writing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the listener serves connections.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// TLS for every connection (default: none, plain text).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A TLS handshake not finished by then is dropped (default 5 s).
    pub handshake_timeout: Duration,
    /// TLS handshakes in progress at once; a connection arriving past it
    /// is dropped at once (default 256), so sockets that never finish one
    /// cannot pile up before the hub's connection caps apply.
    pub max_handshakes: usize,
    /// TLS handshakes in progress at once from one peer address (default
    /// 16): one address cannot take the whole budget.
    pub max_handshakes_per_peer: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            tls: None,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: 256,
            max_handshakes_per_peer: 16,
        }
    }
}

/// Serves `listener` in plain text until `shutdown` resolves, then stops
/// accepting, lets every connection finish its pending replies and queued
/// frames (up to a few seconds), and returns.
pub async fn serve<F>(listener: TcpListener, hub: Hub, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    serve_with(listener, hub, TcpConfig::default(), shutdown).await
}

/// [`serve`], with TLS when `config` has it.
pub async fn serve_with<F>(
    listener: TcpListener,
    hub: Hub,
    config: TcpConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let tls = config.tls.map(tokio_rustls::TlsAcceptor::from);
    let handshakes = Handshakes::new(config.max_handshakes, config.max_handshakes_per_peer);
    let (stop_tx, stop_rx) = watch::channel(false);
    // One clone per live connection.
    let live = Arc::new(());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = match stream.into_std() {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not hand a connection over");
                            continue;
                        }
                    };
                    let permit = match &tls {
                        None => None,
                        Some(_) => match handshakes.admit(peer.ip()) {
                            Some(p) => Some(p),
                            None => {
                                tracing::debug!(%peer, "too many TLS handshakes in progress");
                                continue;
                            }
                        },
                    };
                    let (h, stop, tls) = (hub.clone(), stop_rx.clone(), tls.clone());
                    let (timeout, held) = (config.handshake_timeout, live.clone());
                    // The connection's I/O and its session run on one of the
                    // hub's arbiters, its socket registered there.
                    hub.next_arbiter().spawn(async move {
                        let _held = held;
                        let Ok(stream) = TcpStream::from_std(stream) else {
                            return;
                        };
                        match tls {
                            None => connection::run(stream, peer, h, stop).await,
                            Some(a) => handshake(a, timeout, permit, stream, peer, h, stop).await,
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while Arc::strong_count(&live) > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    Ok(())
}

/// Completes the TLS handshake (within `timeout`), then serves the
/// connection; a client that fails it is dropped without a word.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
    permit: Option<HandshakePermit>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    hub: Hub,
    stop: watch::Receiver<bool>,
) {
    let done = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
    drop(permit);
    match done {
        Ok(Ok(tls)) => connection::run(tls, peer, hub, stop).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// TLS handshakes in progress: in all, and per peer address.
#[derive(Clone)]
struct Handshakes {
    total: Arc<tokio::sync::Semaphore>,
    per_peer: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    max_per_peer: usize,
}

/// One handshake's place; given back when dropped.
struct HandshakePermit {
    _total: tokio::sync::OwnedSemaphorePermit,
    ip: std::net::IpAddr,
    per_peer: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

impl Handshakes {
    fn new(max: usize, max_per_peer: usize) -> Handshakes {
        Handshakes {
            total: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
            per_peer: Arc::default(),
            max_per_peer: max_per_peer.max(1),
        }
    }

    /// A place for a handshake from `ip`, unless either cap is reached.
    fn admit(&self, ip: std::net::IpAddr) -> Option<HandshakePermit> {
        let mut map = self.per_peer.lock().ok()?;
        if map.get(&ip).copied().unwrap_or(0) >= self.max_per_peer {
            return None;
        }
        let total = self.total.clone().try_acquire_owned().ok()?;
        *map.entry(ip).or_insert(0) += 1;
        Some(HandshakePermit {
            _total: total,
            ip,
            per_peer: self.per_peer.clone(),
        })
    }
}

impl Drop for HandshakePermit {
    fn drop(&mut self) {
        if let Ok(mut map) = self.per_peer.lock() {
            if let Some(n) = map.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}
