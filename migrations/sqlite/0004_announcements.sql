-- Announcements: one row per time a resource was announced to its category's
-- confirmed subscribers, by which route, to how many. Kept column for column in
-- step with the other dialect's 0004_announcements.sql.

-- announce_key is random and part of every outbox key of the announcement
-- (announcement/{announce_key}/{subscriber}), so a retry queues nothing twice.
-- The partial unique index is the "once" rule: a resource has at most one
-- unforced announcement; --force / "force": true adds another row.
CREATE TABLE announcements (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    announce_key TEXT NOT NULL UNIQUE,
    resource_id  TEXT NOT NULL REFERENCES resources (id),
    announced_at TEXT NOT NULL,
    route        TEXT NOT NULL CHECK (route IN ('cli', 'api', 'admin', 'auto')),
    message      TEXT,
    recipients   INTEGER NOT NULL DEFAULT 0,
    forced       INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX announcements_once ON announcements (resource_id) WHERE forced = 0;
CREATE INDEX announcements_resource ON announcements (resource_id, id);
