//! `RawConfig` -> `Config`: defaults filled in, every value checked, every
//! problem collected with its key path so `tidings check` can show them all.

use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use url::Url;

use super::raw::{RawCategory, RawConfig, RawDigest, RawExpect, RawMail, RawSelect, RawSource};
use super::{
    AdminConfig, CategoriesConfig, Config, DatabaseConfig, DigestConfig, EnvLookup, Expect,
    FeedsConfig, HtmlSourceConfig, MailConfig, MailTransport, Problem, Selectors, ServerConfig,
    SiteConfig, SourceConfig, SourceKind,
};
use crate::categorize::{Categorizer, CategoryRule};
use crate::hold::HoldLimits;
use crate::mail::address::{Email, mailbox};
use crate::model::{Category, CategorySlug};
use crate::reconcile::{FIELDS, ReconcileOptions};
use crate::schedule::Schedule;
use crate::source::fetch;
use crate::source::select::FieldSelector;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Every schedule's zone unless `site.timezone` says otherwise.
const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::London;
/// Open connections kept at most (`server.max_connections`).
const DEFAULT_MAX_CONNECTIONS: usize = 512;
const DEFAULT_SOURCE_SCHEDULE: &str = "0 */30 * * * *";
const DEFAULT_WEEKLY: &str = "0 0 8 * * Mon";
const DEFAULT_DAILY: &str = "0 0 8 * * *";
/// Template overrides, relative to the working directory (`site.templates_dir`).
const DEFAULT_TEMPLATES_DIR: &str = "templates";

/// Collects problems while checking.
#[derive(Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Unwrap a checked value, or record its problem.
    pub(super) fn take<T>(&mut self, key: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.add(key, message)).ok()
    }
}

/// Seconds a send may wait for the server (`mail.timeout_s`).
const MAIL_TIMEOUT_S: std::ops::RangeInclusive<u64> = 1..=3600;
/// Seconds between looks at the outbox (`mail.poll_s`).
const MAIL_POLL_S: std::ops::RangeInclusive<u64> = 1..=3600;
/// Seconds before the first retry (`mail.retry_base_s`).
const MAIL_RETRY_BASE_S: std::ops::RangeInclusive<u64> = 1..=86_400;
/// Messages a second (`mail.rate_per_s`): at least one an hour, at most ten thousand a second.
pub(super) const MAIL_RATE_PER_S: std::ops::RangeInclusive<f64> = (1.0 / 3600.0)..=10_000.0;
/// Seconds a page fetch may take (`sources[].timeout_s`).
const SOURCE_TIMEOUT_S: std::ops::RangeInclusive<u64> = 1..=600;
/// Milliseconds between pages (`sources[].page_pause_ms`).
const SOURCE_PAGE_PAUSE_MS: std::ops::RangeInclusive<u64> = 0..=60_000;

/// `value` of `key` (default `default`), or a problem naming the allowed range.
fn bounded(
    p: &mut Problems,
    key: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> u64 {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        return value;
    }
    p.add(
        key,
        format!(
            "{value} is out of range: must be between {} and {}",
            range.start(),
            range.end()
        ),
    );
    default
}

/// Check everything; `Err` holds every problem found.
pub(super) fn check(raw: RawConfig, env: EnvLookup<'_>) -> Result<Config, Vec<Problem>> {
    let mut p = Problems::default();
    let server = check_server(&raw.server, &mut p);
    let listen = server.as_ref().map(|s| s.listen);
    let site = check_site(&raw.site, listen, &mut p);
    let tz = site.as_ref().map_or(DEFAULT_TIMEZONE, |s| s.timezone);
    let database = DatabaseConfig {
        url: check_database_url(env("TIDINGS_DATABASE_URL").or(raw.database.url), &mut p),
    };
    let sources = check_sources(raw.sources, tz, &mut p);
    let categories = check_categories(raw.categories, &mut p);
    let feeds = FeedsConfig {
        max_items: check_max_items(raw.feeds.max_items, &mut p),
    };
    let mail = check_mail(raw.mail, env, &mut p);
    let digest = check_digest(raw.digest, tz, &mut p);
    let admin = check_admin(raw.admin, env, &mut p);
    let channels = super::channels::check_channels(raw.channels, env, &mut p);
    match (site, server, mail, digest) {
        (Some(site), Some(server), Some(mail), Some(digest)) if p.0.is_empty() => Ok(Config {
            site,
            database,
            server,
            sources,
            categories,
            feeds,
            mail,
            digest,
            admin,
            channels,
        }),
        _ => Err(p.0),
    }
}

fn check_server(raw: &super::raw::RawServer, p: &mut Problems) -> Option<ServerConfig> {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = p.take(
        "server.listen",
        listen_text
            .parse::<SocketAddr>()
            .map_err(|_| format!("{listen_text:?} is not an address:port such as 127.0.0.1:8080")),
    );
    let mut trusted_proxies = Vec::new();
    for (i, text) in raw.trusted_proxies.iter().enumerate() {
        let parsed = text
            .parse::<IpAddr>()
            .map_err(|_| format!("{text:?} is not an IP address"));
        trusted_proxies.extend(p.take(&format!("server.trusted_proxies[{i}]"), parsed));
    }
    let lease_s = raw.scheduler_lease_s.unwrap_or(30);
    if !(3..=3600).contains(&lease_s) {
        p.add(
            "server.scheduler_lease_s",
            "must be between 3 and 3600 seconds",
        );
    }
    let max_connections = bounded(
        p,
        "server.max_connections",
        raw.max_connections,
        DEFAULT_MAX_CONNECTIONS as u64,
        1..=100_000,
    );
    let mut seconds = |key: &str, value: Option<u64>, default: u64, max: u64| {
        Duration::from_secs(bounded(p, key, value, default, 1..=max))
    };
    let header_timeout = seconds("server.header_timeout_s", raw.header_timeout_s, 10, 300);
    let idle_timeout = seconds("server.idle_timeout_s", raw.idle_timeout_s, 60, 3600);
    let request_timeout = seconds("server.request_timeout_s", raw.request_timeout_s, 30, 3600);
    Some(ServerConfig {
        listen: listen?,
        trusted_proxies,
        scheduler_lease: Duration::from_secs(lease_s),
        max_connections: usize::try_from(max_connections).unwrap_or(DEFAULT_MAX_CONNECTIONS),
        header_timeout,
        idle_timeout,
        request_timeout,
    })
}

fn check_site(
    raw: &super::raw::RawSite,
    listen: Option<SocketAddr>,
    p: &mut Problems,
) -> Option<SiteConfig> {
    let title = raw.title.clone().unwrap_or_else(|| "Tidings".to_owned());
    if title.trim().is_empty() || title.chars().any(char::is_control) {
        p.add(
            "site.title",
            "must be non-empty text without control characters",
        );
    }
    let tz_text = raw.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE.name());
    let timezone = p.take(
        "site.timezone",
        tz_text
            .parse::<Tz>()
            .map_err(|_| format!("{tz_text:?} is not an IANA timezone such as Europe/London")),
    );
    let base_text = match (&raw.base_url, listen) {
        (Some(url), _) => url.clone(),
        (None, Some(listen)) => format!("http://{listen}/"),
        (None, None) => return None,
    };
    let base_url = p.take("site.base_url", parse_base_url(&base_text));
    let base_url = base_url?;
    let contact = raw.contact.clone().unwrap_or_else(|| base_url.to_string());
    if contact.chars().any(char::is_control) {
        p.add("site.contact", "must not contain control characters");
    }
    let templates_dir = check_templates_dir(raw.templates_dir.as_deref(), p);
    Some(SiteConfig {
        title,
        base_url,
        timezone: timezone?,
        contact,
        templates_dir,
    })
}

/// `site.templates_dir`: a folder of template overrides. The default need
/// not exist (the built-in templates serve alone); a folder named in the
/// config must, or overrides the operator meant would silently not apply.
fn check_templates_dir(raw: Option<&str>, p: &mut Problems) -> PathBuf {
    let dir = PathBuf::from(raw.unwrap_or(DEFAULT_TEMPLATES_DIR));
    let must_exist = raw.is_some();
    if (must_exist || dir.exists()) && !dir.is_dir() {
        p.add(
            "site.templates_dir",
            format!("{} is not a directory", dir.display()),
        );
    }
    dir
}

/// An absolute http(s) URL without query or fragment, ending in `/` so joins keep its path.
fn parse_base_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn check_database_url(url: Option<String>, p: &mut Problems) -> String {
    let url = url.unwrap_or_else(|| "sqlite://tidings.db".to_owned());
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|prefix| url.starts_with(prefix)) {
        p.add(
            "database.url",
            "must start with sqlite: or postgres:// (for example sqlite://tidings.db)",
        );
    }
    url
}

fn check_sources(raw: Option<Vec<RawSource>>, tz: Tz, p: &mut Problems) -> Vec<SourceConfig> {
    let raw = raw.unwrap_or_else(|| {
        vec![RawSource {
            name: Some("seeds".to_owned()),
            kind: Some("seed".to_owned()),
            path: Some("seeds/".to_owned()),
            ..RawSource::default()
        }]
    });
    let mut names = HashSet::new();
    let mut sources = Vec::new();
    for (i, source) in raw.into_iter().enumerate() {
        let key = format!("sources[{i}]");
        if let Some(name) = &source.name
            && !names.insert(name.clone())
        {
            p.add(
                format!("{key}.name"),
                format!("{name:?} is used by another source"),
            );
        }
        sources.extend(check_source(&key, source, tz, p));
    }
    sources
}

fn check_source(key: &str, mut raw: RawSource, tz: Tz, p: &mut Problems) -> Option<SourceConfig> {
    let name = match raw.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() && !n.chars().any(char::is_control) => Some(n.to_owned()),
        Some(_) => {
            p.add(
                format!("{key}.name"),
                "must be non-empty text without control characters",
            );
            None
        }
        None => {
            p.add(format!("{key}.name"), "is required");
            None
        }
    };
    let schedule_text = raw.schedule.as_deref().unwrap_or(DEFAULT_SOURCE_SCHEDULE);
    let schedule = p.take(
        &format!("{key}.schedule"),
        Schedule::parse(schedule_text, tz),
    );
    let min_ratio = raw.min_ratio.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&min_ratio) {
        p.add(format!("{key}.min_ratio"), "must be between 0 and 1");
    }
    let withdraw_after = raw
        .withdraw_after
        .unwrap_or(ReconcileOptions::default().withdraw_after);
    if withdraw_after == 0 {
        p.add(format!("{key}.withdraw_after"), "must be at least 1");
    }
    let defaults = HoldLimits::default();
    let hold = HoldLimits {
        max_changed_ratio: check_ratio(
            &format!("{key}.max_changed_ratio"),
            raw.max_changed_ratio.unwrap_or(defaults.max_changed_ratio),
            p,
        ),
        max_withdrawn_ratio: check_ratio(
            &format!("{key}.max_withdrawn_ratio"),
            raw.max_withdrawn_ratio
                .unwrap_or(defaults.max_withdrawn_ratio),
            p,
        ),
    };
    let run_timeout_s = raw.run_timeout_s.unwrap_or(300);
    if run_timeout_s == 0 {
        p.add(format!("{key}.run_timeout_s"), "must be at least 1");
    }
    let expect = check_expect(key, raw.expect.take(), p);
    let kind = check_kind(key, raw, p);
    Some(SourceConfig {
        name: name?,
        kind: kind?,
        schedule: schedule?,
        min_ratio,
        withdraw_after,
        hold,
        run_timeout: Duration::from_secs(run_timeout_s),
        expect,
    })
}

/// A hold ratio of `sources[i]` (its default is `HoldLimits`'); it must lie in 0..=1.
fn check_ratio(key: &str, ratio: f64, p: &mut Problems) -> f64 {
    if !(0.0..=1.0).contains(&ratio) {
        p.add(key, "must be between 0 and 1");
    }
    ratio
}

/// `sources[i].expect`: entry bounds in order, required fields among `reconcile::FIELDS`.
fn check_expect(key: &str, raw: Option<RawExpect>, p: &mut Problems) -> Expect {
    let Some(raw) = raw else {
        return Expect::default();
    };
    if let (Some(min), Some(max)) = (raw.min_entries, raw.max_entries)
        && min > max
    {
        p.add(
            format!("{key}.expect.max_entries"),
            format!("must be at least min_entries ({min})"),
        );
    }
    let mut required = Vec::new();
    for field in &raw.required {
        match FIELDS.iter().find(|f| **f == field.as_str()) {
            Some(known) => required.push(*known),
            None => p.add(
                format!("{key}.expect.required"),
                format!("{field:?} is not a field ({})", FIELDS.join(", ")),
            ),
        }
    }
    Expect {
        min_entries: raw.min_entries,
        max_entries: raw.max_entries,
        required,
    }
}

fn check_kind(key: &str, raw: RawSource, p: &mut Problems) -> Option<SourceKind> {
    match raw.kind.as_deref() {
        Some("seed") => {
            let Some(path) = raw.path else {
                p.add(format!("{key}.path"), "is required for a seed source");
                return None;
            };
            Some(SourceKind::Seed {
                path: PathBuf::from(path),
            })
        }
        Some("html") => check_html(key, raw, p).map(|h| SourceKind::Html(Box::new(h))),
        Some(other) => {
            p.add(
                format!("{key}.kind"),
                format!("{other:?} is not a source kind (seed or html)"),
            );
            None
        }
        None => {
            p.add(format!("{key}.kind"), "is required (seed or html)");
            None
        }
    }
}

fn check_html(key: &str, raw: RawSource, p: &mut Problems) -> Option<HtmlSourceConfig> {
    let url = match raw.url.as_deref() {
        Some(text) => p.take(&format!("{key}.url"), parse_http_url(text)),
        None => {
            p.add(format!("{key}.url"), "is required for an html source");
            None
        }
    };
    let select = check_selectors(&format!("{key}.select"), raw.select, p);
    let max_pages = raw.max_pages.unwrap_or(50);
    if max_pages == 0 {
        p.add(format!("{key}.max_pages"), "must be at least 1");
    }
    let timeout_s = bounded(
        p,
        &format!("{key}.timeout_s"),
        raw.timeout_s,
        fetch::DEFAULT_TIMEOUT.as_secs(),
        SOURCE_TIMEOUT_S,
    );
    let page_pause_ms = bounded(
        p,
        &format!("{key}.page_pause_ms"),
        raw.page_pause_ms,
        u64::try_from(fetch::DEFAULT_PAGE_PAUSE.as_millis()).expect("a second fits"),
        SOURCE_PAGE_PAUSE_MS,
    );
    let max_bytes = raw.max_bytes.unwrap_or(fetch::DEFAULT_MAX_BYTES);
    if max_bytes < 1024 {
        p.add(format!("{key}.max_bytes"), "must be at least 1024");
    }
    Some(HtmlSourceConfig {
        url: url?,
        select: select?,
        max_pages,
        page_pause: Duration::from_millis(page_pause_ms),
        timeout: Duration::from_secs(timeout_s),
        max_bytes,
    })
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(format!("{text:?} must be an http or https URL")),
    }
}

fn check_selectors(key: &str, raw: Option<RawSelect>, p: &mut Problems) -> Option<Selectors> {
    let Some(raw) = raw else {
        p.add(
            key,
            "is required for an html source (entry, title and link at least)",
        );
        return None;
    };
    let required = |field: &str, value: Option<String>, p: &mut Problems| match value {
        Some(text) => p.take(&format!("{key}.{field}"), FieldSelector::parse(&text)),
        None => {
            p.add(format!("{key}.{field}"), "is required");
            None
        }
    };
    let entry = required("entry", raw.entry, p);
    let title = required("title", raw.title, p);
    let link = required("link", raw.link, p);
    let mut optional = |field: &str, value: Option<String>| {
        value.and_then(|text| p.take(&format!("{key}.{field}"), FieldSelector::parse(&text)))
    };
    let summary = optional("summary", raw.summary);
    let date = optional("date", raw.date);
    let category = optional("category", raw.category);
    let download = optional("download", raw.download);
    let next_page = optional("next_page", raw.next_page);
    Some(Selectors {
        entry: entry?,
        title: title?,
        link: link?,
        summary,
        date,
        category,
        download,
        next_page,
    })
}

fn check_categories(raw: Option<Vec<RawCategory>>, p: &mut Problems) -> CategoriesConfig {
    let Some(raw) = raw else {
        return CategoriesConfig {
            rules: Categorizer::builtin_rules(),
            announce: Vec::new(),
        };
    };
    let mut rules = Vec::new();
    let mut announce = Vec::new();
    let mut slugs = HashSet::new();
    for (i, category) in raw.into_iter().enumerate() {
        let key = format!("categories[{i}]");
        let Some(name) = category
            .name
            .filter(|n| !CategorySlug::from_name(n).as_str().is_empty())
        else {
            p.add(
                format!("{key}.name"),
                "is required and must contain a letter or digit",
            );
            continue;
        };
        let category_value = Category::new(name.trim());
        if !slugs.insert(category_value.slug.clone()) {
            p.add(
                format!("{key}.name"),
                format!("{name:?} has the same slug as another category"),
            );
        }
        if category.words.iter().any(|w| w.trim().is_empty()) {
            p.add(format!("{key}.match"), "words must not be empty");
        }
        if category.announce {
            announce.push(category_value.slug.clone());
        }
        rules.push(CategoryRule {
            category: category_value,
            words: category.words,
        });
    }
    CategoriesConfig { rules, announce }
}

fn check_admin(raw: super::raw::RawAdmin, env: EnvLookup<'_>, p: &mut Problems) -> AdminConfig {
    let password_hash = raw.password_hash.filter(|h| !h.trim().is_empty());
    if let Some(problem) = password_hash
        .as_deref()
        .and_then(|hash| crate::password::hash_problem(hash.trim()))
    {
        p.add("admin.password_hash", problem);
    }
    AdminConfig {
        token: env("TIDINGS_ADMIN_TOKEN"),
        password: env("TIDINGS_ADMIN_PASSWORD"),
        password_hash: password_hash.map(|h| h.trim().to_owned()),
    }
}

fn check_max_items(value: Option<usize>, p: &mut Problems) -> usize {
    let max = value.unwrap_or(crate::feeds::DEFAULT_MAX_ITEMS);
    if !(1..=10_000).contains(&max) {
        p.add("feeds.max_items", "must be between 1 and 10000");
    }
    max
}

fn check_mail(raw: RawMail, env: EnvLookup<'_>, p: &mut Problems) -> Option<MailConfig> {
    let smtp_url = env("TIDINGS_SMTP_URL").or(raw.smtp_url);
    let transport = match raw.transport.as_deref().unwrap_or("file") {
        "file" => Some(MailTransport::File {
            dir: PathBuf::from(raw.dir.unwrap_or_else(|| "outbox".to_owned())),
        }),
        "smtp" => match smtp_url {
            Some(url) if url.starts_with("smtp://") || url.starts_with("smtps://") => {
                Some(MailTransport::Smtp { url })
            }
            Some(_) => {
                p.add("mail.smtp_url", "must start with smtp:// or smtps://");
                None
            }
            None => {
                p.add(
                    "mail.smtp_url",
                    "is required when mail.transport is smtp (or set TIDINGS_SMTP_URL)",
                );
                None
            }
        },
        other => {
            p.add(
                "mail.transport",
                format!("{other:?} is not a transport (smtp or file)"),
            );
            None
        }
    };
    let from_text = raw.from.as_deref().unwrap_or("Tidings <tidings@localhost>");
    let from = p.take("mail.from", mailbox(from_text));
    let reply_to = raw
        .reply_to
        .as_deref()
        .map(|text| p.take("mail.reply_to", mailbox(text)));
    let admins: Vec<Option<Email>> = (raw.admins.iter().enumerate())
        .map(|(i, admin)| {
            let address = mailbox(admin).and_then(|m| Email::parse(m.email.as_ref()));
            p.take(&format!("mail.admins[{i}]"), address)
        })
        .collect();
    if let Some(rate) = raw.rate_per_s
        && !MAIL_RATE_PER_S.contains(&rate)
    {
        p.add(
            "mail.rate_per_s",
            format!(
                "{rate} is out of range: must be between 1/3600 (one an hour) and {}",
                MAIL_RATE_PER_S.end()
            ),
        );
    }
    let concurrency = raw.concurrency.unwrap_or(4);
    if concurrency == 0 {
        p.add("mail.concurrency", "must be at least 1");
    }
    let timeout_s = bounded(p, "mail.timeout_s", raw.timeout_s, 30, MAIL_TIMEOUT_S);
    let poll_s = bounded(p, "mail.poll_s", raw.poll_s, 5, MAIL_POLL_S);
    let retry_base_s = bounded(
        p,
        "mail.retry_base_s",
        raw.retry_base_s,
        60,
        MAIL_RETRY_BASE_S,
    );
    let retention_days = bounded(
        p,
        "mail.retention_days",
        raw.retention_days,
        crate::privacy::DEFAULT_RETENTION_DAYS,
        crate::privacy::RETENTION_DAYS,
    );
    let mut at_least_one = |key: &str, value: Option<u32>, default: u32| {
        let value = value.unwrap_or(default);
        if value == 0 {
            p.add(key, "must be at least 1");
        }
        value
    };
    let alert_after = at_least_one("mail.alert_after", raw.alert_after, 3);
    let alert_after_failed_sends = at_least_one(
        "mail.alert_after_failed_sends",
        raw.alert_after_failed_sends,
        20,
    );
    let max_attempts = at_least_one("mail.max_attempts", raw.max_attempts, 10);
    let suppress_after = at_least_one("mail.suppress_after", raw.suppress_after, 3);
    let unsubscribe_mailto = raw.unsubscribe_mailto.as_deref().map(|mailto| {
        let address = mailto.strip_prefix("mailto:").unwrap_or(mailto);
        p.take("mail.unsubscribe_mailto", Email::parse(address))
    });
    let ca_file = raw.ca_file.map(PathBuf::from);
    let extra_roots = match &ca_file {
        Some(path) => p
            .take("mail.ca_file", read_ca_file(path))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Some(MailConfig {
        transport: transport?,
        ca_file,
        extra_roots,
        from: from?,
        reply_to: all_valid(reply_to)?,
        unsubscribe_mailto: all_valid(unsubscribe_mailto)?,
        rate_per_s: raw.rate_per_s,
        concurrency,
        timeout: Duration::from_secs(timeout_s),
        poll: Duration::from_secs(poll_s),
        retry_base: Duration::from_secs(retry_base_s),
        max_attempts,
        suppress_after,
        retention_days,
        alert_after,
        alert_after_failed_sends,
        admins: admins.into_iter().collect::<Option<_>>()?,
    })
}

/// An optional key's checked value: `None` when it was set but refused
/// (its problem is recorded), else what was given, if anything.
fn all_valid<T>(checked: Option<Option<T>>) -> Option<Option<T>> {
    match checked {
        Some(None) => None,
        given => Some(given.flatten()),
    }
}

/// The certificates of a PEM file, each usable as a trust anchor; at least one.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let pem = fs::read(path).map_err(|e| format!("could not read {shown}: {e}"))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown} is not a PEM file of certificates: {e}"))?;
    if certificates.is_empty() {
        return Err(format!(
            "{shown} holds no certificate (expected PEM blocks starting -----BEGIN CERTIFICATE-----)"
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, certificate) in certificates.iter().enumerate() {
        roots.add(certificate.clone()).map_err(|e| {
            format!(
                "certificate {} in {shown} cannot be a trusted root: {e}",
                i + 1
            )
        })?;
    }
    Ok(certificates)
}

fn check_digest(raw: RawDigest, tz: Tz, p: &mut Problems) -> Option<DigestConfig> {
    let weekly = raw.schedule.as_deref().unwrap_or(DEFAULT_WEEKLY);
    let daily = raw.daily_schedule.as_deref().unwrap_or(DEFAULT_DAILY);
    let weekly = p.take("digest.schedule", Schedule::parse(weekly, tz));
    let daily = p.take("digest.daily_schedule", Schedule::parse(daily, tz));
    let max_items = raw.max_items.unwrap_or(50);
    if max_items == 0 {
        p.add("digest.max_items", "must be at least 1");
    }
    Some(DigestConfig {
        weekly: weekly?,
        daily: daily?,
        skip_empty: raw.skip_empty.unwrap_or(true),
        max_items,
    })
}
