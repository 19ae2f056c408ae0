//! [`FsBlobStore`]: file bytes in a directory, content-addressed.
//!
//! Layout under the root (`files.dir`):
//! - `uploads/<file id>`: a partial upload, appended chunk by chunk;
//! - `blobs/<sha256[0..2]>/<sha256>`: finished content, one copy per hash.
//!
//! Every name comes from the server (file ids it generated, hashes it
//! computed) and is checked again by [`im_core::blob::safe_name`]; no path
//! is ever built from anything a client sent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use im_core::blob::{safe_name, BlobStore};

/// Blobs in a directory.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Uses (and creates) `root`.
    pub fn open(root: impl AsRef<Path>) -> io::Result<FsBlobStore> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(root.join("uploads"))?;
        fs::create_dir_all(root.join("blobs"))?;
        Ok(FsBlobStore { root })
    }

    fn upload(&self, id: &str) -> io::Result<PathBuf> {
        Ok(self.root.join("uploads").join(safe_name(id)?))
    }

    fn blob(&self, sha256: &str) -> io::Result<PathBuf> {
        let sha = safe_name(sha256)?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a sha256"));
        }
        Ok(self.root.join("blobs").join(&sha[..2]).join(sha))
    }
}

fn read_at(path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len.min(1 << 20));
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl BlobStore for FsBlobStore {
    fn append(&self, upload: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let path = self.upload(upload)?;
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = f.metadata()?.len();
        if len != offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "non-contiguous write",
            ));
        }
        f.write_all(data)
    }

    fn upload_len(&self, upload: &str) -> io::Result<u64> {
        match fs::metadata(self.upload(upload)?) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn read_upload(&self, upload: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        match read_at(&self.upload(upload)?, offset, len) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            r => r,
        }
    }

    fn commit(&self, upload: &str, sha256: &str) -> io::Result<()> {
        let from = self.upload(upload)?;
        let to = self.blob(sha256)?;
        // Durable before anyone is told the upload is finished.
        File::open(&from)?.sync_all()?;
        if to.exists() {
            return fs::remove_file(&from);
        }
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::rename(&from, &to)?;
        if let Some(dir) = to.parent() {
            // Make the rename itself durable.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn read(&self, sha256: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        read_at(&self.blob(sha256)?, offset, len)
    }

    fn discard_upload(&self, upload: &str) -> io::Result<()> {
        match fs::remove_file(self.upload(upload)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn remove(&self, sha256: &str) -> io::Result<()> {
        match fs::remove_file(self.blob(sha256)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_commit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBlobStore::open(dir.path()).unwrap();
        b.append("f-1", 0, b"hello ").unwrap();
        assert!(b.append("f-1", 3, b"x").is_err());
        b.append("f-1", 6, b"world").unwrap();
        assert_eq!(b.upload_len("f-1").unwrap(), 11);
        assert_eq!(b.read_upload("f-1", 6, 100).unwrap(), b"world");
        let sha = "a".repeat(64);
        b.commit("f-1", &sha).unwrap();
        assert_eq!(b.read(&sha, 0, 5).unwrap(), b"hello");
        assert_eq!(b.upload_len("f-1").unwrap(), 0);
        b.remove(&sha).unwrap();
        assert!(b.read(&sha, 0, 5).is_err());
    }

    #[test]
    fn hostile_names_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let b = FsBlobStore::open(dir.path().join("files")).unwrap();
        for bad in ["../x", "/etc/passwd", "a/b", "..", "", "x\0y", "%2e%2e"] {
            assert!(b.append(bad, 0, b"x").is_err(), "{bad:?}");
            assert!(b.read(bad, 0, 1).is_err(), "{bad:?}");
        }
        assert!(b.read(&"../".repeat(22), 0, 1).is_err());
        assert!(!dir.path().join("x").exists());
    }
}
