-- Posts to chat channels and webhooks (#17), the outbox's sibling: one row per
-- (channel, event), its body rendered when queued. idem_key is unique
-- (channel/event/resource/run), so queuing twice inserts nothing, and is sent
-- as the Idempotency-Key and webhook-id headers. requested_at is written just
-- before the request leaves: a row whose sender died after that point may have
-- been posted, so it becomes 'unconfirmed' instead of being claimed again.
-- Kept column for column in step with migrations/postgres/0017_channel_posts.sql.
CREATE TABLE channel_posts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key        TEXT NOT NULL UNIQUE,
    channel         TEXT NOT NULL,
    event           TEXT NOT NULL CHECK (event IN ('new', 'changed', 'withdrawn', 'announcement', 'test')),
    resource_id     TEXT,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'unconfirmed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    requested_at    TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
) STRICT;
CREATE INDEX channel_posts_due ON channel_posts (status, next_attempt_at);
