-- im-store schema, SQLite dialect (keep in step with ../../postgres).
-- Text compares in byte order (BINARY collation), as the in-memory store does.

CREATE TABLE users (
    name TEXT NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    suspended BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_seen BIGINT
) WITHOUT ROWID;

-- One row per (user, device); token_hash is NULL once revoked.
CREATE TABLE devices (
    user_name TEXT NOT NULL,
    device TEXT NOT NULL,
    token_hash TEXT,
    token_issued_at BIGINT NOT NULL,
    last_login BIGINT NOT NULL,
    PRIMARY KEY (user_name, device)
) WITHOUT ROWID;

-- Contact relation of an unordered pair, stored with user_a < user_b.
-- requested_by NULL means mutual.
CREATE TABLE relations (
    user_a TEXT NOT NULL,
    user_b TEXT NOT NULL,
    requested_by TEXT,
    PRIMARY KEY (user_a, user_b)
) WITHOUT ROWID;
CREATE INDEX relations_by_b ON relations (user_b, user_a);

CREATE TABLE blocks (
    by_user TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (by_user, target)
) WITHOUT ROWID;
CREATE INDEX blocks_by_target ON blocks (target, by_user);

-- One row per conversation; also the per-conversation seq counter.
-- user_a/user_b are the two members of a direct conversation (NULL for rooms).
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    user_a TEXT,
    user_b TEXT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_ts BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    conv_id BIGINT NOT NULL REFERENCES conversations (id),
    seq BIGINT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    ts BIGINT NOT NULL,
    client_id TEXT,
    attachment TEXT,
    UNIQUE (conv_id, seq)
);
-- Idempotency: (conv, sender, client_id) is unique.
CREATE UNIQUE INDEX messages_client_id ON messages (conv_id, sender, client_id)
    WHERE client_id IS NOT NULL;
-- Unread counts: a user's own messages after their read cursor.
CREATE INDEX messages_by_sender ON messages (conv_id, sender, seq);

-- Per (conversation, user): membership and the user's read cursor. A row
-- with member = 0 only carries a read cursor.
CREATE TABLE conv_users (
    conv_id BIGINT NOT NULL REFERENCES conversations (id),
    user_name TEXT NOT NULL,
    member BOOLEAN NOT NULL DEFAULT 0,
    read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conv_id, user_name)
) WITHOUT ROWID;
CREATE INDEX conv_users_by_user ON conv_users (user_name, conv_id);

-- Per (user, device, conversation): the delivered cursor.
CREATE TABLE delivered (
    user_name TEXT NOT NULL,
    device TEXT NOT NULL,
    conv_id BIGINT NOT NULL REFERENCES conversations (id),
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_name, device, conv_id)
) WITHOUT ROWID;
