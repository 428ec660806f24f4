//! Tidings turns a resource library into RSS and Atom feeds and email.
//!
//! Data flows source -> snapshot -> reconcile -> store -> feeds / mail; each
//! module below owns one step (see DESIGN.md and README.md).

/// The one reader of the system time.
pub mod clock;
/// RSS, Atom and OPML feeds: rendering, the pre-publication check, the served cache.
pub mod feeds;
/// Domain types without I/O.
pub mod model;
/// Seed files and web pages -> snapshots.
pub mod source;
