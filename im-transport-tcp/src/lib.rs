//! # im-transport-tcp
//!
//! Newline-delimited JSON over TCP for [`im_core`]: one frame per line
//! (`\n`, a trailing `\r` tolerated, empty lines ignored), at most
//! `limits.max_frame` bytes per line. A longer line gets `too_large` and the
//! connection is closed.
//!
//! ## Layout
//! - [`serve`]: accept loop with graceful shutdown.
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
use std::time::Duration;

use im_core::Hub;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long shutdown waits for connections to finish writing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `listener` until `shutdown` resolves, then stops accepting, lets
/// every connection finish its pending replies and queued frames (up to a
/// few seconds), and returns.
pub async fn serve<F>(listener: TcpListener, hub: Hub, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn_local(connection::run(stream, peer, hub.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    Ok(())
}
