-- Delivery that never sends twice, and suppression of refused addresses. Kept
-- in step with migrations/postgres/0007_delivery.sql. SQLite cannot change a
-- CHECK constraint, so both tables are rebuilt with their rows; the new
-- columns come last, as ADD COLUMN puts them in PostgreSQL.

-- handed_over_at is written (conditionally: only while NULL) just before the
-- final "." of a message goes to the server. A row whose sender died after
-- that point may have been accepted, so it becomes 'unconfirmed' instead of
-- being claimed again; an operator can re-queue it by id.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('digest', 'announcement', 'confirmation', 'alert')),
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
INSERT INTO outbox_new (id, idem_key, kind, recipient, subscriber_id, subject, message, status,
                        attempts, next_attempt_at, claimed_until, last_error, created_at, sent_at)
    SELECT id, idem_key, kind, recipient, subscriber_id, subject, message, status,
           attempts, next_attempt_at, claimed_until, last_error, created_at, sent_at
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- refusals counts the server's permanent (5xx) refusals of this recipient or
-- of mail to them since they last confirmed; at mail.suppress_after the
-- subscriber becomes 'suppressed' and gets no digests or announcements until
-- they confirm again.
CREATE TABLE subscribers_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    email                TEXT NOT NULL UNIQUE,
    categories           TEXT NOT NULL,
    frequency            TEXT NOT NULL CHECK (frequency IN ('weekly', 'daily')),
    status               TEXT NOT NULL
                         CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'suppressed')),
    token_nonce          TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    confirmed_at         TEXT,
    unsubscribed_at      TEXT,
    window_end           TEXT,
    confirmation_sent_at TEXT,
    refusals             INTEGER NOT NULL DEFAULT 0,
    suppressed_at        TEXT
) STRICT;
INSERT INTO subscribers_new (id, email, categories, frequency, status, token_nonce, created_at,
                             confirmed_at, unsubscribed_at, window_end, confirmation_sent_at)
    SELECT id, email, categories, frequency, status, token_nonce, created_at,
           confirmed_at, unsubscribed_at, window_end, confirmation_sent_at
    FROM subscribers;
DROP TABLE subscribers;
ALTER TABLE subscribers_new RENAME TO subscribers;
CREATE INDEX subscribers_status ON subscribers (status, frequency);
