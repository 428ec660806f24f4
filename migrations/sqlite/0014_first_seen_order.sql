-- The public pages list resources newest first by when Tidings first saw them,
-- a page at a time, overall and per category; feeds pick their newest by
-- `updated` per category. Indexes so neither reads the whole table.
CREATE INDEX resources_first_seen ON resources (first_seen DESC, id DESC);
CREATE INDEX resources_category_first_seen ON resources (category_slug, first_seen DESC, id DESC);
CREATE INDEX resources_category_updated ON resources (category_slug, updated DESC, id DESC);
-- Covers the per-category counts of every page, so they read no table rows.
CREATE INDEX resources_category_counts ON resources (category_slug, withdrawn_at, category);
