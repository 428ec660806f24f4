-- Named admin accounts, who each session belongs to, and the audit log of
-- what admins did. Kept column for column in step with the other dialect's
-- 0015_admin_accounts.sql.

-- One row per named admin. `password_hash` is an argon2 PHC string, NULL
-- until the account's one-time link was used. `link_nonce` is signed into
-- that link and replaced when a password is set, so each link works once.
CREATE TABLE admins (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT,
    link_nonce    TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;

-- A session's account: NULL for the bootstrap account "admin" (the
-- configured password). `last_seen_at` moves with use: an idle session ends.
ALTER TABLE admin_sessions ADD COLUMN admin_id INTEGER;
ALTER TABLE admin_sessions ADD COLUMN last_seen_at TEXT;
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

-- What admins did: who (the account's name then, and its id; NULL for the
-- bootstrap account and the command line), when, the action's code, and a
-- sentence in plain words.
CREATE TABLE admin_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    admin_id INTEGER,
    action   TEXT NOT NULL,
    summary  TEXT NOT NULL
) STRICT;

-- Password links go through the outbox as kind 'admin-password'. SQLite
-- cannot change a CHECK constraint, so the table is rebuilt with its rows.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL
                    CHECK (kind IN ('digest', 'announcement', 'confirmation', 'alert', 'admin-password')),
    recipient       TEXT NOT NULL,
    subscriber_id   INTEGER,
    subject         TEXT NOT NULL,
    message         BLOB NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'unconfirmed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    handed_over_at  TEXT
) STRICT;
INSERT INTO outbox_new SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
