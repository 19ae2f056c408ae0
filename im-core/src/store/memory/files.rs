//! [`FileStore`] for [`MemoryStore`]: file metadata.

use super::*;
use crate::store::files::{BeginOutcome, UploadLimits};

impl FileStore for MemoryStore {
    fn create_file(&self, file: &FileRecord) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.files.contains_key(&file.id) {
            return Err(StoreError::Conflict);
        }
        g.files.insert(file.id.clone(), file.clone());
        Ok(())
    }

    fn begin_file(&self, file: &FileRecord, limits: UploadLimits) -> StoreResult<BeginOutcome> {
        let mut g = self.lock()?;
        let mine = || g.files.values().filter(|f| f.uploader == file.uploader);
        let used = mine().fold(0u64, |n, f| n.saturating_add(f.size));
        if used >= limits.quota || used.saturating_add(file.size) > limits.quota {
            return Ok(BeginOutcome::OverQuota);
        }
        if mine().filter(|f| f.sha256.is_none()).count() as u64 >= limits.max_open {
            return Ok(BeginOutcome::TooManyOpen);
        }
        // Taken ids are found last, as a unique key finds them on insert.
        if g.files.contains_key(&file.id) {
            return Err(StoreError::Conflict);
        }
        g.files.insert(file.id.clone(), file.clone());
        Ok(BeginOutcome::Begun)
    }

    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        Ok(self.lock()?.files.get(id).cloned())
    }

    fn set_file_received(&self, id: &str, received: u64) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.get_mut(id).ok_or(StoreError::NotFound)?.received = received;
        Ok(())
    }

    fn finish_file(&self, id: &str, sha256: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.get_mut(id).ok_or(StoreError::NotFound)?.sha256 = Some(sha256.to_owned());
        Ok(())
    }

    fn attach_file(&self, id: &str, conv: &ConvId) -> StoreResult<()> {
        let mut g = self.lock()?;
        if !g.files.contains_key(id) {
            return Err(StoreError::NotFound);
        }
        g.file_convs.insert((id.to_owned(), conv.clone()));
        Ok(())
    }

    fn detach_unsent(&self, id: &str, conv: &ConvId) -> StoreResult<()> {
        let mut g = self.lock()?;
        let sent = g.convs.get(conv).is_some_and(|c| {
            c.messages
                .iter()
                .any(|m| m.attachment.as_deref() == Some(id))
        });
        if !sent {
            g.file_convs.remove(&(id.to_owned(), conv.clone()));
        }
        Ok(())
    }

    fn file_convs(&self, id: &str) -> StoreResult<Vec<ConvId>> {
        let g = self.lock()?;
        Ok(g.file_convs
            .iter()
            .filter(|(f, _)| f == id)
            .map(|(_, c)| c.clone())
            .collect())
    }

    fn user_file_bytes(&self, user: &UserId) -> StoreResult<u64> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .filter(|f| &f.uploader == user)
            .map(|f| f.size)
            .sum())
    }

    fn stale_files(&self, before: Millis) -> StoreResult<Vec<FileRecord>> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .filter(|f| g.is_stale(f, before))
            .cloned()
            .collect())
    }

    fn delete_file(&self, id: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.remove(id);
        g.file_convs.retain(|(f, _)| f != id);
        Ok(())
    }

    fn delete_stale_file(&self, id: &str, before: Millis) -> StoreResult<Option<FileRecord>> {
        let mut g = self.lock()?;
        match g.files.get(id) {
            Some(f) if g.is_stale(f, before) => {}
            _ => return Ok(None),
        }
        g.file_convs.retain(|(f, _)| f != id);
        Ok(g.files.remove(id))
    }

    fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .any(|f| f.sha256.as_deref() == Some(sha256)))
    }
}

impl Inner {
    /// What cleanup removes: begun before `before`, and unfinished or sent
    /// nowhere.
    fn is_stale(&self, f: &FileRecord, before: Millis) -> bool {
        f.created_at < before
            && (f.sha256.is_none() || !self.file_convs.iter().any(|(id, _)| *id == f.id))
    }
}
