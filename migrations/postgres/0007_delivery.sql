-- Delivery that never sends twice, and suppression of refused addresses. Kept
-- in step with migrations/sqlite/0007_delivery.sql.

-- handed_over_at is written (conditionally: only while NULL) just before the
-- final "." of a message goes to the server. A row whose sender died after
-- that point may have been accepted, so it becomes 'unconfirmed' instead of
-- being claimed again; an operator can re-queue it by id.
ALTER TABLE outbox ADD COLUMN handed_over_at TEXT;
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'unconfirmed'));

-- refusals counts the server's permanent (5xx) refusals of this recipient or
-- of mail to them since they last confirmed; at mail.suppress_after the
-- subscriber becomes 'suppressed' and gets no digests or announcements until
-- they confirm again.
ALTER TABLE subscribers ADD COLUMN refusals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN suppressed_at TEXT;
ALTER TABLE subscribers DROP CONSTRAINT subscribers_status_check;
ALTER TABLE subscribers ADD CONSTRAINT subscribers_status_check
    CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'suppressed'));
