//! File requests: `file.begin`, `file.chunk`, `file.status`, `file.end`,
//! `file.read`, `file.url`. The rules they share with HTTP downloads
//! (who may read a file, link signing) are in [`crate::files`].

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::error::ProtoError;
use crate::files::{
    io_err, not_found, readable, secret, sign, CHUNK_MAX, LINK_TTL_SECS, MAX_NAME_CHARS,
};
use crate::ids::now_millis;
use crate::protocol::Reply;
use crate::services::Services;
use crate::store::FileRecord;

const DEFAULT_MIME: &str = "application/octet-stream";

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
    me: &Ctx,
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
    let limits = &me.svc.config.limits;
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
        .svc
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
async fn own_upload(me: &Ctx, id: &str) -> Result<FileRecord, ProtoError> {
    let id = id.to_owned();
    let f = me
        .svc
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
async fn hasher(svc: &Services, id: &str) -> Result<(u64, Sha256), ProtoError> {
    if let Some(h) = svc
        .uploads
        .hashers
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
    {
        return Ok(h);
    }
    let upload = id.to_owned();
    let h = svc
        .blocking(move |_, blobs| -> std::io::Result<(u64, Sha256)> {
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
pub(crate) async fn chunk(
    me: &Ctx,
    id: &str,
    offset: u64,
    data: &str,
) -> Result<Reply, ProtoError> {
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
    let (received, mut h) = hasher(&me.svc, id).await?;
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
    let upload = id.to_owned();
    me.svc
        .blocking(move |s, blobs| -> Result<(), ProtoError> {
            blobs.append(&upload, offset, &bytes).map_err(io_err)?;
            s.set_file_received(&upload, now)?;
            Ok(())
        })
        .await??;
    if let Ok(mut m) = me.svc.uploads.hashers.lock() {
        m.insert(id.to_owned(), (now, h));
    }
    Ok(Reply::Empty)
}

/// `file.status`.
pub(crate) async fn status(me: &Ctx, id: &str) -> Result<Reply, ProtoError> {
    let f = own_upload(me, id).await?;
    let done = f.sha256.is_some();
    let received = if done {
        f.size
    } else {
        hasher(&me.svc, id).await?.0
    };
    Ok(Reply::FileStatus {
        received,
        size: f.size,
        done,
    })
}

/// `file.end`: checks the size, commits the blob under its hash.
pub(crate) async fn end(me: &Ctx, id: &str) -> Result<Reply, ProtoError> {
    let f = own_upload(me, id).await?;
    if let Some(sha) = f.sha256 {
        return Ok(Reply::FileEnded {
            file: f.id,
            size: f.size,
            sha256: sha,
        });
    }
    let (received, h) = hasher(&me.svc, id).await?;
    if received != f.size {
        return Err(ProtoError::bad_request(format!(
            "received {received} of {} bytes",
            f.size
        )));
    }
    let sha = hex::encode(h.finalize());
    let (upload, sha2) = (id.to_owned(), sha.clone());
    me.svc
        .blocking(move |s, blobs| -> Result<(), ProtoError> {
            if f.size == 0 {
                // Nothing was appended: make the (empty) upload exist.
                blobs.append(&upload, 0, &[]).map_err(io_err)?;
            }
            blobs.commit(&upload, &sha2).map_err(io_err)?;
            s.finish_file(&upload, &sha2)?;
            Ok(())
        })
        .await??;
    if let Ok(mut m) = me.svc.uploads.hashers.lock() {
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
    me: &Ctx,
    id: &str,
    offset: u64,
    len: Option<u64>,
) -> Result<Reply, ProtoError> {
    let f = readable(&me.svc, &me.user, id).await?;
    let len = len.unwrap_or(CHUNK_MAX as u64).min(CHUNK_MAX as u64) as usize;
    let Some(sha) = f.sha256.clone() else {
        return Err(not_found());
    };
    let data = me
        .svc
        .blocking(move |_, blobs| blobs.read(&sha, offset, len))
        .await?
        .map_err(io_err)?;
    let eof = offset + data.len() as u64 >= f.size;
    Ok(Reply::FileData {
        data: base64::engine::general_purpose::STANDARD.encode(&data),
        eof,
    })
}

/// `file.url`: a link valid for an hour, signed with the store's secret.
pub(crate) async fn url(me: &Ctx, id: &str) -> Result<Reply, ProtoError> {
    let f = readable(&me.svc, &me.user, id).await?;
    let exp = now_millis() / 1000 + LINK_TTL_SECS;
    let sig = sign(&secret(&me.svc).await?, &f.id, exp);
    Ok(Reply::FileUrl {
        url: format!("/files/{}?exp={exp}&sig={sig}", f.id),
        expires: exp * 1000,
    })
}
