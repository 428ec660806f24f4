-- The unique index on a resource's identity holds the SHA-256 (hex) of the
-- identity key, as on PostgreSQL, where a long link exceeded the btree entry
-- size limit. SQLite has no SHA-256 function: store::upgrade fills the column
-- for existing rows right after this migration, and every insert sets it.
-- The table's original UNIQUE (identity) stays: SQLite has no size limit on
-- it, and dropping an inline constraint would mean rebuilding the table.
-- Ids and GUIDs are stored values and do not change. Kept in step with
-- migrations/postgres/0009_identity_digest.sql.

ALTER TABLE resources ADD COLUMN identity_digest TEXT;
CREATE UNIQUE INDEX resources_identity_digest ON resources (identity_digest);

-- One-off steps done in Rust after the SQL migrations (see store::upgrade),
-- each recorded once it is done.
CREATE TABLE upgrades (
    name    TEXT PRIMARY KEY NOT NULL,
    done_at TEXT NOT NULL
) STRICT;
