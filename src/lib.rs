//! Tidings turns a resource library into RSS and Atom feeds and email.
//!
//! Data flows source -> snapshot -> reconcile -> store -> feeds / mail; each
//! module below owns one step (README.md, Layout).

/// Named admin accounts and their one-time password links.
pub mod accounts;
/// Operator alerts about failing sources.
pub mod alerts;
/// Announcing one resource to its category's subscribers, once.
pub mod announce;
/// Backoff with jitter for retries: page fetches and outgoing mail.
pub mod backoff;
/// Entries without a category get one from keyword rules.
pub mod categorize;
/// Chat channels and webhooks: queued posts, payloads, the poster.
pub mod channels;
/// `tidings check`: what each source extracts, without storing.
pub mod check;
/// Command-line interface.
pub mod cli;
/// The one reader of the system time.
pub mod clock;
/// `tidings.toml` and the environment -> checked `Config`.
pub mod config;
/// `tidings serve`: web, schedules, feed publishing, shutdown.
pub mod daemon;
/// Dates as libraries write them.
pub mod dates;
/// RSS, Atom and OPML rendering, checking and caching.
pub mod feeds;
/// The mass-change hold: whether a run changes too much to be applied unseen.
pub mod hold;
/// Canonical links, identity keys, GUIDs and fingerprints.
pub mod identity;
/// Run sources, reconcile, apply, report.
pub mod ingest;
/// Which replica runs scheduled work.
pub mod leadership;
/// Email: subscribers' digests, composing, the outbox worker, SMTP and `.eml` files.
pub mod mail;
/// Prometheus metrics of this process.
pub mod metrics;
/// Domain types without I/O.
pub mod model;
/// The admin password's argon2 parameters, caps and checks.
pub mod password;
/// Data protection: export, erasure, the suppression list and outbox retention.
pub mod privacy;
/// Store -> rendered feeds -> cache.
pub mod publish;
/// Stored resources x snapshot -> change set.
pub mod reconcile;
/// Templates, built in and overridable.
pub mod render;
/// Held, accepted and rejected runs: `tidings runs list|accept|reject`.
pub mod runs;
/// Cron schedules in the site timezone.
pub mod schedule;
/// Web sign-ups: pending subscribers and their confirmation emails.
pub mod signup;
/// Seed files and web pages -> snapshots.
pub mod source;
/// SQLite and PostgreSQL through sqlx.
pub mod store;
/// Logging setup.
pub mod telemetry;
/// JSON shapes shared by the CLI and the API.
pub mod views;
/// The HTTP server.
pub mod web;
/// Builds the store, templates, mail kit, alerts and outbox worker from the config.
pub mod wiring;
