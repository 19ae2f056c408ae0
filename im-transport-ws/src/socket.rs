//! One WebSocket connection.

use std::net::SocketAddr;
use std::time::Duration;

use actix_ws::{AggregatedMessage, CloseCode, CloseReason as WsClose, Session};
use bytestring::ByteString;
use im_core::transport::{CloseReason, Connection, Inbound, OutboundRx, Outgoing, PeerInfo};
use im_core::Hub;
use tokio::sync::watch;

/// After the client stops sending, how long its pending replies may take.
const DRAIN: Duration = Duration::from_secs(10);

pub(crate) async fn run(
    hub: Hub,
    peer: Option<SocketAddr>,
    (session, stream): (Session, actix_ws::MessageStream),
    stop: Option<watch::Receiver<bool>>,
) {
    let Connection { inbound, outbound } = hub.connect(PeerInfo {
        addr: peer,
        transport: "ws",
    });
    let max = inbound.max_frame();
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    // Server pings keep idle browser tabs alive (their pongs count as
    // activity) and a peer that stops answering hits the idle timeout.
    let idle = hub.config().limits.idle_timeout_secs.max(1);
    let ping_every = Duration::from_millis(idle * 1000 / 3);
    let writer = write_loop(session.clone(), outbound);
    tokio::pin!(writer);
    let read = read_loop(session, stream, &inbound, ping_every);
    let stopped = async {
        match stop {
            Some(mut rx) => {
                let _ = rx.wait_for(|s| *s).await;
            }
            None => std::future::pending().await,
        }
    };
    let stopping = tokio::select! {
        _ = &mut writer => return,
        _ = read => false,
        _ = stopped => true,
    };
    if stopping {
        // The session answers what the client already asked, tells it why
        // and ends the queue; `inbound` lives until then.
        inbound.stopping();
        let _ = tokio::time::timeout(DRAIN, writer).await;
    } else {
        // The client went away: answer what it already asked, then end
        // the session.
        let _ = tokio::time::timeout(DRAIN, inbound.drain()).await;
        drop(inbound);
        let _ = tokio::time::timeout(DRAIN, writer).await;
    }
}

async fn read_loop(
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    inbound: &Inbound,
    ping_every: Duration,
) {
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    loop {
        let msg = tokio::select! {
            m = stream.recv() => m,
            _ = ping.tick() => {
                if session.ping(b"").await.is_err() {
                    return;
                }
                continue;
            }
        };
        match msg {
            None => return,
            Some(Err(actix_ws::ProtocolError::Overflow)) => {
                inbound.too_large();
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket protocol error");
                return;
            }
            Some(Ok(AggregatedMessage::Text(t))) => {
                if inbound.frame(t.as_bytes()).await.is_err() {
                    return;
                }
            }
            Some(Ok(AggregatedMessage::Binary(_))) => inbound.not_text(),
            Some(Ok(AggregatedMessage::Ping(b))) => {
                inbound.touch();
                if session.pong(&b).await.is_err() {
                    return;
                }
            }
            Some(Ok(AggregatedMessage::Pong(_))) => inbound.touch(),
            Some(Ok(AggregatedMessage::Close(_))) => return,
        }
    }
}

async fn write_loop(mut session: Session, mut outbound: OutboundRx) {
    loop {
        match outbound.recv().await {
            Some(Outgoing::Frame(f)) => {
                // Shares the encoded bytes; only checks they are UTF-8.
                let Ok(text) = ByteString::try_from(f.bytes()) else {
                    continue;
                };
                // Waits while actix-ws's channel is full (a tab not
                // reading); the core then cuts the client off and so do we.
                tokio::select! {
                    r = session.text(text) => if r.is_err() { return },
                    // Dropping the session ends the response stream.
                    _ = outbound.killed() => return,
                }
            }
            Some(Outgoing::Close(reason)) => {
                let code = match reason {
                    CloseReason::TooLarge => CloseCode::Size,
                    CloseReason::Protocol | CloseReason::RateLimited => CloseCode::Policy,
                    CloseReason::TooSlow | CloseReason::ServerFull => CloseCode::Again,
                    CloseReason::Shutdown => CloseCode::Away,
                    _ => CloseCode::Normal,
                };
                // The close frame carries the `closing` frame's reason.
                let description = reason.text().map(str::to_owned);
                let _ = session.close(Some(WsClose { code, description })).await;
                return;
            }
            None => {
                let _ = session.close(Some(CloseCode::Normal.into())).await;
                return;
            }
        }
    }
}
