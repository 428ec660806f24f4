-- Mail: subscribers, digest runs, the outbox and generated settings. Times are
-- fixed-width RFC 3339 UTC text, as in 0001. Kept column for column in step
-- with migrations/postgres/0002_mail.sql.

-- email is normalised before it is stored (trimmed, domain lower-cased), so the
-- UNIQUE constraint is on the normalised form. categories is "all" or a
-- comma-separated list of slugs. token_nonce is random; the token in links is
-- an HMAC over it (mail::token). window_end is the end of the subscriber's
-- last digest window: the next window starts there (or at confirmed_at).
CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    email           TEXT NOT NULL UNIQUE,
    categories      TEXT NOT NULL,
    frequency       TEXT NOT NULL CHECK (frequency IN ('weekly', 'daily')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    token_nonce     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    unsubscribed_at TEXT,
    window_end      TEXT
) STRICT;
CREATE INDEX subscribers_status ON subscribers (status, frequency);

-- One row per digest period, claimed before anything is queued: the primary
-- key (schedule, period) makes two processes that both think a period is due
-- run it once. A claim whose process died (claimed_until passed, finished_at
-- NULL) may be taken over; the per-subscriber window claim keeps that safe.
CREATE TABLE digest_runs (
    schedule      TEXT NOT NULL,          -- weekly | daily | now
    period        TEXT NOT NULL,          -- the scheduled instant, or the minute of a --now run
    claimed_at    TEXT NOT NULL,
    claimed_until TEXT NOT NULL,
    finished_at   TEXT,
    queued        INTEGER NOT NULL DEFAULT 0,
    baseline      INTEGER NOT NULL DEFAULT 0,  -- 1: recorded on a fresh database, nothing sent
    PRIMARY KEY (schedule, period)
) STRICT;

-- Every email leaves through here, fully rendered. idem_key is unique: a
-- digest is digest/{subscriber}/{period}, so a rerun inserts nothing.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('digest', 'announcement', 'confirmation', 'alert')),
    recipient       TEXT NOT NULL,
    subscriber_id   INTEGER,
    subject         TEXT NOT NULL,
    message         BLOB NOT NULL,        -- RFC 5322 bytes, as sent
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Generated settings, e.g. the token signing key when TIDINGS_SECRET is unset.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
