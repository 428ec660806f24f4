-- Operator alerts: one row per condition (e.g. "source:library"). raised_at is
-- set when it starts and cleared_at when it ends; the conditional updates on
-- these columns decide which process sends the one email for each.
CREATE TABLE alerts (
    name       TEXT PRIMARY KEY NOT NULL,
    raised_at  TEXT NOT NULL,
    cleared_at TEXT
);
