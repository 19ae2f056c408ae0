//! `GET /metrics`: whatever text the application's metrics exporter
//! renders (the Prometheus text exposition format, for the example
//! server's exporter), on the HTTP server or on a listener of its own so
//! it need not be public.

use std::future::Future;
use std::sync::Arc;

use actix_web::{web, HttpResponse};

/// Renders the current metrics as text.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

struct Render(RenderMetrics);

async fn metrics(render: web::Data<Render>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body((render.0)())
}

/// `GET /metrics`, answered by `render`.
pub fn metrics_route(render: RenderMetrics) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(Render(render)))
            .route("/metrics", web::get().to(metrics));
    }
}

/// Serves only `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics<F>(
    listener: std::net::TcpListener,
    render: RenderMetrics,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(metrics_route(render.clone()))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let running = actix_rt::spawn(server);
    shutdown.await;
    handle.stop(true).await;
    let _ = running.await;
    Ok(())
}
