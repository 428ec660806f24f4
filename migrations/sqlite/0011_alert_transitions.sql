-- Each raise or clear of an alert gets the next number in its row, so the
-- emails of two changes never share an idempotency key, however close in
-- time they are. Kept in step with migrations/postgres/0011_alert_transitions.sql.
ALTER TABLE alerts ADD COLUMN transitions INTEGER NOT NULL DEFAULT 0;
