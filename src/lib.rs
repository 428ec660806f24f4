//! Tidings turns a resource library into RSS and Atom feeds and email.
//!
//! Data flows source -> snapshot -> reconcile -> store -> feeds / mail; each
//! module below owns one step (see DESIGN.md and README.md).

/// Entry -> category, by the configured word rules.
pub mod categorize;
/// The one reader of the system time.
pub mod clock;
/// Dates as people write them ("17 November 2020", "May 2020") -> `EntryDate`.
pub mod dates;
/// Domain types without I/O.
pub mod model;
/// Seed files and web pages -> snapshots.
pub mod source;
