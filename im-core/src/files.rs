//! Files: chunked uploads, reads, signed links and who may see what.
//!
//! Metadata lives in the [`crate::store::Store`], bytes in the
//! [`crate::blob::BlobStore`]. The SHA-256 of an upload is computed while
//! its chunks arrive (the running hash is kept per upload, rebuilt from
//! the partial blob if the server restarted meanwhile). Who may read a file:
//! its uploader, and the current members of every conversation it was sent
//! to. Everyone else is told it does not exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ProtoError, StoreError};
use crate::hub::Hub;
use crate::ids::{now_millis, ConvId, Millis, UserId};
use crate::protocol::Reply;
use crate::session::Me;
use crate::store::{FileRecord, Store};

/// Largest decoded chunk, and largest `file.read` answer, in bytes.
pub const CHUNK_MAX: usize = 32768;
/// Longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// How long a signed link is valid, in seconds.
pub const LINK_TTL_SECS: i64 = 3600;
const DEFAULT_MIME: &str = "application/octet-stream";

/// What receivers of a message see of its attachment.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AttachmentMeta {
    /// File id.
    pub file: String,
    /// Display name.
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

impl AttachmentMeta {
    /// The metadata of a finished file; `None` while it is uploading.
    pub fn of(f: &FileRecord) -> Option<AttachmentMeta> {
        Some(AttachmentMeta {
            file: f.id.clone(),
            name: f.name.clone(),
            mime: f.mime.clone(),
            size: f.size,
            sha256: f.sha256.clone()?,
        })
    }
}

/// Running hashes of uploads in progress, by file id.
#[derive(Default)]
pub(crate) struct Uploads {
    hashers: Mutex<HashMap<String, (u64, Sha256)>>,
}

fn not_found() -> ProtoError {
    ProtoError::not_found("no such file")
}

fn io_err(e: std::io::Error) -> ProtoError {
    tracing::warn!(error = %e, "blob store failed");
    ProtoError::new(
        crate::error::ErrorCode::Unavailable,
        "file storage unavailable, try again",
    )
}

/// Whether `user` may read `f`: the uploader, or a current member of a
/// conversation it was sent to.
fn may_read(s: &dyn Store, user: &UserId, f: &FileRecord) -> Result<bool, StoreError> {
    if &f.uploader == user {
        return Ok(true);
    }
    for conv in s.file_convs(&f.id)? {
        let member = match &conv {
            ConvId::Direct(a, b) => a == user || b == user,
            ConvId::Room(_) => s.is_member(&conv, user)?,
        };
        if member {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A finished file `user` may read, else `not_found`.
pub(crate) async fn readable(hub: &Hub, user: &UserId, id: &str) -> Result<FileRecord, ProtoError> {
    let (u, id) = (user.clone(), id.to_owned());
    hub.db(move |s| {
        Ok(match s.file(&id)? {
            Some(f) if f.sha256.is_some() && may_read(s, &u, &f)? => Some(f),
            _ => None,
        })
    })
    .await?
    .ok_or_else(not_found)
}

fn valid_mime(m: &str) -> bool {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c);
    match m.split_once('/') {
        Some((t, s)) => {
            !t.is_empty()
                && !s.is_empty()
                && m.len() <= 255
                && t.chars().all(tchar)
                && s.chars().all(tchar)
        }
        None => false,
    }
}

/// `file.begin`.
pub(crate) async fn begin(
    me: &Me,
    name: String,
    mime: Option<String>,
    size: u64,
) -> Result<Reply, ProtoError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.contains('\0') {
        return Err(ProtoError::bad_request("name must be 1 to 255 characters"));
    }
    let mime = mime
        .unwrap_or_else(|| DEFAULT_MIME.to_owned())
        .to_ascii_lowercase();
    if !valid_mime(&mime) {
        return Err(ProtoError::bad_request("mime must be type/subtype"));
    }
    let limits = &me.hub.config().limits;
    if size > limits.max_file {
        return Err(ProtoError::too_large(format!(
            "files are at most {} bytes",
            limits.max_file
        )));
    }
    let quota = limits.user_quota;
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    let record = FileRecord {
        id: format!("f-{}", hex::encode(raw)),
        uploader: me.user.clone(),
        name,
        mime,
        size,
        received: 0,
        sha256: None,
        created_at: now_millis(),
    };
    let id = record.id.clone();
    let over = me
        .hub
        .db(move |s| {
            let used = s.user_file_bytes(&record.uploader)?;
            if used.saturating_add(record.size) > quota {
                return Ok(true);
            }
            s.create_file(&record)?;
            Ok(false)
        })
        .await?;
    if over {
        return Err(ProtoError::too_large("over your storage quota"));
    }
    Ok(Reply::FileBegun { file: id })
}

/// The upload `id` of `me`, not finished; else `not_found` / `conflict`.
async fn own_upload(me: &Me, id: &str) -> Result<FileRecord, ProtoError> {
    let id = id.to_owned();
    let f = me
        .hub
        .db(move |s| s.file(&id))
        .await?
        .ok_or_else(not_found)?;
    if f.uploader != me.user {
        return Err(not_found());
    }
    Ok(f)
}

/// The running hash of an upload, rebuilt from the partial blob when the
/// server lost it (a restart).
async fn hasher(hub: &Hub, id: &str) -> Result<(u64, Sha256), ProtoError> {
    let uploads = hub.inner.uploads.clone();
    if let Some(h) = uploads.hashers.lock().ok().and_then(|m| m.get(id).cloned()) {
        return Ok(h);
    }
    let blobs = hub.inner.blobs.clone();
    let upload = id.to_owned();
    let h = hub
        .inner
        .pool
        .run(move || -> std::io::Result<(u64, Sha256)> {
            let len = blobs.upload_len(&upload)?;
            let mut h = Sha256::new();
            let mut at = 0;
            while at < len {
                let part = blobs.read_upload(&upload, at, 1 << 20)?;
                if part.is_empty() {
                    break;
                }
                at += part.len() as u64;
                h.update(&part);
            }
            Ok((at, h))
        })
        .await?
        .map_err(io_err)?;
    Ok(h)
}

/// `file.chunk`: contiguous, within the announced size.
pub(crate) async fn chunk(me: &Me, id: &str, offset: u64, data: &str) -> Result<Reply, ProtoError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| ProtoError::bad_request("data must be standard base64 with padding"))?;
    if bytes.len() > CHUNK_MAX {
        return Err(ProtoError::too_large("chunks are at most 32768 bytes"));
    }
    let f = own_upload(me, id).await?;
    if f.sha256.is_some() {
        return Err(ProtoError::conflict("upload already finished"));
    }
    let (received, mut h) = hasher(&me.hub, id).await?;
    if offset != received {
        return Err(ProtoError::bad_request(format!(
            "expected offset {received}"
        )));
    }
    if received + bytes.len() as u64 > f.size {
        return Err(ProtoError::bad_request(
            "chunk goes past the announced size",
        ));
    }
    h.update(&bytes);
    let now = received + bytes.len() as u64;
    let (blobs, s) = (me.hub.inner.blobs.clone(), me.hub.inner.store.clone());
    let upload = id.to_owned();
    me.hub
        .inner
        .pool
        .run(move || -> Result<(), ProtoError> {
            blobs.append(&upload, offset, &bytes).map_err(io_err)?;
            s.set_file_received(&upload, now)?;
            Ok(())
        })
        .await??;
    if let Ok(mut m) = me.hub.inner.uploads.hashers.lock() {
        m.insert(id.to_owned(), (now, h));
    }
    Ok(Reply::Empty)
}

/// `file.status`.
pub(crate) async fn status(me: &Me, id: &str) -> Result<Reply, ProtoError> {
    let f = own_upload(me, id).await?;
    let done = f.sha256.is_some();
    let received = if done {
        f.size
    } else {
        hasher(&me.hub, id).await?.0
    };
    Ok(Reply::FileStatus {
        received,
        size: f.size,
        done,
    })
}

/// `file.end`: checks the size, commits the blob under its hash.
pub(crate) async fn end(me: &Me, id: &str) -> Result<Reply, ProtoError> {
    let f = own_upload(me, id).await?;
    if let Some(sha) = f.sha256 {
        return Ok(Reply::FileEnded {
            file: f.id,
            size: f.size,
            sha256: sha,
        });
    }
    let (received, h) = hasher(&me.hub, id).await?;
    if received != f.size {
        return Err(ProtoError::bad_request(format!(
            "received {received} of {} bytes",
            f.size
        )));
    }
    let sha = hex::encode(h.finalize());
    let (blobs, s) = (me.hub.inner.blobs.clone(), me.hub.inner.store.clone());
    let (upload, sha2) = (id.to_owned(), sha.clone());
    me.hub
        .inner
        .pool
        .run(move || -> Result<(), ProtoError> {
            if f.size == 0 {
                // Nothing was appended: make the (empty) upload exist.
                blobs.append(&upload, 0, &[]).map_err(io_err)?;
            }
            blobs.commit(&upload, &sha2).map_err(io_err)?;
            s.finish_file(&upload, &sha2)?;
            Ok(())
        })
        .await??;
    if let Ok(mut m) = me.hub.inner.uploads.hashers.lock() {
        m.remove(id);
    }
    Ok(Reply::FileEnded {
        file: id.to_owned(),
        size: f.size,
        sha256: sha,
    })
}

/// `file.read`.
pub(crate) async fn read(
    me: &Me,
    id: &str,
    offset: u64,
    len: Option<u64>,
) -> Result<Reply, ProtoError> {
    let f = readable(&me.hub, &me.user, id).await?;
    let len = len.unwrap_or(CHUNK_MAX as u64).min(CHUNK_MAX as u64) as usize;
    let Some(sha) = f.sha256.clone() else {
        return Err(not_found());
    };
    let blobs = me.hub.inner.blobs.clone();
    let data = me
        .hub
        .inner
        .pool
        .run(move || blobs.read(&sha, offset, len))
        .await?
        .map_err(io_err)?;
    let eof = offset + data.len() as u64 >= f.size;
    Ok(Reply::FileData {
        data: base64::engine::general_purpose::STANDARD.encode(&data),
        eof,
    })
}

type HmacSha256 = Hmac<Sha256>;

async fn secret(hub: &Hub) -> Result<Arc<Vec<u8>>, ProtoError> {
    if let Some(s) = hub.inner.link_secret.get() {
        return Ok(s.clone());
    }
    let s = Arc::new(hub.db(|s| s.server_secret()).await?);
    Ok(hub.inner.link_secret.get_or_init(|| s).clone())
}

fn sign(secret: &[u8], id: &str, exp: i64) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("{id}:{exp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `file.url`: a link valid for an hour, signed with the store's secret.
pub(crate) async fn url(me: &Me, id: &str) -> Result<Reply, ProtoError> {
    let f = readable(&me.hub, &me.user, id).await?;
    let exp = now_millis() / 1000 + LINK_TTL_SECS;
    let sig = sign(&secret(&me.hub).await?, &f.id, exp);
    Ok(Reply::FileUrl {
        url: format!("/files/{}?exp={exp}&sig={sig}", f.id),
        expires: exp * 1000,
    })
}

/// Metadata of attachments by file id, for frames built from stored messages.
pub(crate) fn metas(
    s: &dyn Store,
    ids: impl Iterator<Item = String>,
) -> Result<HashMap<String, AttachmentMeta>, StoreError> {
    let mut out = HashMap::new();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        if let Some(m) = s.file(&id)?.as_ref().and_then(AttachmentMeta::of) {
            out.insert(id, m);
        }
    }
    Ok(out)
}

/// How an HTTP download was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpRefusal {
    /// No valid token or signature: 401.
    #[error("unauthorized")]
    Unauthorized,
    /// Unknown, unfinished or not allowed: 404.
    #[error("not found")]
    NotFound,
    /// The store is failing: 503.
    #[error("unavailable")]
    Unavailable,
}

/// A file an HTTP client may download.
#[derive(Debug, Clone)]
pub struct Download {
    /// Metadata.
    pub meta: AttachmentMeta,
}

struct MaybeDownload {
    meta: Option<AttachmentMeta>,
}

impl Hub {
    /// Authorizes an HTTP download of `id` by bearer token or by a signed
    /// link (`exp`, `sig` from `file.url`).
    pub async fn authorize_download(
        &self,
        bearer: Option<&str>,
        signed: Option<(i64, &str)>,
        id: &str,
    ) -> Result<Download, HttpRefusal> {
        let unavailable = |_| HttpRefusal::Unavailable;
        if let Some((exp, sig)) = signed {
            let secret = secret(self).await.map_err(unavailable)?;
            let good = exp >= now_millis() / 1000
                && constant_eq(sign(&secret, id, exp).as_bytes(), sig.as_bytes());
            if !good {
                return Err(HttpRefusal::Unauthorized);
            }
            let id = id.to_owned();
            let f = self.db(move |s| s.file(&id)).await.map_err(unavailable)?;
            return f
                .as_ref()
                .and_then(AttachmentMeta::of)
                .map(|meta| Download { meta })
                .ok_or(HttpRefusal::NotFound);
        }
        let Some(token) = bearer else {
            return Err(HttpRefusal::Unauthorized);
        };
        let hash = crate::auth::token_hash(token);
        let ttl_ms = i64::from(self.config().auth.token_ttl_days) * 86_400_000;
        let found = self
            .db(move |s| {
                Ok(match s.user_by_token(&hash)? {
                    Some((u, d)) if now_millis() - d.token_issued_at <= ttl_ms => {
                        s.user(&u)?.filter(|r| !r.suspended).map(|r| r.name)
                    }
                    _ => None,
                })
            })
            .await
            .map_err(unavailable)?;
        let user = found.ok_or(HttpRefusal::Unauthorized)?;
        let d = readable(self, &user, id)
            .await
            .map(|f| MaybeDownload {
                meta: AttachmentMeta::of(&f),
            })
            .map_err(|e| {
                if e.code == crate::error::ErrorCode::NotFound {
                    HttpRefusal::NotFound
                } else {
                    HttpRefusal::Unavailable
                }
            })?;
        Ok(Download {
            meta: d.meta.ok_or(HttpRefusal::NotFound)?,
        })
    }

    /// Reads up to `len` bytes of a downloadable file from `offset`, off the
    /// async threads.
    pub async fn read_download(
        &self,
        d: &Download,
        offset: u64,
        len: usize,
    ) -> std::io::Result<Vec<u8>> {
        let blobs = self.inner.blobs.clone();
        let sha = d.meta.sha256.clone();
        self.inner
            .pool
            .run(move || blobs.read(&sha, offset, len))
            .await
            .map_err(|_| std::io::Error::other("pool unavailable"))?
    }

    /// Removes unfinished uploads and unsent files older than
    /// `limits.upload_ttl_secs`, and blobs no file uses any more.
    pub async fn collect_files(&self) -> Result<usize, ProtoError> {
        let before: Millis = now_millis() - (self.config().limits.upload_ttl_secs as i64) * 1000;
        let (s, blobs) = (self.inner.store.clone(), self.inner.blobs.clone());
        let removed = self
            .inner
            .pool
            .run(move || -> Result<Vec<String>, ProtoError> {
                let stale = s.stale_files(before)?;
                let mut ids = Vec::with_capacity(stale.len());
                for f in stale {
                    s.delete_file(&f.id)?;
                    let _ = blobs.discard_upload(&f.id);
                    if let Some(sha) = &f.sha256 {
                        if !s.blob_in_use(sha)? {
                            blobs.remove(sha).map_err(io_err)?;
                        }
                    }
                    ids.push(f.id);
                }
                Ok(ids)
            })
            .await??;
        if let Ok(mut m) = self.inner.uploads.hashers.lock() {
            for id in &removed {
                m.remove(id);
            }
        }
        Ok(removed.len())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
