//! TLS on both transports of the real example server, with certificates
//! made at test time: TCP, HTTPS and WSS work; a plain-text client gets no
//! protocol; a renewed certificate is served without a restart (SIGHUP, or
//! just new files).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use im_tests::process::ServerProcess;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost`; returns its DER.
fn make_cert(dir: &Path) -> Vec<u8> {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.key_pair.serialize_pem()).unwrap();
    c.cert.der().to_vec()
}

fn tls_server(dir: &Path) -> ServerProcess {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    ServerProcess::start(
        dir,
        &[
            ("IM__TCP__TLS_CERT", &cert),
            ("IM__TCP__TLS_KEY", &key),
            ("IM__HTTP__TLS_CERT", &cert),
            ("IM__HTTP__TLS_KEY", &key),
        ],
    )
}

/// A TLS connector for `localhost` trusting only the certificates given
/// (DER).
fn connector(trusted: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for der in trusted {
        roots.add(CertificateDer::from(der.to_vec())).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS connection trusting only `trusted`; returns it and the
/// certificate the server presented.
async fn connect(addr: std::net::SocketAddr, trusted: &[u8]) -> (TlsStream<TcpStream>, Vec<u8>) {
    let connector = connector(&[trusted]);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (tls, presented)
}

async fn first_line(s: &mut TlsStream<TcpStream>) -> String {
    let mut line = String::new();
    let mut r = BufReader::new(s);
    tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line))
        .await
        .expect("a line in time")
        .unwrap();
    line
}

#[tokio::test]
async fn tcp_https_and_wss_speak_tls() {
    let dir = tempfile::tempdir().unwrap();
    let der = make_cert(dir.path());
    let srv = tls_server(dir.path());

    // TCP: hello, then a request and its reply.
    let (mut tcp, presented) = connect(srv.addr, &der).await;
    assert_eq!(presented, der);
    assert!(first_line(&mut tcp).await.contains("\"type\":\"hello\""));
    tcp.write_all(b"{\"type\":\"ping\",\"id\":1}\n")
        .await
        .unwrap();
    assert_eq!(
        first_line(&mut tcp).await.trim(),
        r#"{"type":"pong","id":1}"#
    );

    // HTTPS.
    let (mut https, _) = connect(srv.http, &der).await;
    https
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    https.read_to_string(&mut resp).await.ok();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"status\":\"ok\""), "{resp}");

    // WSS.
    let (wss, _) = connect(srv.http, &der).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", wss)
        .await
        .expect("WebSocket upgrade over TLS");
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""));
    ws.send(r#"{"type":"ping","id":2}"#.into()).await.unwrap();
    let pong = ws.next().await.unwrap().unwrap();
    assert_eq!(pong.to_text().unwrap(), r#"{"type":"pong","id":2}"#);
}

#[tokio::test]
async fn a_plain_text_client_gets_no_protocol() {
    let dir = tempfile::tempdir().unwrap();
    make_cert(dir.path());
    let srv = tls_server(dir.path());
    for addr in [srv.addr, srv.http] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s
            .write_all(b"{\"type\":\"ping\"}\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        let text = String::from_utf8_lossy(&got);
        assert!(
            !text.contains("hello") && !text.contains("pong") && !text.contains("200 OK"),
            "{addr}: {text:?}"
        );
    }
}

/// Waits until a new connection is served `new` instead of `old`.
async fn served(addr: std::net::SocketAddr, old: &[u8], new: &[u8], within: Duration) {
    let started = Instant::now();
    while presented(addr, old, new).await != new {
        assert!(
            started.elapsed() < within,
            "{addr}: still the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection that trusts either certificate, to see which is served.
async fn presented(addr: std::net::SocketAddr, a: &[u8], b: &[u8]) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector(&[a, b])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert(dir.path());
    let srv = tls_server(dir.path());
    let (mut kept, _) = connect(srv.addr, &first).await;
    assert!(first_line(&mut kept).await.contains("hello"));

    // New files and SIGHUP: the next connections get the new certificate.
    let second = make_cert(dir.path());
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &srv.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    served(srv.addr, &first, &second, Duration::from_secs(4)).await;
    served(srv.http, &first, &second, Duration::from_secs(1)).await;
    // The connection made before is untouched.
    kept.write_all(b"{\"type\":\"ping\",\"id\":3}\n")
        .await
        .unwrap();
    assert!(first_line(&mut kept).await.contains("pong"));

    // New files alone are noticed within the polling interval (5 s).
    std::thread::sleep(Duration::from_millis(1100)); // a new mtime on coarse clocks
    let third = make_cert(dir.path());
    served(srv.addr, &second, &third, Duration::from_secs(15)).await;
    served(srv.http, &second, &third, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sockets_that_never_finish_a_handshake_cannot_keep_others_out() {
    let dir = tempfile::tempdir().unwrap();
    let der = make_cert(dir.path());
    let srv = tls_server(dir.path());
    // One address opens many sockets and never says a word.
    let mut silent = Vec::new();
    for _ in 0..40 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        silent.push(s.connect(srv.addr).await.unwrap());
    }
    // Past its share, that address's next connection is dropped at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = silent.pop().unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    // Another address still completes a handshake and gets the protocol.
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = s.connect(srv.addr).await.unwrap();
    let mut tls = tokio::time::timeout(
        Duration::from_secs(2),
        connector(&[&der]).connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert!(first_line(&mut tls).await.contains("hello"));
}
