//! The only HTTP client: fetches source pages under a `FetchPolicy` (a
//! User-Agent naming Tidings, timeouts, a size cap after decompression,
//! allowed origins checked on every redirect hop, robots.txt, conditional
//! GET, retries with backoff) and decodes them to text. Parsing the page is
//! `source::html`'s job; when to fetch is the scheduler's.

mod decode;
mod error;
mod exchange;
mod retry;
pub mod robots;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use url::{Origin, Url};

use crate::backoff::Backoff;
use crate::clock::{SharedClock, SystemClock};
pub use error::FetchError;
use exchange::{Arrival, Job, Step};
use robots::Robots;

/// Default cap on a page body, after decompression (`sources[].max_bytes`).
pub const DEFAULT_MAX_BYTES: u64 = 5_000_000;
/// Default limit on one exchange (`sources[].timeout_s`).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default least time between two pages (`sources[].page_pause_ms`).
pub(crate) const DEFAULT_PAGE_PAUSE: Duration = Duration::from_millis(1000);
/// No computed wait between two tries of a request is longer than this.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Redirect hops followed before giving up (RFC 9110 15.4 suggests a limit; 5 is common).
pub const MAX_REDIRECTS: usize = 5;
/// `Accept` sent with every page request.
const ACCEPT_HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// The User-Agent for `contact` (`site.contact`): `Tidings/{version} (+{contact})`.
pub fn user_agent(contact: &str) -> String {
    format!("Tidings/{} (+{contact})", env!("CARGO_PKG_VERSION"))
}

/// How one source may be fetched; built from its `[[sources]]` entry.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Sent with every request; see `user_agent`.
    pub user_agent: String,
    /// Limit on a whole exchange: connect, headers and body (`sources[].timeout_s`).
    pub timeout: Duration,
    /// Limit on establishing the connection.
    pub connect_timeout: Duration,
    /// Largest body accepted, counted after decompression (`sources[].max_bytes`).
    pub max_bytes: u64,
    /// The only origins requests and redirects may reach: those of the configured URLs.
    pub allowed_origins: Vec<Origin>,
    /// Retries after a timeout, network failure, 5xx or 429.
    pub max_retries: u32,
    /// First backoff step; each retry doubles it (with jitter).
    pub retry_base: Duration,
    /// Longest `Retry-After` obeyed; a server asking for more gets no retry this run.
    pub max_retry_wait: Duration,
    /// Whether robots.txt is fetched and obeyed.
    pub honour_robots: bool,
    /// Least time between the end of one `get` and the start of the next (`sources[].page_pause_ms`).
    pub page_pause: Duration,
    /// Gives "now" for an HTTP-date `Retry-After` when the response has no `Date`.
    pub clock: SharedClock,
}

impl FetchPolicy {
    /// The documented defaults (README, Scraping) for a source reachable at `allowed_origins`.
    pub fn new(contact: &str, allowed_origins: Vec<Origin>) -> Self {
        Self {
            user_agent: user_agent(contact),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            max_bytes: DEFAULT_MAX_BYTES,
            allowed_origins,
            max_retries: 3,
            retry_base: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(60),
            honour_robots: true,
            page_pause: DEFAULT_PAGE_PAUSE,
            clock: std::sync::Arc::new(SystemClock),
        }
    }

    /// Waits between tries: from `retry_base`, doubling, at most `MAX_BACKOFF`.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.retry_base,
            cap: MAX_BACKOFF,
        }
    }
}

/// A page's cache validators, stored between runs for conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` the server sent, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` the server sent, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some(value.to_owned())
        };
        Self {
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED),
        }
    }
}

/// What a `get` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A fresh page.
    Page(Page),
    /// The server answered `304`: the page is as it was when `Validators` were taken.
    NotModified {
        /// The final URL, after redirects.
        url: Url,
    },
}

/// A fetched page, decoded to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The final URL, after redirects; relative links resolve against it.
    pub url: Url,
    /// The body, decoded (invalid bytes replaced by U+FFFD).
    pub text: String,
    /// What to send next time for a conditional GET.
    pub validators: Validators,
    /// The encoding the body was decoded from (WHATWG name, e.g. `windows-1252`).
    pub encoding: &'static str,
    /// Why the body is incomplete (it ended before its `Content-Length`), when it is.
    pub incomplete: Option<String>,
}

/// Fetches the pages of one source run; remembers robots.txt per origin for the run.
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
    robots: HashMap<Origin, Robots>,
    last_done: Option<Instant>,
}

impl Fetcher {
    /// A fetcher for one source run. Installs rustls's ring provider if none is.
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        // Err only means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(policy.user_agent.as_str())
            .timeout(policy.timeout)
            .connect_timeout(policy.connect_timeout)
            // Redirects are followed by hand so that every hop is checked
            // against the allowed origins and robots.txt before it is requested.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .gzip(true)
            .brotli(true)
            .build()
            .map_err(|e| FetchError::Client {
                reason: error::root_cause(&e),
            })?;
        Ok(Self {
            client,
            policy,
            robots: HashMap::new(),
            last_done: None,
        })
    }

    /// Fetch `url`, conditionally when `validators` are given.
    #[tracing::instrument(skip_all, fields(url = %url))]
    pub async fn get(
        &mut self,
        url: &Url,
        validators: Option<&Validators>,
    ) -> Result<Fetched, FetchError> {
        let pause = self
            .last_done
            .and_then(|done| pause_left(done, self.policy.page_pause, Instant::now()));
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        let job = Job {
            validators,
            max_bytes: self.policy.max_bytes,
            truncate: false,
            robots: true,
        };
        let result = self.follow(url, &job).await;
        self.last_done = Some(Instant::now());
        let (url, arrival) = result?;
        tracing::debug!(final_url = %url, "fetched");
        Ok(match arrival {
            Arrival::NotModified => Fetched::NotModified { url },
            Arrival::Body {
                bytes,
                content_type,
                validators,
                incomplete,
            } => {
                let (text, encoding) = decode::decode(&bytes, content_type.as_deref());
                Fetched::Page(Page {
                    url,
                    text,
                    validators,
                    encoding: encoding.name(),
                    incomplete,
                })
            }
        })
    }

    /// Follow redirects from `start`, checking each hop before requesting it.
    async fn follow(&mut self, start: &Url, job: &Job<'_>) -> Result<(Url, Arrival), FetchError> {
        let mut url = start.clone();
        for _ in 0..=MAX_REDIRECTS {
            self.check_allowed(&url)?;
            if job.robots && self.policy.honour_robots {
                self.check_robots(&url).await?;
            }
            match self.with_retries(&url, job).await? {
                Step::Arrive(arrival) => return Ok((url, arrival)),
                Step::Redirect(next) => url = next,
            }
        }
        Err(FetchError::Redirects {
            url: start.clone(),
            limit: MAX_REDIRECTS,
        })
    }

    /// Refuse anything but http(s) at an allowed origin: nothing a source sends
    /// may reach an address the config did not name.
    fn check_allowed(&self, url: &Url) -> Result<(), FetchError> {
        let web = matches!(url.scheme(), "http" | "https");
        if web && self.policy.allowed_origins.contains(&url.origin()) {
            Ok(())
        } else {
            Err(FetchError::NotAllowed { url: url.clone() })
        }
    }

    /// Refuse what the origin's robots.txt disallows; fetch it on first use.
    async fn check_robots(&mut self, url: &Url) -> Result<(), FetchError> {
        let origin = url.origin();
        if !self.robots.contains_key(&origin) {
            let robots = Box::pin(self.fetch_robots(url)).await;
            self.robots.insert(origin.clone(), robots);
        }
        let mut path = url.path().to_owned();
        if let Some(query) = url.query() {
            path = format!("{path}?{query}");
        }
        match self
            .robots
            .get(&origin)
            .and_then(|robots| robots.refusal(&path))
        {
            Some(reason) => Err(FetchError::Robots {
                url: url.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The robots.txt rules for `url`'s origin (RFC 9309 2.3.1): a 4xx (but
    /// 429) means allow all; 5xx, 429 or no answer means disallow all, as
    /// the RFC requires and Google does. Redirects elsewhere count as a 404.
    async fn fetch_robots(&mut self, url: &Url) -> Robots {
        let Ok(robots_url) = url.join("/robots.txt") else {
            return Robots::AllowAll;
        };
        let job = Job {
            validators: None,
            max_bytes: robots::MAX_ROBOTS_BYTES,
            truncate: true,
            robots: false,
        };
        match self.follow(&robots_url, &job).await {
            Ok((_, Arrival::Body { bytes, .. })) => Robots::parse(&String::from_utf8_lossy(&bytes)),
            Ok((_, Arrival::NotModified)) => Robots::AllowAll,
            Err(error) => robots_after(&error),
        }
    }
}

/// How much of the pause after a `get` that ended at `done` is left at `now`;
/// `None` when it is over. Sleeping anyway is not free: tokio rounds every
/// deadline up to its next millisecond tick, which cost about 1 ms a page
/// with `page_pause_ms = 0` (issue 4's benchmark: 834 pages).
fn pause_left(done: Instant, pause: Duration, now: Instant) -> Option<Duration> {
    (done + pause)
        .checked_duration_since(now)
        .filter(|left| !left.is_zero())
}

/// What a failed robots.txt fetch means (RFC 9309 2.3.1.3 and 2.3.1.4).
fn robots_after(error: &FetchError) -> Robots {
    match error {
        FetchError::Status { status, .. }
            if status.is_client_error() && *status != StatusCode::TOO_MANY_REQUESTS =>
        {
            Robots::AllowAll
        }
        FetchError::NotAllowed { .. }
        | FetchError::Redirects { .. }
        | FetchError::BadRedirect { .. } => Robots::AllowAll,
        _ => Robots::DisallowAll {
            reason: format!(
                "robots.txt is unreachable ({error}), so every path counts as disallowed"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher() -> Fetcher {
        let origin = Url::parse("https://www.example.org/lib").unwrap().origin();
        Fetcher::new(FetchPolicy::new("https://feeds.example.org", vec![origin])).unwrap()
    }

    #[test]
    fn user_agent_names_tidings_its_version_and_the_contact() {
        let expected = format!("Tidings/{} (+https://x.example)", env!("CARGO_PKG_VERSION"));
        assert_eq!(user_agent("https://x.example"), expected);
    }

    #[test]
    fn a_contact_with_control_characters_is_a_client_error() {
        let policy = FetchPolicy::new("https://x.example\r\nX-Evil: 1", Vec::new());
        assert!(matches!(
            Fetcher::new(policy),
            Err(FetchError::Client { .. })
        ));
    }

    #[test]
    fn only_http_at_allowed_origins_passes() {
        let fetcher = fetcher();
        let ok = [
            "https://www.example.org/a?b=1",
            "https://www.example.org:443/x",
            "https://u:p@www.example.org/",
        ];
        for url in ok {
            assert!(
                fetcher.check_allowed(&Url::parse(url).unwrap()).is_ok(),
                "{url}"
            );
        }
        let refused = [
            "http://www.example.org/a",
            "https://www.example.org:8443/a",
            "https://example.org/a",
            "https://www.example.org.evil.test/a",
            "file:///etc/passwd",
            "data:text/html,hi",
        ];
        for url in refused {
            assert!(
                fetcher.check_allowed(&Url::parse(url).unwrap()).is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn get_is_send_so_it_can_run_on_any_worker() {
        fn assert_send<T: Send>(_: &T) {}
        let mut fetcher = fetcher();
        let url = Url::parse("https://www.example.org/lib").unwrap();
        assert_send(&fetcher.get(&url, None));
    }

    #[test]
    fn issue_4_no_sleep_when_the_page_pause_is_over_or_zero() {
        let done = Instant::now();
        let later = done + Duration::from_millis(5);
        assert_eq!(pause_left(done, Duration::ZERO, done), None);
        assert_eq!(pause_left(done, Duration::ZERO, later), None);
        assert_eq!(pause_left(done, Duration::from_millis(5), later), None);
        assert_eq!(
            pause_left(done, Duration::from_millis(8), later),
            Some(Duration::from_millis(3))
        );
    }

    #[test]
    fn robots_failures_map_as_rfc_9309_says() {
        let url = Url::parse("https://www.example.org/robots.txt").unwrap();
        let status = |code| FetchError::Status {
            url: url.clone(),
            status: StatusCode::from_u16(code).unwrap(),
        };
        for code in [400, 401, 403, 404, 410] {
            assert_eq!(robots_after(&status(code)), Robots::AllowAll, "{code}");
        }
        for code in [429, 500, 503] {
            assert!(
                matches!(robots_after(&status(code)), Robots::DisallowAll { .. }),
                "{code}"
            );
        }
        let timeout = FetchError::Timeout { url: url.clone() };
        assert!(matches!(robots_after(&timeout), Robots::DisallowAll { .. }));
        let away = FetchError::NotAllowed { url };
        assert_eq!(robots_after(&away), Robots::AllowAll);
    }
}
