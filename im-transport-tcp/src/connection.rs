//! One TCP (or TLS-over-TCP) connection: line framing in, coalesced writes
//! out.

use std::net::SocketAddr;
use std::time::Duration;

use im_core::transport::{Connection, Inbound, OutboundRx, Outgoing, PeerInfo};
use im_core::Hub;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

/// Bytes gathered from the queue before one write.
const COALESCE: usize = 64 * 1024;
/// After the client stops sending, how long its pending replies may take.
const DRAIN: Duration = Duration::from_secs(10);

pub(crate) async fn run<S>(stream: S, peer: SocketAddr, hub: Hub, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, wr) = tokio::io::split(stream);
    let Connection { inbound, outbound } = hub.connect(PeerInfo {
        addr: Some(peer),
        transport: "tcp",
    });
    let writer = write_loop(wr, outbound);
    tokio::pin!(writer);
    let stopping = tokio::select! {
        _ = &mut writer => return,
        _ = read_loop(rd, &inbound) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    if stopping {
        // The session answers what the client already asked, tells it why
        // and ends the queue; `inbound` lives until then.
        inbound.stopping();
        let _ = tokio::time::timeout(DRAIN, writer).await;
    } else {
        // The client stopped sending: answer what it already asked, then
        // end the session.
        tokio::select! {
            _ = &mut writer => return,
            _ = tokio::time::timeout(DRAIN, inbound.drain()) => {}
        }
        drop(inbound);
        let _ = tokio::time::timeout(DRAIN, writer).await;
    }
}

/// Reads lines until EOF, an error, an oversized line or the session ends.
async fn read_loop(rd: impl AsyncRead + Unpin, inbound: &Inbound) {
    let max = inbound.max_frame();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (found, used) = {
            let buf = match rd.fill_buf().await {
                Ok([]) | Err(_) => return,
                Ok(b) => b,
            };
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&buf[..i]);
                    (true, i + 1)
                }
                None => {
                    line.extend_from_slice(buf);
                    (false, buf.len())
                }
            }
        };
        rd.consume(used);
        // One byte of slack for a `\r` before the `\n`.
        if line.len() > max + 1 || (found && line.len() > max && line.last() != Some(&b'\r')) {
            inbound.too_large();
            return;
        }
        if !found {
            continue;
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > max {
            inbound.too_large();
            return;
        }
        if !line.is_empty() && inbound.frame(&line).await.is_err() {
            return;
        }
        line.clear();
    }
}

/// Writes queued frames, many per `write` call, until told to close.
async fn write_loop(mut wr: impl AsyncWrite + Unpin, mut outbound: OutboundRx) {
    let mut buf: Vec<u8> = Vec::with_capacity(COALESCE);
    loop {
        let mut close = false;
        match outbound.recv().await {
            None => close = true,
            Some(Outgoing::Close(_)) => close = true,
            Some(Outgoing::Frame(f)) => {
                buf.extend_from_slice(f.as_bytes());
                buf.push(b'\n');
                while buf.len() < COALESCE {
                    match outbound.try_recv() {
                        Some(Outgoing::Frame(f)) => {
                            buf.extend_from_slice(f.as_bytes());
                            buf.push(b'\n');
                        }
                        Some(_) => {
                            close = true;
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        if !buf.is_empty() {
            // A client that stopped reading blocks this write; the core
            // then gives up on it (queue full, idle) and we stop too.
            tokio::select! {
                r = wr.write_all(&buf) => if r.is_err() { return },
                _ = outbound.killed() => return,
            }
            buf.clear();
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}
