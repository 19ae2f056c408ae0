//! Files: upload metadata and where each file was sent. The bytes live in
//! a [`crate::blob::BlobStore`].

use crate::error::StoreResult;
use crate::ids::{ConvId, Millis, UserId};

/// An uploaded (or uploading) file's metadata. The bytes live in a
/// [`crate::blob::BlobStore`] under `sha256` once finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// Opaque id (`f-` and 32 hex digits), server-generated.
    pub id: String,
    /// Who uploads it.
    pub uploader: UserId,
    /// Display name, 1 to 255 characters; never used as a path.
    pub name: String,
    /// MIME type, `type/subtype`.
    pub mime: String,
    /// Announced size in bytes.
    pub size: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Lowercase hex SHA-256, once finished.
    pub sha256: Option<String>,
    /// When the upload began.
    pub created_at: Millis,
}

/// What a user's new upload must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    /// Bytes all of the user's files may take (announced sizes, unfinished
    /// uploads included). Once they take this much, even an empty file is
    /// refused.
    pub quota: u64,
    /// Unfinished uploads the user may have at once.
    pub max_open: u64,
}

/// What [`FileStore::begin_file`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeginOutcome {
    /// The upload is recorded.
    Begun,
    /// Nothing recorded: the quota is used up, or the size does not fit in
    /// what remains of it.
    OverQuota,
    /// Nothing recorded: the user already has `max_open` unfinished uploads.
    TooManyOpen,
}

/// File metadata.
pub trait FileStore {
    /// Records a new upload as it is (no limits; see
    /// [`FileStore::begin_file`]); `StoreError::Conflict` when the id is
    /// taken.
    fn create_file(&self, file: &FileRecord) -> StoreResult<()>;
    /// Records a new upload if its uploader stays within `limits` (quota
    /// first, then unfinished uploads), checked and inserted atomically, so
    /// that concurrent begins of one user, from any process, never pass
    /// the limits together; `StoreError::Conflict` when the id is taken.
    fn begin_file(&self, file: &FileRecord, limits: UploadLimits) -> StoreResult<BeginOutcome>;
    /// Looks a file up.
    fn file(&self, id: &str) -> StoreResult<Option<FileRecord>>;
    /// Records upload progress; `StoreError::NotFound` if unknown.
    fn set_file_received(&self, id: &str, received: u64) -> StoreResult<()>;
    /// Marks an upload finished with its hash; `StoreError::NotFound` if unknown.
    fn finish_file(&self, id: &str, sha256: &str) -> StoreResult<()>;
    /// Records that the file was sent to `conv` (its members may read it);
    /// `StoreError::NotFound` when there is no such file. Atomic against
    /// [`FileStore::delete_stale_file`]: a file attached is never removed
    /// as unsent.
    fn attach_file(&self, id: &str, conv: &ConvId) -> StoreResult<()>;
    /// Undoes [`FileStore::attach_file`] for a send the store refused:
    /// forgets that the file was sent to `conv`, unless a stored message
    /// of `conv` carries it.
    fn detach_unsent(&self, id: &str, conv: &ConvId) -> StoreResult<()>;
    /// The conversations the file was sent to.
    fn file_convs(&self, id: &str) -> StoreResult<Vec<ConvId>>;
    /// Bytes a user's files take (announced sizes, unfinished ones included).
    fn user_file_bytes(&self, user: &UserId) -> StoreResult<u64>;
    /// Unfinished uploads begun before `before`, and finished files begun
    /// before `before` that no conversation refers to: what cleanup removes.
    fn stale_files(&self, before: Millis) -> StoreResult<Vec<FileRecord>>;
    /// Forgets a file's metadata.
    fn delete_file(&self, id: &str) -> StoreResult<()>;
    /// Forgets file `id` if it is still one that `stale_files(before)`
    /// lists, checked and deleted atomically (against `attach_file` and
    /// `finish_file` too); the record deleted, `None` when it was kept or
    /// did not exist.
    fn delete_stale_file(&self, id: &str, before: Millis) -> StoreResult<Option<FileRecord>>;
    /// Whether another file record still uses the blob `sha256`.
    fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;
}
