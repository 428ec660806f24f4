//! `RawConfig`: `tidings.toml` exactly as written, before any checking.
//! Every key is optional here; defaults and validation live in `config::check`.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub site: RawSite,
    pub database: RawDatabase,
    pub server: RawServer,
    /// `None` (key absent) means the built-in seed source; `[]` means none.
    pub sources: Option<Vec<RawSource>>,
    /// `None` means the built-in category rules; a list replaces them.
    pub categories: Option<Vec<RawCategory>>,
    pub mail: RawMail,
    pub digest: RawDigest,
    pub feeds: RawFeeds,
    pub admin: RawAdmin,
    /// `[[channels]]`: chat channels and webhooks.
    pub channels: Vec<RawChannel>,
}

/// One `[[channels]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawChannel {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub url_env: Option<String>,
    pub categories: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub secret_env: Option<String>,
    pub rate_per_s: Option<f64>,
}

/// `[site]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSite {
    pub title: Option<String>,
    pub base_url: Option<String>,
    pub timezone: Option<String>,
    pub contact: Option<String>,
    pub templates_dir: Option<String>,
}

/// `[database]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDatabase {
    pub url: Option<String>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Option<String>,
    pub trusted_proxies: Vec<String>,
    pub scheduler_lease_s: Option<u64>,
    pub max_connections: Option<u64>,
    pub header_timeout_s: Option<u64>,
    pub idle_timeout_s: Option<u64>,
    pub request_timeout_s: Option<u64>,
}

/// One `[[sources]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSource {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub schedule: Option<String>,
    pub select: Option<RawSelect>,
    pub max_pages: Option<u32>,
    pub page_pause_ms: Option<u64>,
    pub timeout_s: Option<u64>,
    pub max_bytes: Option<u64>,
    pub min_ratio: Option<f64>,
    pub withdraw_after: Option<u32>,
    pub max_changed_ratio: Option<f64>,
    pub max_withdrawn_ratio: Option<f64>,
    pub run_timeout_s: Option<u64>,
    pub expect: Option<RawExpect>,
}

/// `sources[].expect = { min_entries, max_entries, required }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExpect {
    pub min_entries: Option<usize>,
    pub max_entries: Option<usize>,
    pub required: Vec<String>,
}

/// `[sources.select]`: CSS selectors, each optionally ending in `@attr`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSelect {
    pub entry: Option<String>,
    pub title: Option<String>,
    pub link: Option<String>,
    pub summary: Option<String>,
    pub date: Option<String>,
    pub category: Option<String>,
    pub download: Option<String>,
    pub next_page: Option<String>,
}

/// One `[[categories]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCategory {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub words: Vec<String>,
    pub announce: bool,
}

/// `[mail]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMail {
    pub transport: Option<String>,
    pub dir: Option<String>,
    pub smtp_url: Option<String>,
    pub ca_file: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub unsubscribe_mailto: Option<String>,
    pub rate_per_s: Option<f64>,
    pub concurrency: Option<u32>,
    pub timeout_s: Option<u64>,
    pub poll_s: Option<u64>,
    pub retry_base_s: Option<u64>,
    pub max_attempts: Option<u32>,
    pub suppress_after: Option<u32>,
    pub retention_days: Option<u64>,
    pub alert_after: Option<u32>,
    pub alert_after_failed_sends: Option<u32>,
    pub admins: Vec<String>,
}

/// `[digest]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDigest {
    pub schedule: Option<String>,
    pub daily_schedule: Option<String>,
    pub skip_empty: Option<bool>,
    pub max_items: Option<u32>,
}

/// `[feeds]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFeeds {
    pub max_items: Option<usize>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub password_hash: Option<String>,
}
