-- Double opt-in from the web: when the last confirmation email was queued for
-- an address. POST /subscribe queues another only when this is older than the
-- per-address window, with one conditional UPDATE, so the limit holds across
-- replicas. Same in both dialects.
ALTER TABLE subscribers ADD COLUMN confirmation_sent_at TEXT;
