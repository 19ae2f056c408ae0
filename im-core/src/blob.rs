//! File bytes: the [`BlobStore`] trait and an in-memory implementation.
//!
//! Uploads are written to a partial blob named by the server-generated
//! file id, then committed under their SHA-256 (content addressing: two
//! uploads of the same bytes share one blob). Callers only ever pass ids
//! the server made and lowercase hex hashes; implementations must still
//! refuse anything else rather than build a path from it. Every method is
//! blocking and runs on the core's blocking pool.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

/// Where file bytes live.
pub trait BlobStore: Send + Sync + 'static {
    /// Appends `data` to upload `upload`, whose current length is `offset`.
    fn append(&self, upload: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Length of the partial upload (0 when there is none).
    fn upload_len(&self, upload: &str) -> io::Result<u64>;
    /// Reads part of a partial upload (to rebuild its hash after a restart).
    fn read_upload(&self, upload: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Turns a complete upload into the blob `sha256`.
    fn commit(&self, upload: &str, sha256: &str) -> io::Result<()>;
    /// Up to `len` bytes of blob `sha256` from `offset` (fewer at the end).
    fn read(&self, sha256: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Drops a partial upload.
    fn discard_upload(&self, upload: &str) -> io::Result<()>;
    /// Drops a blob.
    fn remove(&self, sha256: &str) -> io::Result<()>;
}

/// Checks that `s` is a server-made name (letters, digits, `-`), so no
/// implementation ever sees a path separator or `..`.
pub fn safe_name(s: &str) -> io::Result<&str> {
    if !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(s)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid blob name",
        ))
    }
}

/// Blobs in memory, for tests and `store.url = "memory:"`.
#[derive(Default)]
pub struct MemoryBlobStore {
    uploads: Mutex<HashMap<String, Vec<u8>>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryBlobStore {
    /// An empty blob store.
    pub fn new() -> MemoryBlobStore {
        MemoryBlobStore::default()
    }
}

fn poisoned() -> io::Error {
    io::Error::other("blob store lock poisoned")
}

fn slice(v: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let start = (offset as usize).min(v.len());
    let end = start.saturating_add(len).min(v.len());
    v[start..end].to_vec()
}

impl BlobStore for MemoryBlobStore {
    fn append(&self, upload: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut u = self.uploads.lock().map_err(|_| poisoned())?;
        let buf = u.entry(safe_name(upload)?.to_owned()).or_default();
        if buf.len() as u64 != offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "non-contiguous write",
            ));
        }
        buf.extend_from_slice(data);
        Ok(())
    }

    fn upload_len(&self, upload: &str) -> io::Result<u64> {
        let u = self.uploads.lock().map_err(|_| poisoned())?;
        Ok(u.get(safe_name(upload)?).map_or(0, |b| b.len() as u64))
    }

    fn read_upload(&self, upload: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let u = self.uploads.lock().map_err(|_| poisoned())?;
        Ok(u.get(safe_name(upload)?)
            .map(|b| slice(b, offset, len))
            .unwrap_or_default())
    }

    fn commit(&self, upload: &str, sha256: &str) -> io::Result<()> {
        let data = self
            .uploads
            .lock()
            .map_err(|_| poisoned())?
            .remove(safe_name(upload)?)
            .unwrap_or_default();
        self.blobs
            .lock()
            .map_err(|_| poisoned())?
            .entry(safe_name(sha256)?.to_owned())
            .or_insert(data);
        Ok(())
    }

    fn read(&self, sha256: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let b = self.blobs.lock().map_err(|_| poisoned())?;
        b.get(safe_name(sha256)?)
            .map(|v| slice(v, offset, len))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such blob"))
    }

    fn discard_upload(&self, upload: &str) -> io::Result<()> {
        self.uploads
            .lock()
            .map_err(|_| poisoned())?
            .remove(safe_name(upload)?);
        Ok(())
    }

    fn remove(&self, sha256: &str) -> io::Result<()> {
        self.blobs
            .lock()
            .map_err(|_| poisoned())?
            .remove(safe_name(sha256)?);
        Ok(())
    }
}
