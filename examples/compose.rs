//! The README's "server in 30 lines": TCP and WebSocket on a SQLite store.
//! Kept as an example so CI proves it compiles.

use im_core::{Config, Hub};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.limits.max_body = 4096;
    config.policy.dm_requires_contact = false;
    // Opening runs migrations: do it before the async runtime starts.
    let store = im_store::open("sqlite://chat.db", &im_store::StoreOptions::default())?;
    let files = std::sync::Arc::new(im_store::FsBlobStore::open("chat-files")?);

    actix_rt::System::new().block_on(async move {
        // Actors start on this actix system.
        let hub = Hub::builder(store, files).config(config).start();
        let tcp = tokio::net::TcpListener::bind("0.0.0.0:7878").await?;
        let http = std::net::TcpListener::bind("0.0.0.0:8080")?;
        // On Ctrl-C the hub tells every client `closing` `shutdown`, then
        // the listeners stop.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let h = hub.clone();
        actix_rt::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            h.shutdown(std::time::Duration::from_secs(2)).await;
            let _ = stop_tx.send(true);
        });
        let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let ws =
            im_transport_ws::serve(http, hub.clone(), Default::default(), stop(stop_rx.clone()));
        let tcp = im_transport_tcp::serve(tcp, hub, stop(stop_rx));
        let (a, b) = tokio::join!(tcp, ws);
        a.and(b)
    })?;
    Ok(())
}
