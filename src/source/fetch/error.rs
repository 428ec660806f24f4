//! Why a fetch failed, in words an operator can act on; every message names
//! the URL. `is_transient` tells the retry loop what is worth another try.

use reqwest::StatusCode;
use url::Url;

/// Why `Fetcher::get` produced no page.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL (given, or a redirect's target) is not http(s) at a configured origin.
    #[error(
        "refusing {url}: only http and https urls at the configured source origins are fetched"
    )]
    NotAllowed {
        /// The refused URL.
        url: Url,
    },
    /// The origin's robots.txt does not let Tidings fetch the URL.
    #[error("robots.txt disallows {url}: {reason}")]
    Robots {
        /// The disallowed URL.
        url: Url,
        /// The deciding rule, or why robots.txt counts as disallowing everything.
        reason: String,
    },
    /// No complete answer within the configured timeout.
    #[error("timed out fetching {url}")]
    Timeout {
        /// The URL being fetched.
        url: Url,
    },
    /// The server answered with an error status (after retries, for 5xx and 429).
    #[error("{url} answered {status}")]
    Status {
        /// The URL that answered.
        url: Url,
        /// The status it answered with.
        status: StatusCode,
    },
    /// The (decompressed) body is larger than the configured cap.
    #[error("{url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL whose body was too large.
        url: Url,
        /// The cap, in bytes after decompression.
        limit: u64,
    },
    /// The server could not be reached (DNS, refused, TLS).
    #[error("could not connect to {url}: {reason}")]
    Connect {
        /// The URL being fetched.
        url: Url,
        /// The underlying reason.
        reason: String,
    },
    /// The connection failed after the answer began (reset, truncated, bad encoding).
    #[error("could not read the answer from {url}: {reason}")]
    Body {
        /// The URL being fetched.
        url: Url,
        /// The underlying reason.
        reason: String,
    },
    /// More redirects than allowed, or a redirect loop.
    #[error("more than {limit} redirects starting at {url}")]
    Redirects {
        /// The URL the chain started at.
        url: Url,
        /// The hop limit.
        limit: usize,
    },
    /// A redirect without a usable `Location`.
    #[error("{url} redirected to an unusable location {location:?}")]
    BadRedirect {
        /// The URL that redirected.
        url: Url,
        /// The `Location` header as sent, lossily decoded.
        location: String,
    },
    /// The HTTP client could not be built (e.g. a contact with control characters).
    #[error("could not set up the http client: {reason}")]
    Client {
        /// The underlying reason.
        reason: String,
    },
}

impl FetchError {
    /// Whether another try may succeed: timeouts, network failures, 5xx and 429.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Connect { .. } | Self::Body { .. } => true,
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// Classify a reqwest error about `url`.
    pub(crate) fn from_reqwest(url: &Url, error: &reqwest::Error) -> Self {
        let url = url.clone();
        let reason = root_cause(error);
        if error.is_timeout() {
            Self::Timeout { url }
        } else if error.is_connect() {
            Self::Connect { url, reason }
        } else if error.is_builder() {
            Self::Client { reason }
        } else {
            Self::Body { url, reason }
        }
    }
}

/// The innermost cause's message: "connection refused", not "error sending request".
pub(crate) fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
