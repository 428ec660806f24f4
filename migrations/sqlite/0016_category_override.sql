-- A category the comms team chose for a resource ("re-file"): while set it
-- wins over the source and the keyword rules, in every later ingest. NULL
-- leaves the category to them. Kept in step with the other dialect's 0016.
ALTER TABLE resources ADD COLUMN category_override TEXT;
