-- Admin sign-in sessions, kept on the server so signing out ends one for
-- good: the cookie holds a random token, this table its SHA-256 (a copy of
-- the table signs nobody in). `credential` is a MAC of the admin password
-- (or its configured hash): changing the password ends every session.
CREATE TABLE admin_sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    credential TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
