//! The web client: the files under `web/`, embedded at build time (see
//! `build.rs`) and served with a Content-Security-Policy that allows no
//! inline script or style, so a message body that slips into the page as
//! markup still cannot run.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

/// One embedded file.
struct Asset {
    /// URL path, `/js/main.js`.
    path: &'static str,
    /// Quoted content hash.
    etag: &'static str,
    bytes: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What the client's pages may load: scripts, styles and connections from
/// this origin only; images and media also from `blob:` (previews before
/// upload) and `data:`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The web client, to mount in an actix-web `App` with
/// [`WebClient::routes`].
#[derive(Clone, Debug)]
pub struct WebClient {
    dir: Option<Arc<PathBuf>>,
}

impl WebClient {
    /// The copy embedded in the binary at build time.
    pub fn embedded() -> WebClient {
        WebClient { dir: None }
    }

    /// Reads every file from `dir` at each request instead (a checkout's
    /// `im-transport-ws/web`): for working on the client without
    /// rebuilding the server.
    pub fn from_dir(dir: impl Into<PathBuf>) -> WebClient {
        WebClient {
            dir: Some(Arc::new(dir.into())),
        }
    }

    /// `GET` / `HEAD` of `/` (the page) and of every file of the client.
    /// Mount it after your other routes: it answers every path they leave
    /// (with 404 for a file it does not have).
    pub fn routes(self) -> impl FnOnce(&mut web::ServiceConfig) {
        move |cfg| {
            cfg.app_data(web::Data::new(self)).service(
                web::resource("/{path:.*}")
                    .route(web::get().to(serve))
                    .route(web::head().to(serve)),
            );
        }
    }
}

async fn serve(req: HttpRequest, client: web::Data<WebClient>) -> HttpResponse {
    let path = match req.path() {
        "/" | "" => "/index.html",
        p => p,
    };
    let found = match &client.dir {
        None => embedded(path),
        Some(dir) => from_dir(dir, path).await,
    };
    let Some((bytes, etag)) = found else {
        return HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("not found");
    };
    let not_modified = fresh(&req, &etag);
    let mut resp = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CONTENT_TYPE, mime(path)))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if not_modified {
        return resp.finish();
    }
    resp.body(bytes)
}

/// Whether the client's cached copy (`If-None-Match`) is this one.
fn fresh(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn embedded(path: &str) -> Option<(Vec<u8>, String)> {
    ASSETS
        .iter()
        .find(|a| a.path == path)
        .map(|a| (a.bytes.to_vec(), a.etag.to_owned()))
}

async fn from_dir(dir: &Path, path: &str) -> Option<(Vec<u8>, String)> {
    let rel = safe_relative(path)?;
    let file = dir.join(rel);
    let bytes = web::block(move || std::fs::read(file)).await.ok()?.ok()?;
    let etag = format!("\"{:x}-{}\"", bytes.len(), checksum(&bytes));
    Some((bytes, etag))
}

/// `path` as a relative file path made only of plain names: no `..`, no
/// root, no backslash or NUL.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    if rel.is_empty() || rel.contains(['\\', '\0']) {
        return None;
    }
    let p = PathBuf::from(rel);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(p)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `Content-Type` for a file of the client, by extension.
fn mime(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_read_from_a_directory() {
        assert_eq!(
            safe_relative("/js/main.js"),
            Some(PathBuf::from("js/main.js"))
        );
        for bad in [
            "/../etc/passwd",
            "/js/../../x",
            "/",
            "js",
            "/a\\b",
            "/a\0b",
            "//etc/x",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_page_and_its_modules_are_embedded() {
        assert!(embedded("/index.html").is_some());
        assert!(embedded("/js/main.js").is_some());
        assert!(embedded("/nope.js").is_none());
    }
}
