//! `GET`/`HEAD /files/<file>`: downloads with a bearer token or a signed
//! link, byte ranges, and headers that keep uploaded content from running
//! in the web client's origin.

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use im_core::files::{Download, HttpRefusal};
use im_core::Hub;
use serde::Deserialize;

/// Bytes read from the blob store per body chunk.
const PIECE: usize = 64 * 1024;

#[derive(Deserialize)]
struct Signed {
    exp: Option<i64>,
    sig: Option<String>,
}

/// Types a browser may show inline; everything else (SVG and HTML
/// included) is served as an attachment.
fn inline(mime: &str) -> bool {
    matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    ) || mime.starts_with("audio/")
        || mime.starts_with("video/")
}

/// RFC 8187 `filename*` value: UTF-8, percent-encoded.
fn encode_filename(name: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a `Range` header asks of a file (RFC 9110 14.1.2, 14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range (another unit, several ranges, or not valid
    /// syntax): the header is ignored and the whole file served.
    Whole,
    /// First and last byte, inclusive, both within the file.
    Part(u64, u64),
    /// A valid range that lies entirely past the end: `416`.
    Unsatisfiable,
}

/// `1*DIGIT`, saturating at `u64::MAX` (a position past any file);
/// `None` for anything else, signs and spaces included.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Parses a `Range` header value against a file of `size` bytes: one
/// `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range. Invalid
/// syntax, and `last` before `first`, make the header ignored; only a
/// valid range starting past the end (or `-0`, or any suffix of an empty
/// file) is unsatisfiable.
pub fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match digits(b) {
            None => RangeRequest::Whole,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part(size.saturating_sub(n), size - 1),
        };
    }
    let Some(first) = digits(a) else {
        return RangeRequest::Whole;
    };
    let last = if b.is_empty() {
        Some(u64::MAX)
    } else {
        digits(b)
    };
    match last {
        Some(last) if last >= first => {
            if first >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(first, last.min(size - 1))
            }
        }
        _ => RangeRequest::Whole,
    }
}

fn refusal(r: HttpRefusal) -> HttpResponse {
    match r {
        HttpRefusal::Unauthorized => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .finish(),
        HttpRefusal::NotFound => HttpResponse::NotFound().finish(),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

pub(crate) async fn download(
    req: HttpRequest,
    path: web::Path<String>,
    hub: web::Data<Hub>,
) -> HttpResponse {
    let id = path.into_inner();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.strip_prefix("Bearer "))
        .map(str::trim);
    let signed = web::Query::<Signed>::from_query(req.query_string()).ok();
    let signed = signed
        .as_ref()
        .and_then(|q| Some((q.exp?, q.sig.as_deref()?)));
    let d = match hub.authorize_download(bearer, signed, &id).await {
        Ok(d) => d,
        Err(r) => return refusal(r),
    };
    respond(&req, hub.get_ref().clone(), d)
}

fn respond(req: &HttpRequest, hub: Hub, d: Download) -> HttpResponse {
    let size = d.meta.size;
    let etag = format!("\"{}\"", d.meta.sha256);
    let disposition = format!(
        "{}; filename*={}",
        if inline(&d.meta.mime) {
            "inline"
        } else {
            "attachment"
        },
        encode_filename(&d.meta.name)
    );
    let res = |status: actix_web::http::StatusCode| {
        let mut b = HttpResponse::build(status);
        b.insert_header((header::ETAG, etag.clone()))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::CONTENT_TYPE, d.meta.mime.clone()))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ))
            .insert_header((header::CONTENT_DISPOSITION, disposition.clone()))
            .insert_header((header::CACHE_CONTROL, "private, max-age=3600"));
        b
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return res(actix_web::http::StatusCode::NOT_MODIFIED).finish();
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, size));
    let (status, start, end) = match range {
        Some(RangeRequest::Unsatisfiable) => {
            return res(actix_web::http::StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish()
        }
        Some(RangeRequest::Part(a, b)) => (actix_web::http::StatusCode::PARTIAL_CONTENT, a, b + 1),
        Some(RangeRequest::Whole) | None => (actix_web::http::StatusCode::OK, 0, size),
    };
    let mut b = res(status);
    if status == actix_web::http::StatusCode::PARTIAL_CONTENT {
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        ));
    }
    let body = futures_util::stream::unfold((hub, d, start), move |(hub, d, at)| async move {
        if at >= end {
            return None;
        }
        let want = PIECE.min((end - at) as usize);
        match hub.read_download(&d, at, want).await {
            Ok(bytes) if !bytes.is_empty() => {
                let n = bytes.len() as u64;
                Some((
                    Ok::<_, std::io::Error>(web::Bytes::from(bytes)),
                    (hub, d, at + n),
                ))
            }
            Ok(_) => Some((
                Err(std::io::Error::other("file shorter than recorded")),
                (hub, d, end),
            )),
            Err(e) => Some((Err(e), (hub, d, end))),
        }
    });
    b.body(SizedStream::new(end - start, Box::pin(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Part(50, 99));
        assert_eq!(
            parse_range("bytes=50-99999999999999999999", 100),
            Part(50, 99)
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999-", 100),
            Unsatisfiable
        );
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        for ignored in [
            "bytes=9-3",
            "bytes=x-1",
            "bytes=-",
            "bytes=5",
            "bytes=",
            "bytes=--5",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=-+5",
            "bytes=0-1,5-6",
            "items=0-1",
        ] {
            assert_eq!(parse_range(ignored, 100), Whole, "{ignored}");
        }
    }

    #[test]
    fn filenames_are_encoded() {
        assert_eq!(
            encode_filename("a b/../é.png"),
            "UTF-8''a%20b%2F..%2F%C3%A9.png"
        );
    }
}
