//! [`FileStore`](im_core::store::FileStore), written once for every
//! backend: upload metadata and where each file was sent.

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;

use im_core::error::{StoreError, StoreResult};
use im_core::ids::{ConvId, Millis, UserId};
use im_core::store::files::{BeginOutcome, UploadLimits};
use im_core::store::FileRecord;

use crate::accounts::{changed, conflict_or, LockUser};
use crate::db::Db;
use crate::error::DbError;
use crate::messages::parse_conv;
use crate::sql::{sql, statements, BoolRow, Conn, Exec, I64Row, Reads, TextRow};

/// What the file statements need of a connection: the rows they read.
pub(crate) trait FilesConn:
    Conn<Backend: Reads<FileRow> + Reads<TextRow> + Reads<I64Row> + Reads<BoolRow>>
{
}

impl<C> FilesConn for C where
    C: Conn<Backend: Reads<FileRow> + Reads<TextRow> + Reads<I64Row> + Reads<BoolRow>>
{
}

/// A `files` row.
#[derive(QueryableByName)]
pub(crate) struct FileRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    uploader: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    mime: String,
    #[diesel(sql_type = BigInt)]
    size: i64,
    #[diesel(sql_type = BigInt)]
    received: i64,
    #[diesel(sql_type = Nullable<Text>)]
    sha256: Option<String>,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
}

impl TryFrom<FileRow> for FileRecord {
    type Error = DbError;

    fn try_from(r: FileRow) -> Result<FileRecord, DbError> {
        let bytes = |v: i64, what: &str| {
            u64::try_from(v)
                .map_err(|_| DbError::Corrupt(format!("file {}: negative {what} {v}", r.id)))
        };
        Ok(FileRecord {
            size: bytes(r.size, "size")?,
            received: bytes(r.received, "received")?,
            uploader: UserId::from_stored(&r.uploader),
            name: r.name,
            mime: r.mime,
            sha256: r.sha256,
            created_at: r.created_at,
            id: r.id,
        })
    }
}

statements! {
    /// Parameters: id, uploader, name, mime, size, received, sha256, created_at.
    InsertFile = "INSERT INTO files \
        (id, uploader, name, mime, size, received, sha256, created_at) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    /// Parameter: id.
    SelectFile = "SELECT id, uploader, name, mime, size, received, sha256, created_at \
        FROM files WHERE id = ?";
    /// Parameters: received, id.
    SetReceived = "UPDATE files SET received = ? WHERE id = ?";
    /// Parameters: sha256, id.
    Finish = "UPDATE files SET sha256 = ? WHERE id = ?";
    /// Parameters: id, conversation name.
    Attach = "INSERT INTO file_convs (file_id, conv) VALUES (?, ?) ON CONFLICT DO NOTHING";
    /// Parameters: id, conv, conv, id.
    DetachUnsent = "DELETE FROM file_convs WHERE file_id = ? AND conv = ? AND NOT EXISTS \
        (SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conv_id \
         WHERE c.name = ? AND m.attachment = ?)";
    /// Parameter: id.
    FileConvs = "SELECT conv AS v FROM file_convs WHERE file_id = ?";
    /// Bytes a user's files take (announced sizes). Parameter: uploader.
    /// The cast makes the sum a BIGINT on PostgreSQL too (not NUMERIC).
    UserFileBytes = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS v FROM files \
        WHERE uploader = ?";
    /// Parameter: before. Not `ORDER BY id`, which would lead SQLite to
    /// walk the whole table in id order instead of the `created_at` range.
    StaleFiles = "SELECT f.id, f.uploader, f.name, f.mime, f.size, f.received, f.sha256, \
        f.created_at FROM files f WHERE f.created_at < ? AND (f.sha256 IS NULL \
        OR NOT EXISTS (SELECT 1 FROM file_convs fc WHERE fc.file_id = f.id))";
    /// Unfinished uploads of a user. Parameter: uploader.
    OpenUploads = "SELECT CAST(COUNT(*) AS BIGINT) AS v FROM files \
        WHERE uploader = ? AND sha256 IS NULL";
    /// A no-op write that locks a file's row until the transaction ends
    /// (0 rows: no such file), so attaching it and collecting it take
    /// turns. Parameter: id.
    LockFile = "UPDATE files SET received = received WHERE id = ?";
    /// The file if `StaleFiles` would list it. Parameters: id, before.
    StaleFile = "SELECT f.id, f.uploader, f.name, f.mime, f.size, f.received, f.sha256, \
        f.created_at FROM files f WHERE f.id = ? AND f.created_at < ? AND (f.sha256 IS NULL \
        OR NOT EXISTS (SELECT 1 FROM file_convs fc WHERE fc.file_id = f.id))";
    /// Parameter: id.
    DeleteFileConvs = "DELETE FROM file_convs WHERE file_id = ?";
    /// Parameter: id.
    DeleteFile = "DELETE FROM files WHERE id = ?";
    /// Parameter: sha256.
    BlobInUse = "SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?) AS v";
}

/// A byte count from the API as a database integer. Counts past
/// `i64::MAX` cannot be stored: refused, nothing is written.
fn bytes_i64(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v)
        .map_err(|_| StoreError::unavailable(format!("{what} {v} is too large to store")))
}

/// Inserts a `files` row (sizes already checked to fit a BIGINT).
fn insert_file(
    c: &mut impl FilesConn,
    file: &FileRecord,
    size: i64,
    received: i64,
) -> Result<(), DbError> {
    sql::<InsertFile>()
        .bind::<Text, _>(file.id.as_str())
        .bind::<Text, _>(file.uploader.as_str())
        .bind::<Text, _>(file.name.as_str())
        .bind::<Text, _>(file.mime.as_str())
        .bind::<BigInt, _>(size)
        .bind::<BigInt, _>(received)
        .bind::<Nullable<Text>, _>(file.sha256.as_deref())
        .bind::<BigInt, _>(file.created_at)
        .run(c)?;
    Ok(())
}

/// Records a new upload; `Conflict` when the id is taken.
pub(crate) fn create_file(db: &impl Db, file: &FileRecord) -> StoreResult<()> {
    let size = bytes_i64(file.size, "file size")?;
    let received = bytes_i64(file.received, "received bytes")?;
    db.write(|c| insert_file(c, file, size, received))
        .map_err(conflict_or)
}

/// Records a new upload if its uploader stays within `limits`: the
/// uploader's row is locked, then their files summed and counted, then the
/// upload inserted, all in one transaction.
pub(crate) fn begin_file(
    db: &impl Db,
    file: &FileRecord,
    limits: UploadLimits,
) -> StoreResult<BeginOutcome> {
    let size = bytes_i64(file.size, "file size")?;
    let received = bytes_i64(file.received, "received bytes")?;
    let uploader = file.uploader.as_str();
    db.txn(|c| {
        sql::<LockUser>().bind::<Text, _>(uploader).run(c)?;
        let total = |r: Option<I64Row>, what: &str| {
            let v = r.map_or(0, |r| r.v);
            u64::try_from(v)
                .map_err(|_| DbError::Corrupt(format!("negative {what} {v} for {uploader}")))
        };
        let used = total(
            sql::<UserFileBytes>().bind::<Text, _>(uploader).row(c)?,
            "file bytes",
        )?;
        if used >= limits.quota || used.saturating_add(file.size) > limits.quota {
            return Ok(BeginOutcome::OverQuota);
        }
        let open = total(
            sql::<OpenUploads>().bind::<Text, _>(uploader).row(c)?,
            "open uploads",
        )?;
        if open >= limits.max_open {
            return Ok(BeginOutcome::TooManyOpen);
        }
        insert_file(c, file, size, received)?;
        Ok(BeginOutcome::Begun)
    })
    .map_err(conflict_or)
}

/// Looks a file up.
pub(crate) fn file(db: &impl Db, id: &str) -> StoreResult<Option<FileRecord>> {
    Ok(db.read(|c| {
        sql::<SelectFile>()
            .bind::<Text, _>(id)
            .row::<FileRow, _>(c)?
            .map(FileRecord::try_from)
            .transpose()
    })?)
}

/// Records upload progress; `NotFound` if unknown.
pub(crate) fn set_file_received(db: &impl Db, id: &str, received: u64) -> StoreResult<()> {
    let received = bytes_i64(received, "received bytes")?;
    changed(db.write(|c| {
        Ok(sql::<SetReceived>()
            .bind::<BigInt, _>(received)
            .bind::<Text, _>(id)
            .run(c)?)
    })?)
}

/// Marks an upload finished with its hash; `NotFound` if unknown.
pub(crate) fn finish_file(db: &impl Db, id: &str, sha256: &str) -> StoreResult<()> {
    changed(db.write(|c| {
        Ok(sql::<Finish>()
            .bind::<Nullable<Text>, _>(Some(sha256))
            .bind::<Text, _>(id)
            .run(c)?)
    })?)
}

/// Records that the file was sent to `conv`; `NotFound` without a file.
/// The file's row stays locked until the row in `file_convs` is written,
/// so `delete_stale_file` sees either no file to attach to or the
/// attachment.
pub(crate) fn attach_file(db: &impl Db, id: &str, conv: &ConvId) -> StoreResult<()> {
    let conv = conv.to_string();
    changed(db.txn(|c| {
        if sql::<LockFile>().bind::<Text, _>(id).run(c)? == 0 {
            return Ok(0);
        }
        sql::<Attach>()
            .bind::<Text, _>(id)
            .bind::<Text, _>(conv.as_str())
            .run(c)?;
        Ok(1)
    })?)
}

/// Forgets that a file was sent to `conv` unless a stored message of
/// `conv` carries it.
pub(crate) fn detach_unsent(db: &impl Db, id: &str, conv: &ConvId) -> StoreResult<()> {
    let conv = conv.to_string();
    db.write(|c| {
        sql::<DetachUnsent>()
            .bind::<Text, _>(id)
            .bind::<Text, _>(conv.as_str())
            .bind::<Text, _>(conv.as_str())
            .bind::<Text, _>(id)
            .run(c)?;
        Ok(())
    })?;
    Ok(())
}

/// The conversations the file was sent to, in `ConvId` order as the
/// in-memory store lists them (not the byte order of their names).
pub(crate) fn file_convs(db: &impl Db, id: &str) -> StoreResult<Vec<ConvId>> {
    let rows = db.read(|c| {
        Ok(sql::<FileConvs>()
            .bind::<Text, _>(id)
            .rows::<TextRow, _>(c)?)
    })?;
    let mut v = rows
        .iter()
        .map(|r| parse_conv(&r.v))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort();
    Ok(v)
}

/// Bytes a user's files take (announced sizes, unfinished ones included).
pub(crate) fn user_file_bytes(db: &impl Db, user: &UserId) -> StoreResult<u64> {
    let total = db.read(|c| {
        Ok(sql::<UserFileBytes>()
            .bind::<Text, _>(user.as_str())
            .row::<I64Row, _>(c)?
            .map_or(0, |r| r.v))
    })?;
    u64::try_from(total)
        .map_err(|_| StoreError::corrupt(format!("negative file bytes {total} for {user}")))
}

/// What cleanup removes: unfinished uploads begun before `before`, and
/// finished ones begun before it that no conversation refers to; by id in
/// byte order, as the in-memory store lists them.
pub(crate) fn stale_files(db: &impl Db, before: Millis) -> StoreResult<Vec<FileRecord>> {
    let mut v: Vec<FileRecord> = db.read(|c| {
        sql::<StaleFiles>()
            .bind::<BigInt, _>(before)
            .rows::<FileRow, _>(c)?
            .into_iter()
            .map(FileRecord::try_from)
            .collect()
    })?;
    v.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(v)
}

/// Forgets a file's metadata and where it was sent.
pub(crate) fn delete_file(db: &impl Db, id: &str) -> StoreResult<()> {
    db.txn(|c| {
        sql::<DeleteFileConvs>().bind::<Text, _>(id).run(c)?;
        sql::<DeleteFile>().bind::<Text, _>(id).run(c)?;
        Ok(())
    })?;
    Ok(())
}

/// Forgets file `id` if it is still stale: its row is locked first, so
/// an `attach_file` or `finish_file` running meanwhile either comes before
/// (and the check sees it) or finds no file.
pub(crate) fn delete_stale_file(
    db: &impl Db,
    id: &str,
    before: Millis,
) -> StoreResult<Option<FileRecord>> {
    Ok(db.txn(|c| {
        if sql::<LockFile>().bind::<Text, _>(id).run(c)? == 0 {
            return Ok(None);
        }
        let Some(row) = sql::<StaleFile>()
            .bind::<Text, _>(id)
            .bind::<BigInt, _>(before)
            .row::<FileRow, _>(c)?
        else {
            return Ok(None);
        };
        sql::<DeleteFileConvs>().bind::<Text, _>(id).run(c)?;
        sql::<DeleteFile>().bind::<Text, _>(id).run(c)?;
        FileRecord::try_from(row).map(Some)
    })?)
}

/// Whether a file record uses the blob `sha256`.
pub(crate) fn blob_in_use(db: &impl Db, sha256: &str) -> StoreResult<bool> {
    Ok(db.read(|c| {
        Ok(sql::<BlobInUse>()
            .bind::<Text, _>(sha256)
            .row::<BoolRow, _>(c)?
            .is_some_and(|r| r.v))
    })?)
}
