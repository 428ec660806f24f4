//! Shared test helpers: databases, servers and external consumers.

/// The `tidings` binary in a scratch directory.
pub mod app;
/// Real feed consumers: feedparser, jing, xmllint, newsboat.
pub mod consumers;
/// Fresh SQLite and PostgreSQL databases per test.
pub mod db;
