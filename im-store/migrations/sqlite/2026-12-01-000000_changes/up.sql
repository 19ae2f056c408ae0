-- The change log other server processes sharing this database read to
-- update their live actors (SQLite dialect; keep in step with
-- ../../postgres). kind: contact (a, b users), room (a), token (a user,
-- b token hash), tokens (a user, b kept token hash or NULL).
CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin BIGINT NOT NULL,
    kind TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX changes_by_at ON changes (at);
