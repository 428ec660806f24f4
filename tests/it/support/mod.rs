//! Shared test helpers: databases, servers and external consumers.

/// Fresh SQLite and PostgreSQL databases per test.
pub mod db;
