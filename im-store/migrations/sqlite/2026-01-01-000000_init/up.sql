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
    -- Time of the last message (a new message's ts is never below it).
    last_ts BIGINT NOT NULL DEFAULT 0,
    -- Time of last activity, for ordering: the last message, else the
    -- room's creation.
    activity BIGINT NOT NULL DEFAULT 0
);

-- No foreign key to conversations: every message is written under its
-- conversation's counter row, and a per-row key check costs about as much
-- as the insert itself.
CREATE TABLE messages (
    conv_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    ts BIGINT NOT NULL,
    client_id TEXT,
    attachment TEXT,
    UNIQUE (conv_id, seq)
);
-- Unread counts: a user's own messages after their read cursor.
CREATE INDEX messages_by_sender ON messages (conv_id, sender, seq);

-- Idempotency: (conv, sender, client_id) is unique; the original seq and ts.
-- A table of its own, so its lookups never compete with messages_by_sender.
CREATE TABLE client_ids (
    conv_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (conv_id, sender, client_id)
) WITHOUT ROWID;

-- Per (conversation, user): membership, the user's read cursor, and where
-- a room member's cursors start (the last seq when they joined; 0 when not
-- a member). A row with member = 0 only carries a read cursor.
CREATE TABLE conv_users (
    conv_id BIGINT NOT NULL REFERENCES conversations (id),
    user_name TEXT NOT NULL,
    member BOOLEAN NOT NULL DEFAULT 0,
    read_seq BIGINT NOT NULL DEFAULT 0,
    joined_seq BIGINT NOT NULL DEFAULT 0,
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

CREATE TABLE rooms (
    name TEXT NOT NULL PRIMARY KEY,
    topic TEXT NOT NULL,
    public BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
) WITHOUT ROWID;

-- pos orders members by joining (rowids only grow past the current ones).
CREATE TABLE room_members (
    pos INTEGER PRIMARY KEY,
    room TEXT NOT NULL REFERENCES rooms (name),
    user_name TEXT NOT NULL,
    owner BOOLEAN NOT NULL,
    joined_at BIGINT NOT NULL,
    UNIQUE (room, user_name)
);
CREATE INDEX room_members_by_pos ON room_members (room, pos);

CREATE TABLE room_bans (
    room TEXT NOT NULL REFERENCES rooms (name),
    user_name TEXT NOT NULL,
    PRIMARY KEY (room, user_name)
) WITHOUT ROWID;

CREATE TABLE room_invites (
    user_name TEXT NOT NULL,
    room TEXT NOT NULL REFERENCES rooms (name),
    from_user TEXT NOT NULL,
    PRIMARY KEY (user_name, room)
) WITHOUT ROWID;
