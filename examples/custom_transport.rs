//! A complete custom transport: the IM protocol over a Unix domain socket,
//! one JSON frame per line, on the public boundary of `im-core`.
//!
//! ```text
//! cargo run --example custom_transport -- /tmp/im.sock
//! nc -U /tmp/im.sock
//! ```
//!
//! A transport only moves bytes: it calls `Hub::connect`, hands each frame's
//! bytes to `Inbound::frame` and writes what `OutboundRx::recv` yields. It
//! never parses JSON; limits, sessions and replies are the core's job.

use im_core::transport::{Connection, Outgoing, PeerInfo};
use im_core::{Config, Hub};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

async fn serve_one(stream: UnixStream, hub: Hub) {
    let (rd, mut wr) = stream.into_split();
    let Connection {
        inbound,
        mut outbound,
    } = hub.connect(PeerInfo {
        addr: None,
        transport: "unix",
    });

    // Writer: frames out, one per line, until the session says close.
    let writer = async move {
        while let Some(Outgoing::Frame(f)) = outbound.recv().await {
            let mut line = f.as_bytes().to_vec();
            line.push(b'\n');
            if wr.write_all(&line).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };

    // Reader: lines in. A line longer than the limit is refused by the
    // core (`too_large` and close) — we only have to stop reading it.
    let reader = async {
        let mut lines = BufReader::new(rd);
        let mut line = Vec::new();
        loop {
            line.clear();
            let mut limited = (&mut lines).take(inbound.max_frame() as u64 + 2);
            match limited.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let end = line
                .iter()
                .rposition(|&b| b != b'\n' && b != b'\r')
                .map_or(0, |i| i + 1);
            if line.last() != Some(&b'\n') && end > inbound.max_frame() {
                inbound.too_large();
                break;
            }
            if end > 0 && inbound.frame(&line[..end]).await.is_err() {
                break;
            }
        }
        inbound.drain().await;
    };

    tokio::pin!(writer);
    tokio::select! {
        _ = &mut writer => return,
        _ = reader => {}
    }
    drop(inbound); // ends the session; the writer flushes and stops
    writer.await;
}

#[actix_rt::main]
async fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/im.sock".into());
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let hub = Hub::in_memory(Config::default());
    eprintln!("listening on {path}");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                actix_rt::spawn(serve_one(stream, hub.clone()));
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    hub.shutdown(std::time::Duration::from_secs(2)).await;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
