//! File requests: `file.begin`, `file.chunk`, `file.status`, `file.end`,
//! `file.read`, `file.url`. The rules they share with HTTP downloads
//! (who may read a file, link signing) are in [`crate::files`].

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::blob::BlobStore;
use crate::error::ProtoError;
use crate::files::{
    io_err, not_found, readable, secret, sign, CHUNK_MAX, LINK_TTL_SECS, MAX_NAME_CHARS,
};
use crate::ids::now_millis;
use crate::protocol::Reply;
use crate::services::{Running, Services, UploadGuard};
use crate::store::files::{BeginOutcome, UploadLimits};
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
    let limits = UploadLimits {
        quota: limits.user_quota,
        max_open: limits.max_open_uploads,
    };
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
    match me.svc.db(move |s| s.begin_file(&record, limits)).await? {
        BeginOutcome::Begun => Ok(Reply::FileBegun { file: id }),
        BeginOutcome::OverQuota => Err(ProtoError::too_large("over your storage quota")),
        BeginOutcome::TooManyOpen => Err(ProtoError::rate_limited(format!(
            "at most {} unfinished uploads at a time",
            limits.max_open
        ))),
    }
}

/// The upload `id` of `me`, finished or not, read while holding its lock;
/// else `not_found` (and the lock keeps no state for it).
async fn own_upload(
    me: &Ctx,
    id: &str,
    upload: &mut UploadGuard<'_>,
) -> Result<FileRecord, ProtoError> {
    let id = id.to_owned();
    match me.svc.db(move |s| s.file(&id)).await? {
        Some(f) if f.uploader == me.user => Ok(f),
        _ => {
            **upload = None;
            Err(not_found())
        }
    }
}

/// The running hash of an upload, rebuilt from the partial upload when
/// not known (after a restart, or a write that failed part way).
async fn running<'g>(
    svc: &Services,
    id: &str,
    state: &'g mut Option<Running>,
) -> Result<&'g mut Running, ProtoError> {
    let run = match state.take() {
        Some(run) => run,
        None => {
            let upload = id.to_owned();
            svc.blocking(move |_, blobs| rehash(blobs, &upload))
                .await?
                .map_err(io_err)?
        }
    };
    Ok(state.insert(run))
}

/// Hashes what a partial upload holds.
fn rehash(blobs: &dyn BlobStore, upload: &str) -> std::io::Result<Running> {
    let len = blobs.upload_len(upload)?;
    let mut hash = Sha256::new();
    let mut received = 0;
    while received < len {
        let part = blobs.read_upload(upload, received, 1 << 20)?;
        if part.is_empty() {
            break;
        }
        received += part.len() as u64;
        hash.update(&part);
    }
    Ok(Running { received, hash })
}

/// `file.chunk`: contiguous, within the announced size. The upload's lock
/// is held from the offset check until the bytes and the progress are
/// stored, so two chunks at one offset never both pass.
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
    let mut upload = me.svc.uploads.lock(id).await;
    let f = own_upload(me, id, &mut upload).await?;
    if f.sha256.is_some() {
        *upload = None;
        return Err(ProtoError::conflict("upload already finished"));
    }
    let run = running(&me.svc, id, &mut upload).await?;
    if offset != run.received {
        return Err(ProtoError::bad_request(format!(
            "expected offset {}",
            run.received
        )));
    }
    let now = offset.saturating_add(bytes.len() as u64);
    if now > f.size {
        return Err(ProtoError::bad_request(
            "chunk goes past the announced size",
        ));
    }
    let mut hash = run.hash.clone();
    hash.update(&bytes);
    // Unknown until the write is known to have happened (in full or in
    // part): then rebuilt from what the partial upload holds.
    *upload = None;
    let upload_id = id.to_owned();
    me.svc
        .blocking(move |s, blobs| -> Result<(), ProtoError> {
            blobs.append(&upload_id, offset, &bytes).map_err(io_err)?;
            s.set_file_received(&upload_id, now)?;
            Ok(())
        })
        .await??;
    *upload = Some(Running {
        received: now,
        hash,
    });
    Ok(Reply::Empty)
}

/// `file.status`.
pub(crate) async fn status(me: &Ctx, id: &str) -> Result<Reply, ProtoError> {
    let mut upload = me.svc.uploads.lock(id).await;
    let f = own_upload(me, id, &mut upload).await?;
    let done = f.sha256.is_some();
    let received = if done {
        *upload = None;
        f.size
    } else {
        running(&me.svc, id, &mut upload).await?.received
    };
    Ok(Reply::FileStatus {
        received,
        size: f.size,
        done,
    })
}

/// `file.end`: checks the size, commits the blob under its hash. The blob
/// is committed and the file recorded as finished under the blob's lock,
/// which cleanup takes to find a blob unused and remove it.
pub(crate) async fn end(me: &Ctx, id: &str) -> Result<Reply, ProtoError> {
    let mut upload = me.svc.uploads.lock(id).await;
    let f = own_upload(me, id, &mut upload).await?;
    if let Some(sha) = f.sha256 {
        *upload = None;
        return Ok(Reply::FileEnded {
            file: f.id,
            size: f.size,
            sha256: sha,
        });
    }
    let run = running(&me.svc, id, &mut upload).await?;
    if run.received != f.size {
        return Err(ProtoError::bad_request(format!(
            "received {} of {} bytes",
            run.received, f.size
        )));
    }
    let sha = hex::encode(run.hash.clone().finalize());
    let (upload_id, sha2, locks) = (id.to_owned(), sha.clone(), me.svc.uploads.blob_locks());
    me.svc
        .blocking(move |s, blobs| -> Result<(), ProtoError> {
            let _blob = locks.lock(&sha2);
            if f.size == 0 {
                // Nothing was appended: make the (empty) upload exist.
                blobs.append(&upload_id, 0, &[]).map_err(io_err)?;
            }
            blobs.commit(&upload_id, &sha2).map_err(io_err)?;
            s.finish_file(&upload_id, &sha2)?;
            Ok(())
        })
        .await??;
    *upload = None;
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
    let Some(sha) = f.sha256.clone() else {
        return Err(not_found());
    };
    // Never past the recorded size, whatever the stored copy holds (a blob
    // is shared by every file with its hash); at or past the end, however
    // far, nothing is read.
    let len = len
        .unwrap_or(CHUNK_MAX as u64)
        .min(CHUNK_MAX as u64)
        .min(f.size.saturating_sub(offset)) as usize;
    let data = if len == 0 {
        Vec::new()
    } else {
        me.svc
            .blocking(move |_, blobs| blobs.read(&sha, offset, len))
            .await?
            .map_err(io_err)?
    };
    let eof = offset.saturating_add(data.len() as u64) >= f.size;
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
