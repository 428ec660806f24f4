//! Configuration: where it comes from (`--config`, `$TIDINGS_CONFIG`,
//! `./tidings.toml`, built-in defaults), and `Config`, the checked and typed
//! form later code trusts. `check` turns a `RawConfig` into a `Config` or
//! into every problem at once, each named by its key path.

mod channels;
mod check;
mod raw;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::{fmt, fs};

use chrono_tz::Tz;
use url::Url;

use crate::categorize::CategoryRule;
use crate::mail::address::Email;
use crate::model::CategorySlug;
use crate::schedule::Schedule;
use crate::source::select::FieldSelector;

pub use channels::{ChannelCategories, ChannelConfig, ChannelEvent, ChannelKind};
pub use raw::RawConfig;

/// Everything Tidings needs to run, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[site]`.
    pub site: SiteConfig,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[[sources]]`, in order.
    pub sources: Vec<SourceConfig>,
    /// `[[categories]]`.
    pub categories: CategoriesConfig,
    /// `[feeds]`.
    pub feeds: FeedsConfig,
    /// `[mail]`.
    pub mail: MailConfig,
    /// `[digest]`.
    pub digest: DigestConfig,
    /// `[admin]` and the admin secrets from the environment.
    pub admin: AdminConfig,
    /// `[[channels]]`: chat channels and webhooks, in order.
    pub channels: Vec<ChannelConfig>,
}

/// Who may use the admin API and the admin page. `Debug` shows no secret.
#[derive(Clone, Default)]
pub struct AdminConfig {
    /// `TIDINGS_ADMIN_TOKEN`: the API's bearer token; the API is off without it.
    pub token: Option<String>,
    /// `TIDINGS_ADMIN_PASSWORD`: the admin page's password (hashed with argon2 at start).
    pub password: Option<String>,
    /// `admin.password_hash`: an argon2 PHC string, used when no password is in the environment.
    pub password_hash: Option<String>,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "***" } else { "unset" };
        f.debug_struct("AdminConfig")
            .field("token", &set(&self.token))
            .field("password", &set(&self.password))
            .field("password_hash", &set(&self.password_hash))
            .finish()
    }
}

/// `[site]`: how Tidings names itself and where it lives.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Shown in feeds, pages and emails.
    pub title: String,
    /// Public URL prefixing every link; always ends in `/`.
    pub base_url: Url,
    /// Every schedule is in this zone.
    pub timezone: Tz,
    /// Goes into the scraper's User-Agent.
    pub contact: String,
    /// Folder whose templates replace the built-in ones of the same name,
    /// relative to the working directory; it need not exist unless set.
    pub templates_dir: PathBuf,
}

/// `[database]`.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; may hold a password.
    pub url: String,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// How long the scheduler lease lasts: a replica takes over scheduled
    /// work within this long after the holder dies.
    pub scheduler_lease: Duration,
    /// HTTP connections open at most (lowered at start to fit the open-file limit).
    pub max_connections: usize,
    /// Time allowed for a request's headers.
    pub header_timeout: Duration,
    /// Time a connection may wait between requests, or stall a response.
    pub idle_timeout: Duration,
    /// Time allowed to answer one request.
    pub request_timeout: Duration,
}

/// One `[[sources]]` entry.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name, used by `ingest --source`.
    pub name: String,
    /// What to read.
    pub kind: SourceKind,
    /// When `serve` runs it.
    pub schedule: Schedule,
    /// A run with fewer than this share of the last good run's entries fails.
    pub min_ratio: f64,
    /// Successful runs an entry must be missing before it is withdrawn.
    pub withdraw_after: u32,
    /// `max_changed_ratio` and `max_withdrawn_ratio`: beyond them a run is held.
    pub hold: crate::hold::HoldLimits,
    /// Bound on a whole run, retries included (`run_timeout_s`).
    pub run_timeout: Duration,
    /// What every run must find (`expect`); a violation fails the run.
    pub expect: Expect,
}

/// `sources[].expect`: what every snapshot of the source must look like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Fewer entries fail the run.
    pub min_entries: Option<usize>,
    /// More entries fail the run.
    pub max_entries: Option<usize>,
    /// Fields every entry must have (`title`, `link`, `summary`, `date`, `category`, `download`).
    pub required: Vec<&'static str>,
}

/// The kinds of source.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// A seed text file, or every `*.txt` file in a folder.
    Seed {
        /// File or folder.
        path: PathBuf,
    },
    /// A web page, scraped with CSS selectors.
    Html(Box<HtmlSourceConfig>),
}

/// Settings of an `html` source.
#[derive(Debug, Clone)]
pub struct HtmlSourceConfig {
    /// The first page.
    pub url: Url,
    /// Selectors for entries and their fields.
    pub select: Selectors,
    /// Pages followed at most in one run.
    pub max_pages: u32,
    /// Pause between pages.
    pub page_pause: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Largest body accepted, after decompression.
    pub max_bytes: u64,
}

/// `[sources.select]`, parsed.
#[derive(Debug, Clone)]
pub struct Selectors {
    /// Each entry's element.
    pub entry: FieldSelector,
    /// Title, relative to the entry.
    pub title: FieldSelector,
    /// Link (`href` unless `@attr`).
    pub link: FieldSelector,
    /// Summary text.
    pub summary: Option<FieldSelector>,
    /// Date (`datetime` attribute, else text).
    pub date: Option<FieldSelector>,
    /// Category name.
    pub category: Option<FieldSelector>,
    /// Download link.
    pub download: Option<FieldSelector>,
    /// Next page link, followed until absent.
    pub next_page: Option<FieldSelector>,
}

/// `[[categories]]`.
#[derive(Debug, Clone)]
pub struct CategoriesConfig {
    /// Keyword rules, in order.
    pub rules: Vec<CategoryRule>,
    /// Categories whose new resources are announced automatically.
    pub announce: Vec<CategorySlug>,
}

/// `[feeds]`.
#[derive(Debug, Clone)]
pub struct FeedsConfig {
    /// Newest items per feed.
    pub max_items: usize,
}

/// `[mail]`.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// How mail leaves.
    pub transport: MailTransport,
    /// `mail.ca_file`: a PEM file of extra roots the relay's certificate may chain to.
    pub ca_file: Option<PathBuf>,
    /// The certificates read from `ca_file`, trusted besides the compiled-in web roots.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The `From` header (and the envelope sender).
    pub from: lettre::message::Mailbox,
    /// The `Reply-To` header.
    pub reply_to: Option<lettre::message::Mailbox>,
    /// A `mailto:` address for `List-Unsubscribe`.
    pub unsubscribe_mailto: Option<Email>,
    /// Messages per second at most.
    pub rate_per_s: Option<f64>,
    /// SMTP sends in flight at most.
    pub concurrency: u32,
    /// Bound on one send.
    pub timeout: Duration,
    /// How often an idle delivery worker looks for due mail nobody announced.
    pub poll: Duration,
    /// Wait before the first retry of a transient failure; doubled each time.
    pub retry_base: Duration,
    /// Attempts before a message that keeps failing transiently is marked failed.
    pub max_attempts: u32,
    /// Permanent refusals (5xx to the recipient or the message) before a
    /// subscriber is suppressed.
    pub suppress_after: u32,
    /// Days finished outbox rows (bodies and delivery records) are kept (#18).
    pub retention_days: u64,
    /// Failed runs of a source in a row before `admins` get an alert.
    pub alert_after: u32,
    /// Failed sends in a row (any message, any reason) before `admins` get an alert.
    pub alert_after_failed_sends: u32,
    /// Who gets operator alerts (the address of each `mail.admins` mailbox).
    pub admins: Vec<Email>,
}

/// Where mail goes.
#[derive(Clone)]
pub enum MailTransport {
    /// `.eml` files in a folder.
    File {
        /// The folder.
        dir: PathBuf,
    },
    /// An SMTP relay (lettre URL syntax; may hold a password).
    Smtp {
        /// The relay URL.
        url: String,
    },
}

impl fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            Self::Smtp { url } => f
                .debug_struct("Smtp")
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

/// `[digest]`.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Weekly subscribers.
    pub weekly: Schedule,
    /// Daily subscribers.
    pub daily: Schedule,
    /// Send nothing when nothing is new.
    pub skip_empty: bool,
    /// Items per category at most.
    pub max_items: u32,
}

/// Which file the config came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// No file: built-in defaults.
    Defaults,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Defaults => f.write_str("built-in defaults"),
        }
    }
}

/// One thing wrong with the config, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// e.g. `sources[1].select.entry`.
    pub key: String,
    /// What is wrong, lower-case, no final period.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why no `Config` could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("could not read config {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid TOML, or has unknown keys.
    #[error("config {path} is not valid: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        reason: String,
    },
    /// The file parsed but some values are wrong.
    #[error("config {origin} has {} problem(s): {}", problems.len(), join_problems(problems))]
    Invalid {
        /// Where the config came from.
        origin: Origin,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn join_problems(problems: &[Problem]) -> String {
    let parts: Vec<String> = problems.iter().map(Problem::to_string).collect();
    parts.join("; ")
}

/// Reads environment variables; a function so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A loaded config and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The checked config.
    pub config: Config,
    /// Where it came from.
    pub origin: Origin,
}

/// Find and load the config: `explicit`, else `$TIDINGS_CONFIG`, else `./tidings.toml`, else defaults.
pub fn load(explicit: Option<&Path>, env: EnvLookup<'_>) -> Result<Loaded, ConfigError> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| env("TIDINGS_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let local = PathBuf::from("tidings.toml");
            local.exists().then_some(local)
        });
    let (raw, origin) = match path {
        Some(path) => (read_raw(&path)?, Origin::File(path)),
        None => (RawConfig::default(), Origin::Defaults),
    };
    let config = check::check(raw, env).map_err(|problems| ConfigError::Invalid {
        origin: origin.clone(),
        problems,
    })?;
    Ok(Loaded { config, origin })
}

/// Parse TOML text into a `Config` (for tests and `check`).
pub fn from_toml(text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: PathBuf::from("<text>"),
        reason: one_line(&e.to_string()),
    })?;
    check::check(raw, env).map_err(|problems| ConfigError::Invalid {
        origin: Origin::Defaults,
        problems,
    })
}

fn read_raw(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        reason: one_line(&e.to_string()),
    })
}

/// TOML errors span several lines with a caret drawing; keep the facts on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| matches!(c, '|' | '^' | ' ')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL with any password replaced by `***`, for logs and `Debug`.
pub(crate) fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Setting a password only fails for URLs that cannot have one, which this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests;
