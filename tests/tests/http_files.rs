//! docs/PROTOCOL.md "Files", the HTTP side: `GET`/`HEAD /files/<file>` on the
//! WebSocket transport's server (bearer tokens, signed links from
//! `file.url`, ranges, ETags, the headers that keep uploads from running),
//! a 10 MiB file across TCP, WebSocket and HTTP, hostile file names, and
//! the real server binary keeping files in `files.dir` across a restart.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use im_tests::process::ServerProcess;
use im_tests::*;
use serde_json::json;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn token(c: &Client) -> String {
    c.token.clone().expect("logged in")
}

/// GET /files/<file> with the client's token.
async fn get(srv: &TestServer, c: &Client, file: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let auth = bearer(&token(c));
    let mut h = vec![("Authorization", auth.as_str())];
    h.extend_from_slice(extra);
    http_get(srv.http, &format!("/files/{file}"), &h).await
}

/// alice and bob, mutual contacts, both online (over TCP).
async fn pair(srv: &TestServer) -> (Client, Client) {
    let mut a = srv.user("alice").await;
    let mut b = srv.user("bob").await;
    srv.befriend(&mut a, &mut b).await;
    (a, b)
}

fn same_bytes(got: &[u8], want: &[u8], what: &str) {
    assert!(
        got == want,
        "{what}: {} bytes (sha256 {}), expected {} bytes (sha256 {})",
        got.len(),
        sha256_hex(got),
        want.len(),
        sha256_hex(want)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mib_file_round_trips_over_tcp_websocket_and_http() {
    const SIZE: usize = 10 << 20;
    let srv = TestServer::builder()
        .config(|c| c.limits.max_file = SIZE as u64)
        .start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(SIZE, 42);
    // Over TCP, every chunk sent without waiting for its ok.
    let f = a
        .upload_pipelined("big.bin", Some("application/octet-stream"), &data)
        .await;
    let st = a.ok(json!({"type":"file.status","file":f})).await;
    assert_eq!(
        (&st["received"], &st["size"], &st["done"]),
        (&json!(SIZE), &json!(SIZE), &json!(true))
    );
    // Over WebSocket with file.read, on another device.
    let mut w = Client::connect_ws(srv.http).await;
    w.login_device("alice", PASSWORD, "web").await;
    same_bytes(&w.download(&f).await, &data, "file.read over WebSocket");
    // Over HTTP, with either device's token.
    for c in [&a, &w] {
        let r = get(&srv, c, &f, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(SIZE.to_string().as_str()));
        same_bytes(&r.body, &data, "GET /files");
    }
    // One byte over max_file is refused.
    a.err(
        json!({"type":"file.begin","name":"bigger.bin","size":SIZE + 1}),
        "too_large",
    )
    .await;
}

#[tokio::test]
async fn head_gives_the_headers_without_the_body() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(5000, 1);
    let f = a.upload("pic.png", Some("image/png"), &data).await;
    let auth = bearer(&token(&a));
    let path = format!("/files/{f}");
    let g = http_get(srv.http, &path, &[("Authorization", &auth)]).await;
    let h = http_request(srv.http, "HEAD", &path, &[("Authorization", &auth)]).await;
    assert_eq!(g.status, 200);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty(), "HEAD sent {} body bytes", h.body.len());
    assert_eq!(h.header("content-length"), Some("5000"));
    assert_eq!(h.header("etag"), g.header("etag"));
    assert!(h.header("etag").is_some());
    for k in [
        "content-type",
        "x-content-type-options",
        "content-security-policy",
        "content-disposition",
    ] {
        assert_eq!(h.header(k), g.header(k), "{k}");
    }
    assert_eq!(h.header("content-type"), Some("image/png"));
    // HEAD is refused like GET.
    let r = http_request(srv.http, "HEAD", &path, &[]).await;
    assert_eq!(r.status, 401);
    let r = http_request(
        srv.http,
        "HEAD",
        "/files/f-00000000000000000000000000000000",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn range_requests() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(1000, 2);
    let f = a.upload("clip.mp4", Some("video/mp4"), &data).await;
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=10-10", 10, 10),
        ("bytes=990-", 990, 999),
        ("bytes=0-", 0, 999),
        ("bytes=-10", 990, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=500-5000", 500, 999),
    ] {
        let r = get(&srv, &a, &f, &[("Range", range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/1000").as_str()),
            "{range}"
        );
        same_bytes(&r.body, &data[start..=end], range);
        assert_eq!(
            r.header("content-length"),
            Some((end + 1 - start).to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.header("content-type"), Some("video/mp4"), "{range}");
    }
    for range in [
        "bytes=1000-",
        "bytes=5000-6000",
        "bytes=1000-1000",
        "bytes=-0",
    ] {
        let r = get(&srv, &a, &f, &[("Range", range)]).await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    // No Range: the whole file.
    let r = get(&srv, &a, &f, &[]).await;
    assert_eq!(r.status, 200);
    same_bytes(&r.body, &data, "no range");
}

/// RFC 9110 14.2: a `Range` header that is not a valid `bytes` range is
/// ignored (the whole file, `200`); `416` is only for a valid range that
/// lies past the end.
#[tokio::test]
async fn invalid_ranges_are_ignored() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(1000, 5);
    let f = a.upload("clip.mp4", Some("video/mp4"), &data).await;
    for range in [
        "bytes=9-3",
        "bytes=abc-def",
        "bytes=-",
        "bytes=5",
        "bytes=",
        "bytes=--5",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-",
        "bytes=-1e3",
        "bytes=1000-999",
        "bytes 0-9",
        "items=0-9",
        "bytes=0-1,5-6",
    ] {
        let r = get(&srv, &a, &f, &[("Range", range)]).await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.header("content-range"), None, "{range}");
        same_bytes(&r.body, &data, range);
    }
    // Valid but past the end: still 416, numbers beyond 64 bits included.
    for range in ["bytes=1000-", "bytes=99999999999999999999999-", "bytes=-0"] {
        let r = get(&srv, &a, &f, &[("Range", range)]).await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    // Valid, with a last position beyond 64 bits: up to the end.
    let r = get(
        &srv,
        &a,
        &f,
        &[("Range", "bytes=990-99999999999999999999999")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 990-999/1000"));
    same_bytes(&r.body, &data[990..], "huge last position");
}

#[tokio::test]
async fn etag_and_if_none_match() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let data = random_bytes(3000, 3);
    let f = a.upload("a.bin", None, &data).await;
    let g = a.upload("b.bin", None, &random_bytes(3000, 4)).await;
    let r = get(&srv, &a, &f, &[]).await;
    assert_eq!(r.status, 200);
    let etag = r.header("etag").expect("ETag").to_owned();
    assert!(
        etag.starts_with('"') || etag.starts_with("W/\""),
        "ETag {etag:?} is not a quoted entity tag"
    );
    let other = get(&srv, &a, &g, &[]).await;
    assert_ne!(
        other.header("etag"),
        Some(etag.as_str()),
        "different bytes, same ETag"
    );
    // Stable across requests.
    assert_eq!(
        get(&srv, &a, &f, &[]).await.header("etag"),
        Some(etag.as_str())
    );
    let r = get(&srv, &a, &f, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let list = format!("\"nope\", {etag}");
    assert_eq!(
        get(&srv, &a, &f, &[("If-None-Match", &list)]).await.status,
        304
    );
    let r = get(&srv, &a, &f, &[("If-None-Match", "\"nope\"")]).await;
    assert_eq!(r.status, 200);
    same_bytes(&r.body, &data, "If-None-Match with another tag");
}

#[tokio::test]
async fn headers_keep_uploaded_content_from_running() {
    let srv = TestServer::start();
    let mut a = srv.user("alice").await;
    let cases: &[(Option<&str>, &str, &str)] = &[
        (Some("image/png"), "image/png", "inline"),
        (Some("image/jpeg"), "image/jpeg", "inline"),
        (Some("image/gif"), "image/gif", "inline"),
        (Some("image/webp"), "image/webp", "inline"),
        (Some("audio/mpeg"), "audio/mpeg", "inline"),
        (Some("audio/ogg"), "audio/ogg", "inline"),
        (Some("video/mp4"), "video/mp4", "inline"),
        (Some("video/webm"), "video/webm", "inline"),
        (Some("image/svg+xml"), "image/svg+xml", "attachment"),
        (Some("text/html"), "text/html", "attachment"),
        (
            Some("application/xhtml+xml"),
            "application/xhtml+xml",
            "attachment",
        ),
        (Some("text/plain"), "text/plain", "attachment"),
        (Some("application/pdf"), "application/pdf", "attachment"),
        (Some("image/bmp"), "image/bmp", "attachment"),
        (
            Some("application/javascript"),
            "application/javascript",
            "attachment",
        ),
        (None, "application/octet-stream", "attachment"),
    ];
    for (i, (mime, served, disposition)) in cases.iter().enumerate() {
        let body =
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/><script>alert(1)</script>";
        let f = a.upload(&format!("file{i}"), *mime, body).await;
        let r = get(&srv, &a, &f, &[]).await;
        assert_eq!(r.status, 200, "{mime:?}");
        assert_eq!(r.header("content-type"), Some(*served), "{mime:?}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{mime:?}"
        );
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'none'; sandbox"),
            "{mime:?}"
        );
        let cd = r
            .header("content-disposition")
            .expect("Content-Disposition");
        let kind = cd
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        assert_eq!(kind, *disposition, "{mime:?}: Content-Disposition {cd:?}");
        same_bytes(&r.body, body, "body");
    }
}

#[tokio::test]
async fn downloads_need_a_valid_token_and_the_right_to_read() {
    let srv = TestServer::start();
    let (mut a, mut b) = pair(&srv).await;
    let c = srv.user("carol").await;
    let data = random_bytes(2000, 5);
    let f = a.upload("a.png", Some("image/png"), &data).await;
    let path = format!("/files/{f}");
    // No token, a bad one, another scheme.
    assert_eq!(http_get(srv.http, &path, &[]).await.status, 401);
    for auth in [
        "Bearer nonsense",
        "Bearer ",
        "Basic YWxpY2U6cGFzc3dvcmQxMjM=",
        &token(&a),
    ] {
        let r = http_get(srv.http, &path, &[("Authorization", auth)]).await;
        assert_eq!(r.status, 401, "Authorization: {auth}");
        assert!(r.body.is_empty() || r.body != data);
    }
    // 401 comes before 404: an unknown file without a token.
    let r = http_get(srv.http, "/files/f-00000000000000000000000000000000", &[]).await;
    assert_eq!(r.status, 401);
    // The uploader may read.
    let r = get(&srv, &a, &f, &[]).await;
    assert_eq!(r.status, 200);
    same_bytes(&r.body, &data, "uploader");
    // Unknown ids, others' files, unfinished files: 404.
    for id in [
        "f-00000000000000000000000000000000",
        "nope",
        "..%2f..%2fetc%2fpasswd",
    ] {
        assert_eq!(get(&srv, &a, id, &[]).await.status, 404, "{id}");
    }
    let r = get(&srv, &b, &f, &[]).await;
    assert_eq!(r.status, 404);
    assert_ne!(r.body, data);
    let u = a.file_begin("partial.bin", None, 100).await;
    a.file_chunk(&u, 0, &[7; 100]).await;
    assert_eq!(get(&srv, &a, &u, &[]).await.status, 404);
    // Sent to Bob: Bob may read, Carol still may not.
    a.ok(json!({"type":"msg.send","to":"bob","attachment":f}))
        .await;
    let r = get(&srv, &b, &f, &[]).await;
    assert_eq!(r.status, 200);
    same_bytes(&r.body, &data, "recipient");
    assert_eq!(get(&srv, &c, &f, &[]).await.status, 404);
    // A token stops working on logout...
    let old = token(&b);
    b.ok(json!({"type":"logout"})).await;
    let r = http_get(srv.http, &path, &[("Authorization", &bearer(&old))]).await;
    assert_eq!(r.status, 401, "token after logout");
    // ... and on suspension.
    let ta = token(&a);
    srv.suspend("alice").await;
    let r = http_get(srv.http, &path, &[("Authorization", &bearer(&ta))]).await;
    assert_eq!(r.status, 401, "token of a suspended account");
    c.close().await;
}

type HmacSha256 = Hmac<sha2::Sha256>;

/// Splits a `file.url` into (id, exp, sig).
fn parts(url: &str) -> (String, i64, String) {
    let (path, query) = url.split_once('?').expect("query");
    let id = path
        .strip_prefix("/files/")
        .expect("/files/ path")
        .to_owned();
    let mut exp = None;
    let mut sig = None;
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("exp", v)) => exp = v.parse().ok(),
            Some(("sig", v)) => sig = Some(v.to_owned()),
            _ => {}
        }
    }
    (id, exp.expect("exp"), sig.expect("sig"))
}

#[tokio::test]
async fn signed_links_work_without_a_token_and_cannot_be_altered() {
    let srv = TestServer::start();
    let (mut a, mut b) = pair(&srv).await;
    let data = random_bytes(4000, 6);
    let f = a.upload("song.mp3", Some("audio/mpeg"), &data).await;
    let g = a.upload("other.mp3", Some("audio/mpeg"), &data).await;
    let r = a.ok(json!({"type":"file.url","file":f})).await;
    let url = r["url"].as_str().expect("url").to_owned();
    let (id, exp, sig) = parts(&url);
    assert_eq!(id, f);
    assert_eq!(r["expires"].as_i64(), Some(exp * 1000), "{r}");
    // No header needed, for <img>, <audio> and <video>.
    let ok = http_get(srv.http, &url, &[]).await;
    assert_eq!(ok.status, 200);
    same_bytes(&ok.body, &data, "signed link");
    assert_eq!(ok.header("content-type"), Some("audio/mpeg"));
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        ok.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );
    let head = http_request(srv.http, "HEAD", &url, &[]).await;
    assert_eq!(head.status, 200);
    // Seeking in <audio>/<video>.
    let r = http_get(srv.http, &url, &[("Range", "bytes=100-199")]).await;
    assert_eq!(r.status, 206);
    same_bytes(&r.body, &data[100..200], "signed range");

    // Tampered links are refused.
    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        let last = c.last_mut().expect("sig");
        *last = if *last == '0' { '1' } else { '0' };
        c.into_iter().collect::<String>()
    };
    let tampered = [
        format!("/files/{f}?exp={exp}&sig={}", flip(&sig)),
        format!("/files/{f}?exp={}&sig={sig}", exp + 1),
        format!("/files/{f}?exp={}&sig={sig}", exp + 86_400),
        format!("/files/{g}?exp={exp}&sig={sig}"),
        format!("/files/{f}?exp={exp}&sig="),
        format!("/files/{f}?exp={exp}"),
        format!("/files/{f}?sig={sig}"),
    ];
    for t in &tampered {
        let r = http_get(srv.http, t, &[]).await;
        assert_eq!(r.status, 401, "{t}");
        assert!(r.body != data, "{t} served the file");
    }

    // Expired: a link signed exactly as the server signs (HMAC-SHA256 of
    // "<id>:<exp>" with the store's secret, checked against the server's
    // own link first), but with an `exp` in the past.
    let secret = srv.data().store.server_secret().expect("server secret");
    let sign = |id: &str, exp: i64| {
        let mut mac = HmacSha256::new_from_slice(&secret).expect("hmac key");
        mac.update(format!("{id}:{exp}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(
        sign(&f, exp),
        sig,
        "the test's signer does not reproduce the server's link"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for past in [now - 5, now - 3600, 0] {
        let t = format!("/files/{f}?exp={past}&sig={}", sign(&f, past));
        assert_eq!(http_get(srv.http, &t, &[]).await.status, 401, "expired {t}");
    }
    // The same construction with a future exp is accepted, so the refusals
    // above are about expiry.
    let t = format!("/files/{f}?exp={}&sig={}", now + 600, sign(&f, now + 600));
    assert_eq!(http_get(srv.http, &t, &[]).await.status, 200);

    // A recipient can make links too; a non-reader cannot.
    b.err(json!({"type":"file.url","file":f}), "not_found")
        .await;
    a.ok(json!({"type":"msg.send","to":"bob","attachment":f}))
        .await;
    let r = b.ok(json!({"type":"file.url","file":f})).await;
    let ok = http_get(srv.http, r["url"].as_str().expect("url"), &[]).await;
    assert_eq!(ok.status, 200);
    same_bytes(&ok.body, &data, "recipient's link");
}

const HOSTILE: &[&str] = &[
    "../../etc/passwd",
    "/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..\\..\\windows\\win.ini",
    "C:\\Windows\\evil.exe",
    "..",
    ".",
    "uploads/../../x",
    "evil\r\nSet-Cookie: session=stolen",
    "\"; filename=\"evil.html",
    "a\u{0}b",
    "\u{0}",
];

/// Uploads `data` under `name`: `Some(id)`, or `None` when the name was
/// refused, which is allowed (as `bad_request`) only for names with NUL.
async fn upload_named(c: &mut Client, name: &str, mime: &str, data: &[u8]) -> Option<String> {
    let r = c
        .request(json!({"type":"file.begin","name":name,"mime":mime,"size":data.len()}))
        .await;
    if r["type"] == "error" {
        assert!(name.contains('\0'), "name {name:?} refused: {r}");
        assert_eq!(r["code"], "bad_request", "name {name:?}: {r}");
        return None;
    }
    let f = r["file"].as_str().expect("file").to_owned();
    for (i, part) in data.chunks(CHUNK).enumerate() {
        c.file_chunk(&f, i * CHUNK, part).await;
    }
    c.file_end(&f, data).await;
    Some(f)
}

#[tokio::test]
async fn hostile_names_are_only_metadata() {
    let srv = TestServer::start();
    let (mut a, mut b) = pair(&srv).await;
    for (i, name) in HOSTILE.iter().enumerate() {
        let data = random_bytes(1000 + i, 100 + i as u64);
        let Some(f) = upload_named(&mut a, name, "text/html", &data).await else {
            continue;
        };
        a.ok(json!({"type":"msg.send","to":"bob","attachment":f}))
            .await;
        let m = b.expect("msg").await;
        assert_eq!(m["attachment"]["name"], *name, "shown exactly as given");
        same_bytes(&b.download(&f).await, &data, name);
        let r = get(&srv, &b, &f, &[]).await;
        assert_eq!(r.status, 200, "{name:?}");
        same_bytes(&r.body, &data, name);
        assert!(
            r.header("set-cookie").is_none(),
            "{name:?}: {:?}",
            r.headers
        );
        let cd = r
            .header("content-disposition")
            .expect("Content-Disposition");
        assert!(
            cd.to_ascii_lowercase().starts_with("attachment"),
            "{name:?}: {cd:?}"
        );
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k == "content-disposition")
                .count(),
            1,
            "{name:?}: {:?}",
            r.headers
        );
    }
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("dir entry");
        let t = e.file_type().expect("file type");
        if t.is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Asserts every file under `root` is in `files_dir` or is the SQLite
/// database (`im.db` and its journal files); returns those in `files_dir`.
fn check_layout(root: &Path, files_dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(root, &mut all);
    let mut stored = Vec::new();
    for p in all {
        if p.starts_with(files_dir) {
            stored.push(p);
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            p.parent() == Some(root)
                && matches!(name, "im.db" | "im.db-wal" | "im.db-shm" | "im.db-journal"),
            "{} was created outside files.dir ({})",
            p.display(),
            files_dir.display()
        );
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_keeps_files_in_files_dir_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical tempdir");
    let files_dir = root.join("store-files");
    let env = [("IM__FILES__DIR", files_dir.to_str().expect("utf-8 path"))];
    let srv = ServerProcess::start(&root, &env);
    let mut a = Client::connect(srv.addr).await;
    a.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
        .await;
    a.login("alice", PASSWORD).await;
    let mut b = Client::connect(srv.addr).await;
    b.ok(json!({"type":"register","username":"bob","password":PASSWORD}))
        .await;
    b.login("bob", PASSWORD).await;
    a.ok(json!({"type":"contact.add","user":"bob"})).await;
    b.expect("contact.request").await;
    b.ok(json!({"type":"contact.accept","user":"alice"})).await;

    let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        let data = random_bytes(40000 + i, 200 + i as u64);
        if let Some(f) = upload_named(&mut a, name, "application/octet-stream", &data).await {
            kept.push((f, data));
        }
    }
    assert!(kept.len() >= HOSTILE.len() - 2);
    // One of them sent to Bob, and an unfinished upload with a hostile name.
    let (sent, sent_data) = kept[0].clone();
    a.ok(json!({"type":"msg.send","to":"bob","attachment":sent}))
        .await;
    let p = a.file_begin("../../partial", None, 100).await;
    a.file_chunk(&p, 0, &[1; 50]).await;

    let stored = check_layout(&root, &files_dir);
    let bytes: u64 = stored
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let total: usize = kept.iter().map(|(_, d)| d.len()).sum();
    assert!(
        bytes as usize >= total,
        "files.dir holds {bytes} bytes, the uploads are {total}"
    );

    // Restart (SIGKILL, then start again on the same directory).
    let ta = token(&a);
    let tb = token(&b);
    srv.kill();
    let srv = ServerProcess::start(&root, &env);
    let mut a = Client::connect(srv.addr).await;
    a.login_token("alice", &ta).await;
    for (f, data) in &kept {
        same_bytes(&a.download(f).await, data, "file.read after restart");
        let r = http_get(
            srv.http,
            &format!("/files/{f}"),
            &[("Authorization", &bearer(&ta))],
        )
        .await;
        assert_eq!(r.status, 200, "{f} after restart");
        same_bytes(&r.body, data, "GET after restart");
    }
    // Bob, the recipient, too; and the upload resumes where it stopped.
    let r = http_get(
        srv.http,
        &format!("/files/{sent}"),
        &[("Authorization", &bearer(&tb))],
    )
    .await;
    assert_eq!(r.status, 200);
    same_bytes(&r.body, &sent_data, "recipient after restart");
    let st = a.ok(json!({"type":"file.status","file":p})).await;
    assert_eq!(st["received"], 50, "{st}");
    a.file_chunk(&p, 50, &[1; 50]).await;
    a.file_end(&p, &[1; 100]).await;
    check_layout(&root, &files_dir);
}
