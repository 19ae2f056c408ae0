-- Files, token lookups and the server secret (SQLite dialect; keep in step
-- with ../../postgres).

-- Uploaded (or uploading) files' metadata; the bytes live in the blob
-- store under sha256 once finished. Sizes are announced and received byte
-- counts.
CREATE TABLE files (
    id TEXT NOT NULL PRIMARY KEY,
    uploader TEXT NOT NULL,
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    sha256 TEXT,
    created_at BIGINT NOT NULL
);
-- Quota: the sum of a user's sizes, read from the index alone.
CREATE INDEX files_by_uploader ON files (uploader, size);
-- Cleanup: files begun before a cutoff.
CREATE INDEX files_by_created_at ON files (created_at);
-- Whether a blob is still used.
CREATE INDEX files_by_sha256 ON files (sha256) WHERE sha256 IS NOT NULL;

-- The conversations a file was sent to. No foreign key to files, as in the
-- in-memory store; deleting a file deletes its rows here.
CREATE TABLE file_convs (
    file_id TEXT NOT NULL,
    conv TEXT NOT NULL,
    PRIMARY KEY (file_id, conv)
) WITHOUT ROWID;

-- Token logins without a user name (HTTP downloads).
CREATE INDEX devices_by_token ON devices (token_hash, user_name, device)
    WHERE token_hash IS NOT NULL;

-- The hub polls suspended accounts.
CREATE INDEX users_suspended ON users (name) WHERE suspended;

-- Values the server keeps for itself ('link_secret': 32 random bytes).
CREATE TABLE server_settings (
    key TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
