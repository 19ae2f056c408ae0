//! The README's "server in 20 lines": TCP and WebSocket on a SQLite store.
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
        let stop = || async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let ws = im_transport_ws::serve(http, hub.clone(), Default::default(), stop());
        let (a, b) = tokio::join!(im_transport_tcp::serve(tcp, hub.clone(), stop()), ws);
        hub.shutdown(std::time::Duration::from_secs(2)).await;
        a.and(b)
    })?;
    Ok(())
}
