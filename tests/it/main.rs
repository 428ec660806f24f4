//! The one integration-test binary: a module per area, each against real
//! parts (SQLite and PostgreSQL, HTTP on loopback, real feed parsers).

// Everything here is test code, where a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
// One binary: `pub` in its modules marks what the other modules share, not an API.
#![allow(unreachable_pub)]

mod support;

// Named admin accounts, the audit log, re-filing a resource: CLI, HTTP and Chromium.
mod accounts;
// Operator alerts about failing sources.
mod alerts;
// Announcements: CLI, API (tokens, 409, force), automatic on ingest, hostile text.
mod announce;
// SQLite whole in its file after SIGTERM; `db backup` under load.
mod backups;
// Issue 17: posts to chat channels and webhooks on loopback, exactly once.
mod channels;
// Headless Chromium: subscribe and confirm, announce from the admin page.
mod browser;
// `serve`'s loops on a virtual clock through the skipped and the repeated hour.
mod clock_changes;
// Issue 19: one address parser from config to send, cookies, request spans.
mod crates;
// The binary end to end on seeds: ingest, resources, feeds write, check, exit codes.
mod cli;
// `db copy` from SQLite into an empty database, state intact.
mod copy;
// Feeds read by real consumers: feedparser, jing, xmllint, newsboat.
mod feeds;
// The deploy files: configs checked, manifests consistent, the systemd unit verified.
mod deploy;
// Digests by email through real SMTP servers: content, unsubscribe, faults, crashes.
mod digest;
// Failures as HTML pages for people and JSON for the API, over real HTTP.
mod error_pages;
// Golden files: one RSS and one Atom feed and a digest email, byte for byte.
mod golden;
// Held runs, derived fields, cut pages, run deadlines, `check` and `expect`.
mod held;
// Hostile text and long links: clean in store, pages, feeds and mail; migration 0009; plain logs.
mod hygiene;
// The hand-over gate: each final SMTP dot leaves after its outbox mark commits.
mod handover;
// The HTTP client: origins, redirects, robots.txt, retries, size caps, charsets.
mod fetch;
// Hostile clients: sign-in bursts, sessions after sign-out, slow and idle
// connections, database outages.
mod hostile;
// The outbox's state machine on SQLite and PostgreSQL: claims, hand-over, outcomes, retries.
mod outbox;
// A digest period cut short by SIGKILL or a full disk, finished by the next run.
mod periods;
// Issue 18: export, erasure, the suppression list, retention, foreign imports.
mod privacy;
// Refused mail: suppressed addresses, and the alert when mail keeps failing.
mod refusals;
// The production mail path: STARTTLS, smtps://, AUTH, refused certificates, mail.ca_file.
mod relay;
// Several `serve` replicas on one PostgreSQL database, and a SQLite install moved onto it.
mod replicas;
// The public pages at library size: first-seen order, paging, a late old-dated addition.
mod pages;
// Scraping the fixture library: exact entries, 304s, a broken site, v1 -> v2 changes.
mod scrape;
// `tidings serve` over HTTP: feeds with 304 and gzip, pages, API, readers.
mod serve;
// `site.templates_dir`: overrides change pages and digests; `check` names a bad folder.
mod templates;
// The subscribe form, confirmation, and the admin page over HTTP.
mod web;
// Store on SQLite and PostgreSQL: migrations, apply, conflicts, queries.
mod store;
