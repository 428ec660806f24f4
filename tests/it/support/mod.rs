//! Shared test helpers: databases, servers and external consumers.

/// The `tidings` binary in a scratch directory.
pub mod app;
/// Headless Chromium through chromedriver's WebDriver API.
pub mod browser;
/// Real feed consumers: feedparser, jing, xmllint, newsboat.
pub mod consumers;
/// Fresh SQLite and PostgreSQL databases per test.
pub mod db;
/// The fixture library site, served by its own serve.py.
pub mod fixture_site;
/// PostgreSQL-only tests: replicas sharing a database, copies onto it.
pub mod postgres;
/// A PostgreSQL server of the test's own, to stop and start.
pub mod private_pg;
/// A webhook receiver on loopback that records requests and answers from a script.
pub mod receiver;
/// A TLS relay with a login (aiosmtpd), on certificates made by the test.
pub mod relay;
/// A programmable HTTP server on loopback.
pub mod site;
/// SMTP servers on loopback: aiosmtpd (Maildir) and Postfix smtp-sink.
pub mod smtp;

/// An HTTP client for tests: no automatic decompression, so tests see what was sent.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .expect("test HTTP client builds")
}
