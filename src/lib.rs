//! Tidings turns a resource library into RSS and Atom feeds and email.
//!
//! Data flows source -> snapshot -> reconcile -> store -> feeds / mail; each
//! module below owns one step (see DESIGN.md and README.md).

/// The one reader of the system time.
pub mod clock;
/// What makes two entries the same resource: canonical links, ids, GUIDs, fingerprints.
pub mod identity;
/// Domain types without I/O.
pub mod model;
/// Snapshot -> change set, without I/O.
pub mod reconcile;
/// Seed files and web pages -> snapshots.
pub mod source;
/// Resources, revisions, change events and runs in SQLite or PostgreSQL.
pub mod store;
