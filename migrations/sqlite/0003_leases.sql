-- Leases: a named role (the scheduler) held by one process until expires_at.
-- A holder renews before expiry; anyone may take an expired lease.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
