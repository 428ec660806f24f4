-- Resources, their revisions and change events; ingest runs and per-source state;
-- the feed version. Times are fixed-width RFC 3339 UTC text, so text order is
-- time order. Kept column for column in step with migrations/postgres/0001_init.sql.

CREATE TABLE resources (
    id            TEXT PRIMARY KEY NOT NULL,
    source        TEXT NOT NULL,
    identity      TEXT NOT NULL UNIQUE,
    guid          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    link          TEXT,
    summary       TEXT NOT NULL,          -- JSON of model::Summary
    entry_date    TEXT,                   -- YYYY-MM-DD, or YYYY-MM
    category      TEXT NOT NULL,
    category_slug TEXT NOT NULL,
    download      TEXT,
    fingerprint   TEXT NOT NULL,
    published     TEXT NOT NULL,          -- Resource::published(), for ordering
    first_seen    TEXT NOT NULL,
    updated       TEXT NOT NULL,
    withdrawn_at  TEXT,
    missing_runs  INTEGER NOT NULL DEFAULT 0,
    revision      INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX resources_source ON resources (source);
CREATE INDEX resources_newest ON resources (published DESC, first_seen DESC, id DESC);
CREATE INDEX resources_category ON resources (category_slug);
CREATE INDEX resources_updated ON resources (updated);

CREATE TABLE revisions (
    resource_id   TEXT NOT NULL REFERENCES resources (id),
    seq           INTEGER NOT NULL,
    title         TEXT NOT NULL,
    link          TEXT,
    summary       TEXT NOT NULL,
    entry_date    TEXT,
    category      TEXT NOT NULL,
    category_slug TEXT NOT NULL,
    download      TEXT,
    fingerprint   TEXT NOT NULL,
    seen_at       TEXT NOT NULL,
    PRIMARY KEY (resource_id, seq)
) STRICT;

CREATE TABLE change_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id TEXT NOT NULL REFERENCES resources (id),
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('new', 'changed', 'withdrawn', 'reappeared')),
    fields      TEXT NOT NULL,            -- JSON list of reconcile::FieldChange
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX change_events_at ON change_events (at);
CREATE INDEX change_events_resource ON change_events (resource_id, id);

CREATE TABLE source_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ok          INTEGER NOT NULL,         -- 1 or 0
    entries     INTEGER NOT NULL DEFAULT 0,
    new         INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    withdrawn   INTEGER NOT NULL DEFAULT 0,
    reappeared  INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    error       TEXT
) STRICT;
CREATE INDEX source_runs_source ON source_runs (source, id);

-- run_seq is the optimistic lock: an apply succeeds only if it still sees the
-- run_seq it loaded, so two runs of one source never both write.
CREATE TABLE source_state (
    source               TEXT PRIMARY KEY NOT NULL,
    run_seq              INTEGER NOT NULL DEFAULT 0,
    last_good_entries    INTEGER,
    last_good_at         TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row; feed_version moves whenever an apply records a change event.
CREATE TABLE store_meta (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    feed_version INTEGER NOT NULL
) STRICT;
INSERT INTO store_meta (id, feed_version) VALUES (1, 0);

-- The last good copy of each page an html source fetched, with its validators,
-- so the next run can ask for it conditionally and reuse it on 304.
CREATE TABLE page_cache (
    source        TEXT NOT NULL,
    url           TEXT NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    body          TEXT NOT NULL,
    fetched_at    TEXT NOT NULL,
    PRIMARY KEY (source, url)
) STRICT;
