//! [`FileStore`] for [`MemoryStore`]: file metadata.

use super::*;

impl FileStore for MemoryStore {
    fn create_file(&self, file: &FileRecord) -> StoreResult<()> {
        let mut g = self.lock()?;
        if g.files.contains_key(&file.id) {
            return Err(StoreError::Conflict);
        }
        g.files.insert(file.id.clone(), file.clone());
        Ok(())
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
        g.file_convs.insert((id.to_owned(), conv.clone()));
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
            .filter(|f| f.created_at < before)
            .filter(|f| f.sha256.is_none() || !g.file_convs.iter().any(|(id, _)| *id == f.id))
            .cloned()
            .collect())
    }

    fn delete_file(&self, id: &str) -> StoreResult<()> {
        let mut g = self.lock()?;
        g.files.remove(id);
        g.file_convs.retain(|(f, _)| f != id);
        Ok(())
    }

    fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let g = self.lock()?;
        Ok(g.files
            .values()
            .any(|f| f.sha256.as_deref() == Some(sha256)))
    }
}
