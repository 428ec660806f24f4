-- The unique index on a resource's identity holds the SHA-256 (hex) of the
-- identity key, not the key itself: a btree entry has a size limit (about
-- 2,700 bytes) that a long link exceeded, failing every run of its source.
-- Ids and GUIDs are stored values and do not change. Kept in step with
-- migrations/sqlite/0009_identity_digest.sql.

ALTER TABLE resources ADD COLUMN identity_digest TEXT;
UPDATE resources SET identity_digest = encode(sha256(convert_to(identity, 'UTF8')), 'hex');
ALTER TABLE resources ALTER COLUMN identity_digest SET NOT NULL;
ALTER TABLE resources DROP CONSTRAINT resources_identity_key;
CREATE UNIQUE INDEX resources_identity_digest ON resources (identity_digest);

-- One-off steps done in Rust after the SQL migrations (see store::upgrade),
-- each recorded once it is done.
CREATE TABLE upgrades (
    name    TEXT PRIMARY KEY NOT NULL,
    done_at TEXT NOT NULL
);
