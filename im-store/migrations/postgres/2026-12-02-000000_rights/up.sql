-- The send-rights version: bumped by every write that takes a right to
-- send away, so the group commit's cache of rights knows when to forget
-- (src/rights.rs). One row.
CREATE TABLE rights (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO rights (id, version) VALUES (1, 0);
