//! The one integration-test binary: a module per area, each against real
//! parts (SQLite and PostgreSQL, HTTP on loopback, real feed parsers).

mod support;

// Rendered feeds against feedparser, jing, xmllint and newsboat.
mod feeds;
