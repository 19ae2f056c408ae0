//! # im-transport-ws
//!
//! The IM protocol over WebSocket, on actix-web: one JSON frame per text
//! message at `GET /ws`, plus `GET /healthz` and file downloads at
//! `GET /files/<file>`. TCP and WebSocket sessions
//! are the same sessions to the core, so users on either talk to each other.
//!
//! ## Layout
//! - [`routes`]: mount `/ws` and `/healthz` in your own actix-web `App`.
//! - [`serve`]: a ready HTTP server on a bound listener with graceful shutdown.
//! - [`metrics_route`], [`serve_metrics`]: `GET /metrics` from the
//!   application's exporter, on the same server or a listener of its own.
//! - [`WsConfig`]'s `web_client`, [`WebClient`]: the browser client (sources in `web/`, embedded at build
//!   time by `build.rs`), mounted at `/` with a strict
//!   Content-Security-Policy; leave it out or mount your own.
//! - `socket`: one WebSocket connection: frames in, frames out, pings.
//! - `download`: `GET`/`HEAD /files/<file>` with a bearer token or a signed
//!   link, `Range`, `ETag`, and headers that keep uploads from running
//!   script in the web client's origin.
//!
//! ## In your own app
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! # async fn run(hub: im_core::Hub) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     App::new()
//!         .configure(im_transport_ws::routes(hub.clone()))
//!         .route("/hello", web::get().to(|| async { "hi" }))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await
//! # }
//! ```
//!
//! ## Ready-made
//! ```no_run
//! # async fn run(hub: im_core::Hub) -> std::io::Result<()> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
//! let config = im_transport_ws::WsConfig::default();
//! im_transport_ws::serve(listener, hub, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! ## Why actix-ws
//! `actix-web-actors` is deprecated; actix-ws gives a plain `Session` and
//! message stream, so the protocol session stays an im-core actor and this
//! crate only converts frames. actix-ws's `Session::text` waits when its
//! channel is full, so only this crate's per-connection writer task awaits
//! it, draining the core's bounded outbound queue: a tab that stops reading
//! fills that queue and is disconnected, never buffered without bound.

#![warn(missing_docs)]

mod download;
mod metrics;
mod socket;
mod webclient;

pub use metrics::{metrics_route, serve_metrics, RenderMetrics};
pub use webclient::{WebClient, CONTENT_SECURITY_POLICY};

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use im_core::Hub;
use serde::Serialize;

/// Settings of the ready-made server.
#[derive(Clone)]
pub struct WsConfig {
    /// HTTP worker threads (default: the number of CPUs).
    pub workers: usize,
    /// Seconds to let connections finish at shutdown (default 5).
    pub shutdown_timeout_secs: u64,
    /// The web client to serve at `/`, after the other routes (default:
    /// the embedded one; `None` serves none).
    pub web_client: Option<WebClient>,
    /// Serve `GET /metrics` with this renderer (default: none).
    pub metrics: Option<RenderMetrics>,
    /// HTTPS (and so WSS) on the listener (default: none, plain HTTP). A
    /// certificate resolver in it can swap certificates without a restart.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for WsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConfig")
            .field("workers", &self.workers)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("web_client", &self.web_client)
            .field("metrics", &self.metrics.is_some())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            shutdown_timeout_secs: 5,
            web_client: Some(WebClient::embedded()),
            metrics: None,
            tls: None,
        }
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    server: &'static str,
    sessions: usize,
}

async fn healthz(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        server: im_core::protocol::SERVER_NAME,
        sessions: hub.session_count(),
    })
}

/// Fires when [`serve`]'s shutdown does, so its WebSocket connections say
/// `closing` `shutdown` before the HTTP server stops (absent when our
/// routes are mounted in an integrator's `App`).
#[derive(Clone)]
struct Stopping(tokio::sync::watch::Receiver<bool>);

async fn ws(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Hub>,
    stopping: Option<web::Data<Stopping>>,
) -> actix_web::Result<HttpResponse> {
    let (resp, session, stream) = actix_ws::handle(&req, body)?;
    let peer = req.peer_addr();
    let stop = stopping.map(|s| s.0.clone());
    actix_rt::spawn(socket::run(
        hub.get_ref().clone(),
        peer,
        (session, stream),
        stop,
    ));
    Ok(resp)
}

/// Our routes for an actix-web `App`: `GET /ws` and `GET /healthz`.
pub fn routes(hub: Hub) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(hub))
            .route("/ws", web::get().to(ws))
            .route("/healthz", web::get().to(healthz))
            .route("/files/{file}", web::get().to(download::download))
            .route("/files/{file}", web::head().to(download::download));
    }
}

/// Serves [`routes`] (and the web client, as `config` says) on `listener`
/// until `shutdown` resolves, then stops accepting, tells every WebSocket
/// client `closing` `shutdown` after its pending replies, and gives
/// connections `shutdown_timeout_secs` to finish.
pub async fn serve<F>(
    listener: std::net::TcpListener,
    hub: Hub,
    config: WsConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let h = hub.clone();
    let web_client = config.web_client.clone();
    let render = config.metrics.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = web::Data::new(Stopping(stop_rx));
    let server = actix_web::HttpServer::new(move || {
        let mut app = actix_web::App::new()
            .app_data(stopping.clone())
            .configure(routes(h.clone()));
        if let Some(r) = render.clone() {
            app = app.configure(metrics_route(r));
        }
        match web_client.clone() {
            Some(w) => app.configure(w.routes()),
            None => app,
        }
    })
    .workers(config.workers.max(1))
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout_secs);
    let server = match config.tls {
        Some(tls) => server.listen_rustls_0_23(listener, (*tls).clone())?,
        None => server.listen(listener)?,
    }
    .run();
    let handle = server.handle();
    let running = actix_rt::spawn(server);
    shutdown.await;
    // WebSocket sessions close with `closing` `shutdown`; the graceful stop
    // below then waits for them (up to `shutdown_timeout_secs`).
    let _ = stop_tx.send(true);
    handle.stop(true).await;
    let _ = running.await;
    Ok(())
}
