//! Files: chunked uploads, reads, signed links and who may see what.
//!
//! Metadata lives in the [`crate::store::Store`], bytes in the
//! [`crate::blob::BlobStore`]. The SHA-256 of an upload is computed while
//! its chunks arrive (the running hash is kept per upload, rebuilt from
//! the partial blob if the server restarted meanwhile); every request
//! about one upload, and its cleanup, runs holding that upload's lock.
//! Who may read a file: its uploader, and the current members of every
//! conversation it was sent to. Everyone else is told it does not exist.

use std::collections::HashMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::blob::BlobStore;
use crate::error::{ErrorCode, ProtoError, StoreError};
use crate::ids::{now_millis, ConvId, Millis, UserId};
pub use crate::protocol::AttachmentMeta;
use crate::services::{BlobLocks, Services};
use crate::store::{FileRecord, Store};

/// Largest decoded chunk, and largest `file.read` answer, in bytes.
pub const CHUNK_MAX: usize = 32768;
/// Longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// How long a signed link is valid, in seconds.
pub const LINK_TTL_SECS: i64 = 3600;

/// The metadata receivers see of a finished file; `None` while it is
/// uploading.
pub fn attachment_meta(f: &FileRecord) -> Option<AttachmentMeta> {
    Some(AttachmentMeta {
        file: f.id.clone(),
        name: f.name.clone(),
        mime: f.mime.clone(),
        size: f.size,
        sha256: f.sha256.clone()?,
    })
}

pub(crate) fn not_found() -> ProtoError {
    ProtoError::not_found("no such file")
}

pub(crate) fn io_err(e: std::io::Error) -> ProtoError {
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
pub(crate) async fn readable(
    svc: &Services,
    user: &UserId,
    id: &str,
) -> Result<FileRecord, ProtoError> {
    let (u, id) = (user.clone(), id.to_owned());
    svc.db(move |s| {
        Ok(match s.file(&id)? {
            Some(f) if f.sha256.is_some() && may_read(s, &u, &f)? => Some(f),
            _ => None,
        })
    })
    .await?
    .ok_or_else(not_found)
}

pub(crate) async fn secret(svc: &Services) -> Result<Arc<Vec<u8>>, ProtoError> {
    if let Some(s) = svc.link_secret.get() {
        return Ok(s.clone());
    }
    let s = Arc::new(svc.db(|s| s.server_secret()).await?);
    Ok(svc.link_secret.get_or_init(|| s).clone())
}

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn sign(secret: &[u8], id: &str, exp: i64) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("{id}:{exp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
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
        if let Some(m) = s.file(&id)?.as_ref().and_then(attachment_meta) {
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

/// Authorizes an HTTP download of `id` by bearer token or by a signed
/// link (`exp`, `sig` from `file.url`).
pub(crate) async fn authorize_download(
    svc: &Services,
    bearer: Option<&str>,
    signed: Option<(i64, &str)>,
    id: &str,
) -> Result<Download, HttpRefusal> {
    let unavailable = |_| HttpRefusal::Unavailable;
    if let Some((exp, sig)) = signed {
        let secret = secret(svc).await.map_err(unavailable)?;
        let good = exp >= now_millis() / 1000
            && constant_eq(sign(&secret, id, exp).as_bytes(), sig.as_bytes());
        if !good {
            return Err(HttpRefusal::Unauthorized);
        }
        let id = id.to_owned();
        let f = svc.db(move |s| s.file(&id)).await.map_err(unavailable)?;
        return f
            .as_ref()
            .and_then(attachment_meta)
            .map(|meta| Download { meta })
            .ok_or(HttpRefusal::NotFound);
    }
    let Some(token) = bearer else {
        return Err(HttpRefusal::Unauthorized);
    };
    let hash = crate::auth::token_hash(token);
    let ttl_ms = i64::from(svc.config.auth.token_ttl_days) * 86_400_000;
    let found = svc
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
    let f = readable(svc, &user, id).await.map_err(|e| {
        if e.code == ErrorCode::NotFound {
            HttpRefusal::NotFound
        } else {
            HttpRefusal::Unavailable
        }
    })?;
    Ok(Download {
        meta: attachment_meta(&f).ok_or(HttpRefusal::NotFound)?,
    })
}

/// Removes unfinished uploads and unsent files older than
/// `limits.upload_ttl_secs`, and blobs no file uses any more. Each file is
/// removed holding its upload's lock (no chunk or end of it runs
/// meanwhile), only if still unsent when it is deleted, and its blob only
/// if unused under the blob's lock (see [`remove_stale`]).
pub(crate) async fn collect(svc: &Services) -> Result<usize, ProtoError> {
    let before: Millis = now_millis() - (svc.config.limits.upload_ttl_secs as i64) * 1000;
    let stale = svc.db(move |s| s.stale_files(before)).await?;
    let mut removed = 0;
    for f in stale {
        let mut upload = svc.uploads.lock(&f.id).await;
        let locks = svc.uploads.blob_locks();
        let gone = svc
            .blocking(move |s, blobs| remove_stale(s, blobs, &locks, &f.id, before))
            .await??;
        if gone {
            *upload = None;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes file `id` if it is still stale, with its partial upload, and
/// its blob if no file uses it any more. The store checks and deletes in
/// one step, against a concurrent `attach_file`; the blob is checked and
/// removed under its lock, which `file.end` holds from committing the same
/// blob to recording its file as finished. Whether the file was removed.
fn remove_stale(
    s: &dyn Store,
    blobs: &dyn BlobStore,
    locks: &BlobLocks,
    id: &str,
    before: Millis,
) -> Result<bool, ProtoError> {
    let Some(f) = s.delete_stale_file(id, before)? else {
        return Ok(false);
    };
    let _ = blobs.discard_upload(id);
    if let Some(sha) = &f.sha256 {
        let _blob = locks.lock(sha);
        if !s.blob_in_use(sha)? {
            blobs.remove(sha).map_err(io_err)?;
        }
    }
    Ok(true)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The wire form of a stored message.
pub(crate) fn msg_frame(
    m: crate::store::StoredMessage,
    metas: &Metas,
) -> crate::protocol::ServerFrame {
    let attachment = m.attachment.as_ref().and_then(|id| metas.get(id).cloned());
    crate::protocol::ServerFrame::Msg(crate::protocol::MsgFrame {
        conv: m.conv,
        seq: m.seq,
        from: m.from,
        body: m.body,
        ts: m.ts,
        client_id: m.client_id,
        attachment,
    })
}

/// Attachment metadata by file id.
pub(crate) type Metas = HashMap<String, crate::protocol::AttachmentMeta>;

/// Messages with the metadata of their attachments (on the pool).
pub(crate) fn with_metas(
    s: &dyn Store,
    msgs: Vec<crate::store::StoredMessage>,
) -> Result<(Vec<crate::store::StoredMessage>, Metas), StoreError> {
    let metas = metas(s, msgs.iter().filter_map(|m| m.attachment.clone()))?;
    Ok((msgs, metas))
}
