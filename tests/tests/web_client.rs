//! The web client: how the server serves it (over HTTP, on a test server),
//! and the whole client in headless Chromium against the real example
//! server (`tests/web/e2e.mjs`, driven by playwright-core).
//!
//! The browser test needs Debian's `chromium` and `npm ci` in `tests/web`
//! (`.ci/run` does both). Without them it is skipped with a message saying
//! what is missing, except under CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use im_tests::process::ServerProcess;
use im_tests::*;

fn http_server() -> TestServer {
    TestServer::builder().transport(Transport::Ws).start()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_under_a_strict_policy() {
    let srv = http_server();
    let r = http_get(srv.http, "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let html = String::from_utf8(r.body).expect("utf-8");
    assert!(
        html.contains("<script type=\"module\" src=\"/js/main.js\""),
        "{html}"
    );
    // Nothing inline that the policy would have to allow.
    for inline in [
        "<script>",
        "<script type=\"module\">",
        " onclick=",
        " onload=",
        " style=",
    ] {
        assert!(!html.contains(inline), "index.html has {inline}");
    }
}

#[tokio::test]
async fn modules_are_served_with_their_types_and_etags() {
    let srv = http_server();
    let r = http_get(srv.http, "/js/main.js", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let etag = r.header("etag").expect("etag").to_owned();
    let again = http_get(srv.http, "/js/main.js", &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let css = http_get(srv.http, "/app.css", &[]).await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_the_protocol_routes_still_win() {
    let srv = http_server();
    for path in ["/nope.js", "/js/../../Cargo.toml", "/%2e%2e/Cargo.toml"] {
        assert_eq!(http_get(srv.http, path, &[]).await.status, 404, "{path}");
    }
    let health = http_get(srv.http, "/healthz", &[]).await;
    assert_eq!(health.status, 200);
    assert!(String::from_utf8_lossy(&health.body).contains("\"status\":\"ok\""));
    // A WebSocket client still reaches the protocol at /ws.
    let mut c = srv.user("alice").await;
    assert_eq!(
        c.request(serde_json::json!({"type":"ping"})).await["type"],
        "pong"
    );
}

/// What the browser test needs and, when something is missing, what.
fn browser_setup(web: &Path) -> Result<PathBuf, String> {
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    if !chromium.exists() {
        return Err(format!(
            "{} not found (apt-get install -y chromium)",
            chromium.display()
        ));
    }
    if !web.join("node_modules/playwright-core").is_dir()
        || !web.join("node_modules/axe-core").is_dir()
    {
        return Err("tests/web/node_modules missing (npm ci --prefix tests/web)".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node not found".into());
    }
    Ok(chromium)
}

#[test]
fn the_web_client_works_end_to_end_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let web = root.join("web");
    let chromium = match browser_setup(&web) {
        Ok(c) => c,
        Err(missing) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED the browser test: {missing}");
            return;
        }
        Err(missing) => panic!("the browser test cannot run under CI: {missing}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(dir.path(), &[]);
    let artifacts = root.join("../target/web-e2e");
    let mut cmd = Command::new("node");
    cmd.arg(web.join("e2e.mjs"))
        .env("BASE_URL", format!("http://{}", server.http))
        .env("CHROMIUM", &chromium)
        .env("ARTIFACTS", &artifacts);
    if let Some(shots) = std::env::var_os("IM_WEB_SCREENSHOTS") {
        cmd.env("SCREENSHOTS", shots);
    }
    let out = cmd.output().expect("run node");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("every step passed"), "{stdout}");
}
