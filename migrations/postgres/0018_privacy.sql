-- Data protection (#18). Consent evidence on each subscriber: the route
-- they came by (web, cli, import), how they were confirmed (link, cli,
-- import), the operator's reason for a CLI --confirmed, and for imports the
-- opt-in and confirmation times the other system recorded, as it wrote them.
ALTER TABLE subscribers ADD COLUMN consent_route TEXT;
ALTER TABLE subscribers ADD COLUMN confirm_route TEXT;
ALTER TABLE subscribers ADD COLUMN consent_reason TEXT;
ALTER TABLE subscribers ADD COLUMN source_optin_at TEXT;
ALTER TABLE subscribers ADD COLUMN source_confirmed_at TEXT;

-- Erased addresses that were suppressed: only an HMAC of the address (keyed
-- with the signing key), so a later sign-up or import of it is refused
-- without the address being kept.
CREATE TABLE suppression_list (
    address_hash TEXT PRIMARY KEY NOT NULL,
    reason       TEXT NOT NULL,
    listed_at    TEXT NOT NULL
);

-- Outbox rows removed by retention, counted per kind and status.
CREATE TABLE outbox_pruned (
    kind   TEXT NOT NULL,
    status TEXT NOT NULL,
    count  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, status)
);
