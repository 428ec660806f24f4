-- Runs held for a person: a run whose changes are implausible (issue 13) is
-- stored, not applied, until `tidings runs accept` or `reject`. Every run now
-- records its outcome: ok, partial, failed, held, accepted or rejected. Kept
-- in step with migrations/postgres/0008_held_runs.sql.

ALTER TABLE source_runs ADD COLUMN outcome TEXT;
UPDATE source_runs SET outcome = CASE WHEN ok = 1 THEN 'ok' ELSE 'failed' END;

-- The snapshot of a held run, kept until it is accepted or rejected.
CREATE TABLE held_runs (
    run_id  INTEGER PRIMARY KEY NOT NULL REFERENCES source_runs (id),
    source  TEXT NOT NULL,
    entries TEXT NOT NULL,                -- JSON list of model::Entry, in page order
    partial INTEGER NOT NULL,             -- 1: nothing counts as missing when applied
    summary TEXT NOT NULL                 -- JSON list of the field summary lines
) STRICT;
CREATE INDEX held_runs_source ON held_runs (source);
